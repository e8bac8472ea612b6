// Shared by the kernels that stage tiles with cp.async or bulk copies and multiply on the tensor cores (mma.sync
// m16n8k16, 16-bit operands, fp32 accumulation): attention_prefill_mma.cu and attention_decode.cu.
#pragma once

#include "common.cuh"

namespace ember {

// Copies 16 bytes from global to shared memory without passing through registers; with valid false the
// destination is zero-filled and the source is not read.
__device__ __forceinline__ void copy_async_16(void* shared, const void* global, bool valid) {
    const unsigned to = (unsigned)__cvta_generic_to_shared(shared);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(to), "l"(global), "r"(valid ? 16 : 0));
}

// Bulk asynchronous copies (Hopper, sm_90 and later): one thread starts the copy of a contiguous run of global memory
// into shared memory (both 16-byte aligned, a multiple of 16 bytes long), which the copy engine moves while no thread
// holds a register for it, and which completes as bytes of a transaction on an mbarrier in shared memory. A stage's
// barrier is armed once per fill with the bytes its copies bring (barrier_expect_bytes, the one arrival it waits for),
// and threads wait for the phase of that fill to complete (barrier_wait; the k-th fill of a barrier completes phase k,
// whose parity is k & 1). Older targets compile these as nothing: their callers are launched on sm_90 and later only.
__device__ __forceinline__ unsigned shared_address(const void* p) {
    return (unsigned)__cvta_generic_to_shared(p);
}

// Makes `count` barriers ready, each waiting for `arrivals` arrivals a phase (one: the arrival that arms a fill with
// its bytes); thread 0 calls it, and a __syncthreads must follow before any other thread uses them.
__device__ __forceinline__ void barriers_init(uint64_t* barriers, int count, unsigned arrivals = 1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    for (int i = 0; i < count; i++) {
        asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;"
                     :: "r"(shared_address(barriers + i)), "r"(arrivals) : "memory");
    }
    // The initialisation is visible to the copy engine (the async proxy) before any copy completes on the barriers.
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}

// One arrival on the barrier's current phase (a barrier of several arrivals: the threads done with a stage).
__device__ __forceinline__ void barrier_arrive(uint64_t* barrier) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(shared_address(barrier)) : "memory");
#endif
}

// The one arrival of the barrier's current phase, which then also waits for `bytes` of copies to complete on it.
__device__ __forceinline__ void barrier_expect_bytes(uint64_t* barrier, unsigned bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;"
                 :: "r"(shared_address(barrier)), "r"(bytes) : "memory");
#endif
}

// Starts copying `bytes` from global `src` to shared `dst`, completing on `barrier`.
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, unsigned bytes, uint64_t* barrier) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 :: "r"(shared_address(dst)), "l"(src), "r"(bytes), "r"(shared_address(barrier)) : "memory");
#endif
}

// Whether the barrier's phase of parity `parity` has completed (its copies' bytes are in shared memory), after a wait
// the hardware bounds, or (AT_ONCE) without waiting at all.
template <bool AT_ONCE = false>
__device__ __forceinline__ bool barrier_try_wait(uint64_t* barrier, unsigned parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    unsigned done;
    if constexpr (AT_ONCE) {
        asm volatile("{\n"
                     ".reg .pred complete;\n"
                     "mbarrier.test_wait.parity.shared::cta.b64 complete, [%1], %2;\n"
                     "selp.u32 %0, 1, 0, complete;\n"
                     "}\n"
                     : "=r"(done) : "r"(shared_address(barrier)), "r"(parity) : "memory");
    } else {
        asm volatile("{\n"
                     ".reg .pred complete;\n"
                     "mbarrier.try_wait.parity.shared::cta.b64 complete, [%1], %2;\n"
                     "selp.u32 %0, 1, 0, complete;\n"
                     "}\n"
                     : "=r"(done) : "r"(shared_address(barrier)), "r"(parity) : "memory");
    }
    return done != 0;
#else
    return true;
#endif
}

// Waits until the barrier's phase of parity `parity` has completed.
__device__ __forceinline__ void barrier_wait(uint64_t* barrier, unsigned parity) {
    while (!barrier_try_wait(barrier, parity)) {
    }
}

// Starts the bulk copies of positions [k0, kEnd) of KV head kvHead of the sequence whose block table is `table`
// (k0 < kEnd): one per cache block each for keys and values, the rows of that block in the range, contiguous in the
// cache ([block][kvHead][token][hd]) and copied byte for byte (so swizzled as the cache stores them: kv_row in
// common.cuh) to rows 0.. of `keys` and `values` (hd elements a row, hd * sizeof(T) a multiple of 16), completing on
// `barrier`, which lane 0 arms with their bytes first. One warp calls it; its lanes take a cache block each (32 apart
// where the range covers more). The one staging of decode_attention_bulk (attention_decode.cu) and
// prefill_attention_bulk (attention_prefill_mma.cu).
template <typename T>
__device__ __forceinline__ void bulk_copy_kv_rows(const T* __restrict__ kCache, const T* __restrict__ vCache,
                                                  const int* __restrict__ table, int kvHead, T* keys, T* values,
                                                  uint64_t* barrier, int k0, int kEnd, int kvHeads, int hd,
                                                  int blockSize, int lane) {
    const unsigned rowBytes = hd * sizeof(T);
    if (lane == 0) barrier_expect_bytes(barrier, 2 * (kEnd - k0) * rowBytes);
    __syncwarp();
    const int lastBlock = (kEnd - 1) / blockSize;
    for (int b = k0 / blockSize + lane; b <= lastBlock; b += 32) {
        const int from = max(k0, b * blockSize), to = min(kEnd, (b + 1) * blockSize);
        const KvRow row = kv_row<T>(table[b], from - b * blockSize, blockSize, kvHeads, kvHead, hd);
        const int at = (from - k0) * hd;
        bulk_copy(keys + at, kCache + row.at, (to - from) * rowBytes, barrier);
        bulk_copy(values + at, vCache + row.at, (to - from) * rowBytes, barrier);
    }
}

