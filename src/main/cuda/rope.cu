// Everything between the fused QKV projection and attention: bias, Qwen3's per-head q/k RMSNorm, the
// rotary embedding, and the write of this step's keys and values into the paged cache.
#include "common.cuh"

namespace ember {

// qkv is the output of the fused GEMM, one row per token: [q (heads*hd) | k (kvHeads*hd) | v (kvHeads*hd)], in fp32
// (S = float: decode steps, where cuBLASLt's fp32-output kernels are the faster at few rows) or rounded to the storage
// type as HF rounds it (S = T, qkv_rope_rounded: prefill steps, halving what the product writes and this reads).
// For each head of each row, pair i = (i, i + hd/2) of it (HF's rotate-half layout):
//   x      = qkv + bias                                   (bias: Qwen2; may be null)
//   x      = x * rsqrt(mean(x^2) + eps) * norm            (qNorm/kNorm: Qwen3; may be null)
//   angle  = invFreq[i] * position                        (fp32, as HF forms it; llama3/linear
//                                                          scaling is already folded into invFreq)
//   (x_i, x_{i+half}) <- (x_i cos - x_{i+half} sin, x_{i+half} cos + x_i sin)
// Queries go to q [rows][heads][hd]; keys and (unrotated) values go to slot slots[row] of the paged
// cache (slot = block * blockSize + offset; the layout, 16-byte chunks swizzled within a row, is cache_row's in
// common.cuh).
// Moves rows*(heads + 2*kvHeads)*hd*(sizeof(S) + sizeof(T)) bytes (18.9 MB for 512 rows of the 8B shape from fp32,
// 12.6 MB from bf16: 3 to 4.5 us of HBM); about 10 FLOPs and a sincos per pair.
//
// Two ways through, chosen by rope_vectorised (EmberKernels.qkvRope launches each with its grid):
// - Vectorised (hd/2 a multiple of P = 16 / sizeof(S), with hd/2 / P a power of two up to 32, hd <= 256: 64, 128
//   and 256 from both fp32 and 16-bit products). Grid (rows, ceil((heads + 2*kvHeads) * hd/2/P / ROPE_THREADS)),
//   ROPE_THREADS threads; unit u = blockIdx.y * ROPE_THREADS + threadIdx.x of a row is head u / (hd/2/P) (queries,
//   then keys, then values, the order of the row itself) and owns the P pairs from i0 = P * (u % (hd/2/P)): two
//   16-byte loads and two stores of P values per thread, where one thread per pair moved 2-byte values before. A
//   head's threads are consecutive lanes of one warp, so its q/k norm sums with shuffles; the row's cos/sin are
//   computed once per block into shared memory (every head of the row shares them) instead of once per head.
// - Otherwise (e.g. hd 80 or 96) one block per (row, head): grid (rows, heads + kvHeads), hd/2 threads rounded up
//   to a warp; thread i < hd/2 owns pair i, and a key head's block also copies that head's values.
// The arithmetic, and so each result, is the same both ways but for the order of the norm's sum of squares.
constexpr int ROPE_THREADS = 128;  // at least hd/2 for hd <= 256: one thread per angle

template <typename S>
__host__ __device__ constexpr bool rope_vectorised(int hd) {
    const int P = 16 / (int)sizeof(S), half = hd / 2, lanes = half / P;
    return hd <= 256 && half % P == 0 && lanes >= 1 && lanes <= 32 && (lanes & (lanes - 1)) == 0;
}

// N values, one aligned load or store of N * sizeof(E) bytes.
template <typename E, int N> struct alignas(N * sizeof(E)) Pack { E v[N]; };

template <typename T, typename S>
__device__ __forceinline__ void qkv_rope_vectorised(const S* __restrict__ qkv, const float* __restrict__ bias,
                                                    const float* __restrict__ qNorm, const float* __restrict__ kNorm,
                                                    const float* __restrict__ invFreq, const int* __restrict__ positions,
                                                    const int* __restrict__ slots, T* __restrict__ q,
                                                    T* __restrict__ kCache, T* __restrict__ vCache, int heads,
                                                    int kvHeads, int hd, int blockSize, float eps) {
    constexpr int P = 16 / sizeof(S);
    __shared__ float2 cosSin[128];  // (cos, sin) of pair i at this row's position; hd <= 256
    const int row = blockIdx.x, half = hd / 2, lanes = half / P;
    const int unit = blockIdx.y * ROPE_THREADS + threadIdx.x;
    const int h = unit / lanes, i0 = (unit & (lanes - 1)) * P;
    const bool active = h < heads + 2 * kvHeads;
    const int qd = heads * hd, kvd = kvHeads * hd, width = qd + 2 * kvd;
    const int column = h * hd;  // the q, k and v heads lie in this order along the row
    // Loads first, so that they are in flight while the angles are worked out.
    float x0[P], x1[P];
    if (active) {
        const S* src = qkv + (size_t)row * width + column;
        const Pack<S, P> a = *reinterpret_cast<const Pack<S, P>*>(src + i0);
        const Pack<S, P> b = *reinterpret_cast<const Pack<S, P>*>(src + i0 + half);
#pragma unroll
        for (int e = 0; e < P; e++) {
            x0[e] = to_float(a.v[e]);
            x1[e] = to_float(b.v[e]);
        }
        if (bias) {
#pragma unroll
            for (int e = 0; e < P; e += 4) {
                const float4 b0 = *reinterpret_cast<const float4*>(bias + column + i0 + e);
                const float4 b1 = *reinterpret_cast<const float4*>(bias + column + i0 + half + e);
                x0[e] += b0.x; x0[e + 1] += b0.y; x0[e + 2] += b0.z; x0[e + 3] += b0.w;
                x1[e] += b1.x; x1[e + 1] += b1.y; x1[e + 2] += b1.z; x1[e + 3] += b1.w;
            }
        }
    } else {
#pragma unroll
        for (int e = 0; e < P; e++) x0[e] = x1[e] = 0.f;
    }
    const float position = (float)positions[row];
    if (threadIdx.x < half) {  // half <= 128 = ROPE_THREADS
        cosSin[threadIdx.x] = rotary_pair(invFreq, threadIdx.x, position);
    }
    if (qNorm || kNorm) {  // uniform across the grid: every lane of every warp takes part in the shuffles
        float squares = 0.f;
#pragma unroll
        for (int e = 0; e < P; e++) squares += x0[e] * x0[e] + x1[e] * x1[e];
        for (int o = lanes >> 1; o > 0; o >>= 1) squares += __shfl_xor_sync(0xffffffffu, squares, o);
        const float* norm = h < heads ? qNorm : h < heads + kvHeads ? kNorm : nullptr;
        if (active && norm) {
            const float inv = rsqrtf(squares / hd + eps);
#pragma unroll
            for (int e = 0; e < P; e++) {
                x0[e] = x0[e] * inv * norm[i0 + e];
                x1[e] = x1[e] * inv * norm[i0 + half + e];
            }
        }
    }
    __syncthreads();  // cosSin is complete
    if (!active) return;
    Pack<T, P> y0, y1;
    if (h >= heads + kvHeads) {  // a value head: unrotated, into the cache
#pragma unroll
        for (int e = 0; e < P; e++) {
            y0.v[e] = from_float<T>(x0[e]);
            y1.v[e] = from_float<T>(x1[e]);
        }
        const KvRow at = cache_row<T>(slots[row], blockSize, kvHeads, h - heads - kvHeads, hd);
        *reinterpret_cast<Pack<T, P>*>(vCache + kv_element(at, i0)) = y0;
        *reinterpret_cast<Pack<T, P>*>(vCache + kv_element(at, i0 + half)) = y1;
        return;
    }
#pragma unroll
    for (int e = 0; e < P; e++) {
        const float2 r = cosSin[i0 + e];
        const float c = r.x, s = r.y;
        y0.v[e] = from_float<T>(x0[e] * c - x1[e] * s);
        y1.v[e] = from_float<T>(x1[e] * c + x0[e] * s);
    }
    // P elements (at most 16 bytes, aligned) lie within one chunk of the cache's row, wherever its swizzle puts it.
    T* dst0;
    T* dst1;
    if (h < heads) {
        dst0 = q + (size_t)row * qd + column + i0;
        dst1 = dst0 + half;
    } else {
        const KvRow at = cache_row<T>(slots[row], blockSize, kvHeads, h - heads, hd);
        dst0 = kCache + kv_element(at, i0);
        dst1 = kCache + kv_element(at, i0 + half);
    }
    *reinterpret_cast<Pack<T, P>*>(dst0) = y0;
    *reinterpret_cast<Pack<T, P>*>(dst1) = y1;
}

// One block per (row, head), one thread per pair: for head dimensions the vectorised way does not take.
template <typename T, typename S>
__device__ __forceinline__ void qkv_rope_pairs(const S* __restrict__ qkv, const float* __restrict__ bias,
                                               const float* __restrict__ qNorm, const float* __restrict__ kNorm,
                                               const float* __restrict__ invFreq, const int* __restrict__ positions,
                                               const int* __restrict__ slots, T* __restrict__ q, T* __restrict__ kCache,
                                               T* __restrict__ vCache, int heads, int kvHeads, int hd, int blockSize,
                                               float eps) {
    __shared__ float scratch[32];
    const int row = blockIdx.x, h = blockIdx.y, i = threadIdx.x, half = hd / 2;
    const bool active = i < half;
    const int qd = heads * hd, kvd = kvHeads * hd, width = qd + 2 * kvd;
    const bool isQuery = h < heads;
    const int column = isQuery ? h * hd : qd + (h - heads) * hd;
    const S* src = qkv + (size_t)row * width + column;
    float x0 = 0.f, x1 = 0.f;
    if (active) {
        x0 = to_float(src[i]) + (bias ? bias[column + i] : 0.f);
        x1 = to_float(src[i + half]) + (bias ? bias[column + i + half] : 0.f);
    }
    const float* norm = isQuery ? qNorm : kNorm;
    if (norm) {  // uniform across the block, so every thread reaches the barrier inside block_sum
        const float inv = rsqrtf(block_sum(x0 * x0 + x1 * x1, scratch) / hd + eps);
        if (active) {
            x0 = x0 * inv * norm[i];
            x1 = x1 * inv * norm[i + half];
        }
    }
    if (!active) return;
    const float2 cs = rotary_pair(invFreq, i, (float)positions[row]);
    const float y0 = x0 * cs.x - x1 * cs.y;
    const float y1 = x1 * cs.x + x0 * cs.y;
    if (isQuery) {
        T* dst = q + (size_t)row * qd + h * hd;
        dst[i] = from_float<T>(y0);
        dst[i + half] = from_float<T>(y1);
        return;
    }
    const int kvHead = h - heads;
    const KvRow at = cache_row<T>(slots[row], blockSize, kvHeads, kvHead, hd);
    const size_t lo = kv_element(at, i), hi = kv_element(at, i + half);
    kCache[lo] = from_float<T>(y0);
    kCache[hi] = from_float<T>(y1);
    const int vColumn = qd + kvd + kvHead * hd;
    const S* v = qkv + (size_t)row * width + vColumn;
    vCache[lo] = from_float<T>(to_float(v[i]) + (bias ? bias[vColumn + i] : 0.f));
    vCache[hi] = from_float<T>(to_float(v[i + half]) + (bias ? bias[vColumn + i + half] : 0.f));
}

template <typename T, typename S>
__device__ __forceinline__ void qkv_rope(const S* __restrict__ qkv, const float* __restrict__ bias,
                                         const float* __restrict__ qNorm, const float* __restrict__ kNorm,
                                         const float* __restrict__ invFreq, const int* __restrict__ positions,
                                         const int* __restrict__ slots, T* __restrict__ q, T* __restrict__ kCache,
                                         T* __restrict__ vCache, int heads, int kvHeads, int hd, int blockSize,
                                         float eps) {
    if (rope_vectorised<S>(hd)) {
        qkv_rope_vectorised<T, S>(qkv, bias, qNorm, kNorm, invFreq, positions, slots, q, kCache, vCache, heads,
                                  kvHeads, hd, blockSize, eps);
    } else {
        qkv_rope_pairs<T, S>(qkv, bias, qNorm, kNorm, invFreq, positions, slots, q, kCache, vCache, heads, kvHeads,
                             hd, blockSize, eps);
    }
}

}  // namespace ember

#define QKV_ROPE_ARGS \
    (qkv, bias, qNorm, kNorm, invFreq, positions, slots, q, kCache, vCache, heads, kvHeads, hd, blockSize, eps)
EMBER_INSTANTIATE_AS(qkv_rope, (qkv_rope<T, float>),
                     (const float* qkv, const float* bias, const float* qNorm, const float* kNorm, const float* invFreq,
                      const int* positions, const int* slots, T* q, T* kCache, T* vCache, int heads, int kvHeads, int hd,
                      int blockSize, float eps),
                     QKV_ROPE_ARGS)
EMBER_INSTANTIATE_AS(qkv_rope_rounded, (qkv_rope<T, T>),
                     (const T* qkv, const float* bias, const float* qNorm, const float* kNorm, const float* invFreq,
                      const int* positions, const int* slots, T* q, T* kCache, T* vCache, int heads, int kvHeads, int hd,
                      int blockSize, float eps),
                     QKV_ROPE_ARGS)
