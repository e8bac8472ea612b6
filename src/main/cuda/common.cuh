// Shared by every Ember kernel: storage types, conversions and block-wide reductions.
//
// Every kernel is a template over its storage type T (float, __nv_bfloat16 or __half); arithmetic is
// always fp32. EMBER_INSTANTIATE gives each one three C entry points, name_f32, name_bf16 and name_f16,
// which is what the Java side looks up with cuModuleGetFunction.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <type_traits>

namespace ember {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
// Round to nearest even, as torch does when it casts fp32 activations down.
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }

// Programmatic dependent launch (Hopper): a kernel launched with the programmatic-stream-serialization attribute
// (EmberKernels, EMBER_PDL) may be scheduled while the kernel before it in the stream is still running, once every
// block of that kernel has called allow_next_grid (or ended). Every kernel calls it first, so the next kernel's launch
// and the start of its blocks overlap this one; and every kernel waits in wait_for_previous_grid before it touches
// anything the kernels before it write, until they have completed and their memory is visible. Between the two a
// kernel may only read what no kernel writes (the weights: the matrix-vector kernel starts streaming them there).
// Without the attribute, and before sm_90, both cost nothing.
__device__ __forceinline__ void allow_next_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void wait_for_previous_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// (cos, sin) of rotary pair i at `position` (the angle invFreq[i] * position in fp32): qkv_rope, rope and the one-launch
// decode step share it, so that each rotates q and k by the same bits.
__device__ __forceinline__ float2 rotary_pair(const float* invFreq, int i, float position) {
    float sn, cs;
    sincosf(invFreq[i] * position, &sn, &cs);
    return make_float2(cs, sn);
}

// The SwiGLU gate of one element, silu(g) * u = g / (1 + e^-g) * u in fp32: silu_mul and the matrix-vector kernel's
// GATED builds share it, so that a down projection computes the same bits whichever of them gates its input.
__device__ __forceinline__ float swiglu(float g, float u) {
    return g / (1.f + expf(-g)) * u;
}

// swiglu of the 16 / sizeof(T) elements packed in a 16-byte word of gates and one of ups, each rounded once to T and
// packed in the same order: silu_mul's vectors and the GATE builds' staged rows.
template <typename T>
__device__ __forceinline__ uint4 swiglu16(uint4 gate, uint4 up) {
    const T* g = reinterpret_cast<const T*>(&gate);
    const T* u = reinterpret_cast<const T*>(&up);
    uint4 packed;
    T* o = reinterpret_cast<T*>(&packed);
#pragma unroll
    for (int e = 0; e < 16 / (int)sizeof(T); e++) o[e] = from_float<T>(swiglu(to_float(g[e]), to_float(u[e])));
    return packed;
}

// Sum of the products of the elements packed in two 16-byte words, accumulated in fp32 (the matrix-vector kernels).
template <typename T> __device__ __forceinline__ float dot16(uint4 a, uint4 b, float acc);

template <> __device__ __forceinline__ float dot16<float>(uint4 a, uint4 b, float acc) {
    acc = fmaf(__uint_as_float(a.x), __uint_as_float(b.x), acc);
    acc = fmaf(__uint_as_float(a.y), __uint_as_float(b.y), acc);
    acc = fmaf(__uint_as_float(a.z), __uint_as_float(b.z), acc);
    return fmaf(__uint_as_float(a.w), __uint_as_float(b.w), acc);
}

__device__ __forceinline__ float2 pair_to_float2(__nv_bfloat162 v) { return __bfloat1622float2(v); }
__device__ __forceinline__ float2 pair_to_float2(__half2 v) { return __half22float2(v); }

// The 16-bit types: four pairs per word, each widened to fp32.
template <typename T2>
__device__ __forceinline__ float dot16_pairs(uint4 a, uint4 b, float acc) {
    const T2* pa = reinterpret_cast<const T2*>(&a);
    const T2* pb = reinterpret_cast<const T2*>(&b);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 fa = pair_to_float2(pa[i]), fb = pair_to_float2(pb[i]);
        acc = fmaf(fa.x, fb.x, acc);
        acc = fmaf(fa.y, fb.y, acc);
    }
    return acc;
}