// Fragment layouts of m16n8k16 (g = lane / 4, t = lane % 4): A (16 x 16, row-major) a0 = (g, 2t..2t+1),
// a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..); B (16 x 8) b0 = (k 2t..2t+1, n g), b1 = (k 2t+8.., n g);
// C (16 x 8) c0, c1 = (g, 2t), (g, 2t+1); c2, c3 = (g+8, 2t), (g+8, 2t+1).
template <typename T> struct MmaOps;

template <> struct MmaOps<__nv_bfloat16> {
    static __device__ __forceinline__ void mma(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
        __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
        return *reinterpret_cast<uint32_t*>(&v);
    }
};

template <> struct MmaOps<__half> {
    static __device__ __forceinline__ void mma(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
        __half2 v = __floats2half2_rn(lo, hi);
        return *reinterpret_cast<uint32_t*>(&v);
    }
};

// B fragments of one k-step from a [key][dim] tile in shared memory, 8 keys from `rows` on and dims [d, d + 16):
// K is already the B operand's layout (b0: dims 2t, 2t+1 of key g, b1: 8 dims on), two 8x8 tiles in one ldmatrix.
// Lanes 0-7 address the first tile's rows, lanes 8-15 the second's (the other lanes' addresses are not read, but are
// valid). `stride`: elements from one row to the next; `swizzle`: the XOR the lane's row applies to its dimensions
// (rows staged swizzled, as the KV cache stores them: kv_row in common.cuh; 0 for rows staged in order).
template <typename T>
__device__ __forceinline__ void load_key_fragment(const T* rows, int stride, int d, int lane, uint32_t& b0,
                                                  uint32_t& b1, int swizzle = 0) {
    const unsigned at =
            (unsigned)__cvta_generic_to_shared(rows + (lane & 7) * stride + ((d + ((lane >> 3) & 1) * 8) ^ swizzle));
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(b0), "=r"(b1) : "r"(at));
}

// B fragments of P V's k-step from a [key][dim] tile: keys [0, 16) from `rows` on, dims [d, d + 8). The operand wants
// pairs of consecutive keys: ldmatrix.trans transposes the two 8x8 tiles (keys 0-7 and 8-15) on the way to registers.
// `swizzle` as for load_key_fragment, of the lane's row (lane % 16).
template <typename T>
__device__ __forceinline__ void load_value_fragment(const T* rows, int stride, int d, int lane, uint32_t& b0,
                                                    uint32_t& b1, int swizzle = 0) {
    const unsigned at = (unsigned)__cvta_generic_to_shared(rows + (lane & 15) * stride + (d ^ swizzle));
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n" : "=r"(b0), "=r"(b1) : "r"(at));
}

// A operand fragments of 16 query rows over KSTEPS k-steps of 16 dimensions: rows g and g + 8 of the thread's quad
// start at q0 and q1 (zeros where a row is not valid, and past hd).
template <typename T, int KSTEPS>
__device__ __forceinline__ void load_query_fragments(uint32_t (&qf)[KSTEPS][4], const T* q0, const T* q1, bool valid0,
                                                     bool valid1, int hd, int t) {
#pragma unroll
    for (int kk = 0; kk < KSTEPS; kk++) {
        const int d = kk * 16 + 2 * t;
        const bool inside = kk * 16 < hd;
        qf[kk][0] = inside && valid0 ? *reinterpret_cast<const uint32_t*>(q0 + d) : 0u;
        qf[kk][1] = inside && valid1 ? *reinterpret_cast<const uint32_t*>(q1 + d) : 0u;
        qf[kk][2] = inside && valid0 ? *reinterpret_cast<const uint32_t*>(q0 + d + 8) : 0u;
        qf[kk][3] = inside && valid1 ? *reinterpret_cast<const uint32_t*>(q1 + d + 8) : 0u;
    }
}

// 2^x in the one SFU instruction (ex2.approx.ftz; exp2f adds the scaling that keeps results below 2^-126 from
// flushing to 0, which a softmax weight that small, beside the row's largest weight of 1, may do anyway). 2^-inf = 0.
__device__ __forceinline__ float exp2_approx(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// A row's accumulator fragments are spread over the 4 lanes of a quad (lane / 4 alike): its max and sum are
// warp_max<4> and warp_sum<4> (common.cuh).

// Scales an output held as N m16n8 accumulator tiles: row g (c0, c1) by s0, row g + 8 (c2, c3) by s1.
template <int N>
__device__ __forceinline__ void scale_rows(float (&o)[N][4], float s0, float s1) {
#pragma unroll
    for (int n = 0; n < N; n++) {
        o[n][0] *= s0;
        o[n][1] *= s0;
        o[n][2] *= s1;
        o[n][3] *= s1;
    }
}

}  // namespace ember
