// Everything between the fused QKV projection and attention: bias, Qwen3's per-head q/k RMSNorm, the
// rotary embedding, and the write of this step's keys and values into the paged cache.
#include "common.cuh"

namespace ember {

// qkv is the output of the fused GEMM, one row per token: [q (heads*hd) | k (kvHeads*hd) | v (kvHeads*hd)], in fp32
// (S = float: decode steps, where cuBLASLt's fp32-output kernels are the faster at few rows) or rounded to the storage
// type as HF rounds it (S = T, qkv_rope_rounded: prefill steps, halving what the product writes and this reads).
// Block (row, h): h < heads is query head h, otherwise key/value head h - heads. Thread i < hd/2 owns
// the rotary pair (i, i + hd/2) (HF's rotate-half layout):
//   x      = qkv + bias                                   (bias: Qwen2; may be null)
//   x      = x * rsqrt(mean(x^2) + eps) * norm            (qNorm/kNorm: Qwen3; may be null)
//   angle  = invFreq[i] * position                        (fp32, as HF forms it; llama3/linear
//                                                          scaling is already folded into invFreq)
//   (x_i, x_{i+half}) <- (x_i cos - x_{i+half} sin, x_{i+half} cos + x_i sin)
// Queries go to q [rows][heads][hd]; keys and (unrotated) values go to slot slots[row] of the paged
// cache (slot = block * blockSize + offset; the layout is cache_offset's in common.cuh).
// Moves rows*(heads + 2*kvHeads)*hd*(sizeof(S) + sizeof(T)) bytes; about 10 FLOPs and a sincos per pair.
template <typename T, typename S>
__device__ __forceinline__ void qkv_rope(const S* __restrict__ qkv, const float* __restrict__ bias,
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
    const float angle = invFreq[i] * (float)positions[row];
    float s, c;
    sincosf(angle, &s, &c);
    const float y0 = x0 * c - x1 * s;
    const float y1 = x1 * c + x0 * s;
    if (isQuery) {
        T* dst = q + (size_t)row * qd + h * hd;
        dst[i] = from_float<T>(y0);
        dst[i + half] = from_float<T>(y1);
        return;
    }
    const int kvHead = h - heads;
    const size_t base = cache_offset(slots[row], blockSize, kvHeads, kvHead, hd, 0);
    kCache[base + i] = from_float<T>(y0);
    kCache[base + i + half] = from_float<T>(y1);
    const int vColumn = qd + kvd + kvHead * hd;
    const S* v = qkv + (size_t)row * width + vColumn;
    vCache[base + i] = from_float<T>(to_float(v[i]) + (bias ? bias[vColumn + i] : 0.f));
    vCache[base + i + half] = from_float<T>(to_float(v[i + half]) + (bias ? bias[vColumn + i + half] : 0.f));
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