// dot16_pairs in two sums, each pair's first products in one and its second in the other: half as long a chain of
// dependent FMAs (the one-launch decode step's products, whose warps wait on that chain).
template <typename T>
__device__ __forceinline__ float2 dot16_chains(uint4 a, uint4 b, float2 acc) {
    static_assert(std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>, "dot16_chains takes a 16-bit type");
    using T2 = std::conditional_t<std::is_same_v<T, __half>, __half2, __nv_bfloat162>;
    const T2* pa = reinterpret_cast<const T2*>(&a);
    const T2* pb = reinterpret_cast<const T2*>(&b);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 fa = pair_to_float2(pa[i]), fb = pair_to_float2(pb[i]);
        acc.x = fmaf(fa.x, fb.x, acc.x);
        acc.y = fmaf(fa.y, fb.y, acc.y);
    }
    return acc;
}

template <> __device__ __forceinline__ float dot16<__nv_bfloat16>(uint4 a, uint4 b, float acc) {
    return dot16_pairs<__nv_bfloat162>(a, b, acc);
}

template <> __device__ __forceinline__ float dot16<__half>(uint4 a, uint4 b, float acc) {
    return dot16_pairs<__half2>(a, b, acc);
}

// Asks the line holding p into L2 (no register is written, nothing waits for it).
__device__ __forceinline__ void prefetch_l2(const void* p) {
    asm volatile("prefetch.global.L2 [%0];" :: "l"(p));
}

// A 16-byte load through the read-only path that does not allocate in L1: for data read once (weights, a stream).
__device__ __forceinline__ uint4 load_streaming(const void* p) {
    uint4 v;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

// Sum and max over each aligned run of LANES lanes (a power of two; the whole warp by default), in every lane of it.
template <int LANES = 32>
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = LANES / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <int LANES = 32>
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = LANES / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The paged cache's layout, [block][kvHeads][blockSize][hd]: a block's tokens of one KV head are contiguous
// (blockSize * hd elements, 4 KiB for 16 tokens of hd 128 in bf16), so that attention, which reads one KV head per
// block of threads, streams whole runs; token-major rows would give it hd elements out of every kvHeads * hd.
// Within a row whose hd * sizeof(T) bytes are a whole number of 128-byte lines (hd 64 and 128 in 16-bit types, 32
// to 256 by 32 in fp32), the 16-byte chunks are stored swizzled: chunk c of the token at offset o of its block at
// chunk c ^ (o % 8). A run of rows copied byte for byte into shared memory (decode_attention_bulk's bulk copies)
// then lands so that 8 consecutive rows' chunk c fall on 8 distinct 16-byte bank groups, and ldmatrix reads them
// without conflicts from unpadded rows, applying the same XOR. Other rows (shorter, or not a multiple of 128 bytes)
// are stored in order. A chunk's elements stay together and in order, so whatever reads or writes up to 16 aligned
// bytes at once does so at one place. This is the one definition: every kernel reaches the cache through kv_row
// (and cache_row / paged_offset over it), and PagedKv.offset (Java) computes the same.
template <typename T>
__host__ __device__ constexpr bool kv_swizzled(int hd) {
    return hd * (int)sizeof(T) % 128 == 0;
}

// One row of the cache: its first element, and the XOR its dimensions take (0, or the chunk swizzle in elements).
struct KvRow {
    size_t at;
    int swizzle;
};

// The element offset of dimension d of a row.
__device__ __forceinline__ size_t kv_element(KvRow row, int d) {
    return row.at + (d ^ row.swizzle);
}

// The XOR of the dimensions of the row at `offset` in its block (row lengths that are not swizzled: 0).
template <typename T>
__device__ __forceinline__ int kv_swizzle(int offset, int hd) {
    return kv_swizzled<T>(hd) ? (offset & 7) * (16 / (int)sizeof(T)) : 0;
}

// The row of KV head kvHead at `offset` (< blockSize) in cache block `block`.
template <typename T>
__device__ __forceinline__ KvRow kv_row(int block, int offset, int blockSize, int kvHeads, int kvHead, int hd) {
    return {(((size_t)block * kvHeads + kvHead) * blockSize + offset) * hd, kv_swizzle<T>(offset, hd)};
}

// The row of slot = block * blockSize + offset.
template <typename T>
__device__ __forceinline__ KvRow cache_row(int slot, int blockSize, int kvHeads, int kvHead, int hd) {
    const int block = slot / blockSize;
    return kv_row<T>(block, slot - block * blockSize, blockSize, kvHeads, kvHead, hd);
}

// Element offset of dimension d of KV head kvHead at token position p of a sequence whose block table maps p to
// block table[p / blockSize].
template <typename T>
__device__ __forceinline__ size_t paged_offset(const int* __restrict__ table, int p, int blockSize, int kvHeads,
                                               int kvHead, int hd, int d) {
    const int b = p / blockSize;
    return kv_element(kv_row<T>(table[b], p - b * blockSize, blockSize, kvHeads, kvHead, hd), d);
}

// Sum over the whole block, returned to every thread. `scratch` holds one float per warp (32 suffice).
// The leading barrier lets callers reuse `scratch` across consecutive reductions.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.f;
    return warp_sum(v);
}

}  // namespace ember

