// RMSNorm of rows of the fp32 residual stream: the final norm before the output projection, and a layer's norms where
// the product after them is cuBLASLt's (at small batches the matrix-vector kernel's NORM builds normalise in their
// prologue, in this kernel's arithmetic). The residual adds happen in the output projections, which add into x.
#include "common.cuh"

namespace ember {

// Rows of up to RMSNORM_CACHED * 4 * blockDim elements stay in registers between the two passes: decode steps
// (a handful of rows) are latency-bound, and a second read would cost a round trip to L2. EmberKernels.rmsNorm
// sizes the block so that a row fits: ceil(hidden / 16) threads, rounded up to a warp, at most 1024.
constexpr int RMSNORM_CACHED = 4;

// Four consecutive outputs in the storage type: one 16-byte store for fp32, one 8-byte store for bf16/fp16.
template <typename T> struct Four { T v[4]; };
template <typename T>
__device__ __forceinline__ void store_four(T* p, float a, float b, float c, float d) {
    Four<T> f;
    f.v[0] = from_float<T>(a);
    f.v[1] = from_float<T>(b);
    f.v[2] = from_float<T>(c);
    f.v[3] = from_float<T>(d);
    *reinterpret_cast<Four<T>*>(p) = f;
}

__device__ __forceinline__ float squares(float4 a) { return a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w; }

// out[r] = x[s] * rsqrt(mean(x[s]^2) + eps) * weight, rounded once to T, with s = rowIndex ? rowIndex[r] : r:
// rowIndex lets the final norm read only each sequence's last token. Grid: one block per output row.
// Moves rows*hidden*(4 + sizeof(T)) bytes and hidden*4 of weight; about 4 FLOPs per element. At a prefill chunk
// (512 rows of 4096, bf16) that is 12.6 MB, which HBM takes in about 3 us.
//
// When hidden is a multiple of 4 (every real model: rows then start 16-byte aligned) each thread moves float4s:
// vector j = threadIdx.x + k * blockDim.x of the row, so a warp reads 512 contiguous bytes per instruction, and
// a thread has 2 * RMSNORM_CACHED independent 16-byte loads in flight before it needs any of them. Otherwise
// the same in single elements. The sum of squares is summed per thread in its own order, then across the block
// (gemv.cu's normalise_rows sums in the same order for 256 threads, so that the two give the same bits).
template <typename T>
__device__ __forceinline__ void rmsnorm(const float* __restrict__ x, const float* __restrict__ weight, T* __restrict__ out,
                                        const int* __restrict__ rowIndex, int hidden, float eps) {
    constexpr int CACHED = RMSNORM_CACHED;
    __shared__ float scratch[32];
    const int r = blockIdx.x;
    const int s = rowIndex ? rowIndex[r] : r;
    const float* xs = x + (size_t)s * hidden;
    T* o = out + (size_t)r * hidden;
    float sumSquares = 0.f;
    if ((hidden & 3) == 0) {
        const int vectors = hidden >> 2;
        const float4* xv = reinterpret_cast<const float4*>(xs);
        const float4* wv = reinterpret_cast<const float4*>(weight);
        float4 v[CACHED], w[CACHED];
#pragma unroll
        for (int k = 0; k < CACHED; k++) {
            const int j = threadIdx.x + k * blockDim.x;
            v[k] = j < vectors ? xv[j] : make_float4(0.f, 0.f, 0.f, 0.f);
        }
        // The weight is needed only after the reduction: loading it now hides its latency behind the barriers.
#pragma unroll
        for (int k = 0; k < CACHED; k++) {
            const int j = threadIdx.x + k * blockDim.x;
            w[k] = j < vectors ? wv[j] : make_float4(0.f, 0.f, 0.f, 0.f);
            sumSquares += squares(v[k]);
        }
        // Rows wider than the cache (more than 16 * 1024 elements): the rest streams through twice.
        for (int j = threadIdx.x + CACHED * blockDim.x; j < vectors; j += blockDim.x) sumSquares += squares(xv[j]);
        const float inv = rsqrtf(block_sum(sumSquares, scratch) / hidden + eps);
#pragma unroll
        for (int k = 0; k < CACHED; k++) {
            const int j = threadIdx.x + k * blockDim.x;
            if (j < vectors) {
                store_four(o + 4 * j, v[k].x * inv * w[k].x, v[k].y * inv * w[k].y, v[k].z * inv * w[k].z,
                           v[k].w * inv * w[k].w);
            }
        }
        for (int j = threadIdx.x + CACHED * blockDim.x; j < vectors; j += blockDim.x) {
            const float4 u = xv[j], wj = wv[j];
            store_four(o + 4 * j, u.x * inv * wj.x, u.y * inv * wj.y, u.z * inv * wj.z, u.w * inv * wj.w);
        }
        return;
    }
    // hidden not a multiple of 4: element by element, 4 * CACHED elements per thread in registers.
    constexpr int CACHED_ELEMENTS = 4 * CACHED;
    float v[CACHED_ELEMENTS];
#pragma unroll
    for (int k = 0; k < CACHED_ELEMENTS; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        v[k] = i < hidden ? xs[i] : 0.f;
        sumSquares += v[k] * v[k];
    }
    for (int i = threadIdx.x + CACHED_ELEMENTS * blockDim.x; i < hidden; i += blockDim.x) sumSquares += xs[i] * xs[i];
    const float inv = rsqrtf(block_sum(sumSquares, scratch) / hidden + eps);
#pragma unroll
    for (int k = 0; k < CACHED_ELEMENTS; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < hidden) o[i] = from_float<T>(v[k] * inv * weight[i]);
    }
    for (int i = threadIdx.x + CACHED_ELEMENTS * blockDim.x; i < hidden; i += blockDim.x) {
        o[i] = from_float<T>(xs[i] * inv * weight[i]);
    }
}

}  // namespace ember

EMBER_INSTANTIATE(rmsnorm, (const float* x, const float* weight, T* out, const int* rowIndex, int hidden, float eps),
                  (x, weight, out, rowIndex, hidden, eps))