// Three extern "C" entry points per kernel template, one per storage type, with unmangled names: name_f32,
// name_bf16, name_f16. Each lives in a namespace that defines T, so that `params` can name the storage
// type; `callee` is the parenthesised device function to call, e.g. (prefill_attention<T, 128, 32, 32>), after
// `prologue`; `bounds` is empty or a __launch_bounds__(...).
#define EMBER_ENTRY_POINT(name, suffix, type, bounds, callee, params, args, prologue)             \
    namespace ember##suffix { using T = type;                                                     \
        extern "C" __global__ void bounds name##suffix params {                                   \
            using namespace ember; prologue callee args; } }
#define EMBER_ENTRY_POINTS(name, bounds, callee, params, args, prologue)                          \
    EMBER_ENTRY_POINT(name, _f32, float, bounds, callee, params, args, prologue)                  \
    EMBER_ENTRY_POINT(name, _bf16, __nv_bfloat16, bounds, callee, params, args, prologue)         \
    EMBER_ENTRY_POINT(name, _f16, __half, bounds, callee, params, args, prologue)

// A kernel that waits for the kernels before it on entry.
#define EMBER_INSTANTIATE_AS(name, callee, params, args) \
    EMBER_ENTRY_POINTS(name, , callee, params, args, allow_next_grid(); wait_for_previous_grid();)

// The same with launch bounds, where the compiler's own register budget would cost blocks per multiprocessor.
#define EMBER_INSTANTIATE_BOUNDED(name, bounds, callee, params, args) \
    EMBER_ENTRY_POINTS(name, bounds, callee, params, args, allow_next_grid(); wait_for_previous_grid();)

// A kernel that starts on what no kernel writes and calls wait_for_previous_grid itself before the rest.
#define EMBER_INSTANTIATE_EARLY(name, callee, params, args) \
    EMBER_ENTRY_POINTS(name, , callee, params, args, allow_next_grid();)

// The same for the 16-bit storage types alone (name_bf16, name_f16), where an fp32 build would not be used.
#define EMBER_INSTANTIATE_EARLY_16BIT(name, callee, params, args)                          \
    EMBER_ENTRY_POINT(name, _bf16, __nv_bfloat16, , callee, params, args, allow_next_grid();) \
    EMBER_ENTRY_POINT(name, _f16, __half, , callee, params, args, allow_next_grid();)

// The common case: the entry points call the template of the same name.
#define EMBER_INSTANTIATE(name, params, args) EMBER_INSTANTIATE_AS(name, (name<T>), params, args)
