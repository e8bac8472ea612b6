// RMSNorm fused with the residual add that precedes it in every pre-norm decoder layer.
#include "common.cuh"

namespace ember {

// Rows of up to ADD_RMSNORM_CACHED * 4 * blockDim elements stay in registers between the two passes: decode steps
// (a handful of rows) are latency-bound, and a second read would cost a round trip to L2. EmberKernels.addRmsNorm
// sizes the block so that a row fits: ceil(hidden / 16) threads, rounded up to a warp, at most 1024.
constexpr int ADD_RMSNORM_CACHED = 4;

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

__device__ __forceinline__ void add_into(float4& a, float4 b) {
    a.x += b.x;
    a.y += b.y;
    a.z += b.z;
    a.w += b.w;
}

__device__ __forceinline__ float squares(float4 a) { return a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w; }

// For each output row r, with s = rowIndex ? rowIndex[r] : r:
//   v      = x[s] + (delta ? delta[s] : 0)             (the residual add, fp32)
//   x[s]   = v                                          (when writeBack)
//   out[r] = v * rsqrt(mean(v^2) + eps) * weight        (rounded once to T)
// rowIndex lets the final norm read only each sequence's last token. Grid: one block per output row.
// Moves rows*hidden*(4 + 4 + sizeof(T)) bytes, +4 more per element with writeBack, and hidden*4 of weight;
// about 5 FLOPs per element. At a prefill (512 rows of 4096, writeBack, bf16) that is 29.4 MB, which HBM takes
// in about 7 us.
//
// When hidden is a multiple of 4 (every real model: rows then start 16-byte aligned) each thread moves float4s:
// vector j = threadIdx.x + k * blockDim.x of the row, so a warp reads 512 contiguous bytes per instruction, and
// a thread has 2 * ADD_RMSNORM_CACHED independent 16-byte loads in flight before it needs any of them. Otherwise
// the same in single elements. The sum of squares is summed per thread in its own order, then across the block:
// the order of that fp32 sum is not a contract (the tests compare against float64 with a tolerance).
template <typename T>
__device__ __forceinline__ void add_rmsnorm(float* __restrict__ x, const float* __restrict__ delta,
                                            const float* __restrict__ weight, T* __restrict__ out,
                                            const int* __restrict__ rowIndex, int hidden, float eps,
                                            int writeBack) {
    constexpr int CACHED = ADD_RMSNORM_CACHED;
    __shared__ float scratch[32];
    const int r = blockIdx.x;
    const int s = rowIndex ? rowIndex[r] : r;
    float* xs = x + (size_t)s * hidden;
    const float* ds = delta ? delta + (size_t)s * hidden : nullptr;
    T* o = out + (size_t)r * hidden;
    float sumSquares = 0.f;
    if ((hidden & 3) == 0) {
        const int vectors = hidden >> 2;
        float4* xv = reinterpret_cast<float4*>(xs);
        const float4* dv = reinterpret_cast<const float4*>(ds);
        const float4* wv = reinterpret_cast<const float4*>(weight);
        float4 v[CACHED], w[CACHED];
#pragma unroll
        for (int k = 0; k < CACHED; k++) {
            const int j = threadIdx.x + k * blockDim.x;
            v[k] = j < vectors ? xv[j] : make_float4(0.f, 0.f, 0.f, 0.f);
        }
        if (ds) {
            // Every load before the first add: an add inside each load's test made the loads round trips one after
            // another (a branch, a load and the adds that wait for it, per vector).
            float4 d[CACHED];
#pragma unroll
            for (int k = 0; k < CACHED; k++) {
                const int j = threadIdx.x + k * blockDim.x;
                d[k] = j < vectors ? dv[j] : make_float4(0.f, 0.f, 0.f, 0.f);
            }
#pragma unroll
            for (int k = 0; k < CACHED; k++) add_into(v[k], d[k]);
        }
        // The weight is needed only after the reduction: loading it now hides its latency behind the barriers.
#pragma unroll
        for (int k = 0; k < CACHED; k++) {
            const int j = threadIdx.x + k * blockDim.x;
            w[k] = j < vectors ? wv[j] : make_float4(0.f, 0.f, 0.f, 0.f);
            sumSquares += squares(v[k]);
        }
        // Rows wider than the cache (more than 16 * 1024 elements): the rest streams through twice.
        for (int j = threadIdx.x + CACHED * blockDim.x; j < vectors; j += blockDim.x) {
            float4 u = xv[j];
            if (ds) add_into(u, dv[j]);
            if (writeBack) xv[j] = u;
            sumSquares += squares(u);
        }
        const float inv = rsqrtf(block_sum(sumSquares, scratch) / hidden + eps);
#pragma unroll
        for (int k = 0; k < CACHED; k++) {
            const int j = threadIdx.x + k * blockDim.x;
            if (j < vectors) {
                if (writeBack) xv[j] = v[k];
                store_four(o + 4 * j, v[k].x * inv * w[k].x, v[k].y * inv * w[k].y, v[k].z * inv * w[k].z,
                           v[k].w * inv * w[k].w);
            }
        }
        // Vectors past the cached ones: each thread re-reads only what it wrote itself, so no barrier is needed.
        for (int j = threadIdx.x + CACHED * blockDim.x; j < vectors; j += blockDim.x) {
            float4 u = xv[j];
            if (!writeBack && ds) add_into(u, dv[j]);
            const float4 wj = wv[j];
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
        v[k] = i < hidden ? xs[i] + (ds ? ds[i] : 0.f) : 0.f;
        sumSquares += v[k] * v[k];
    }
    for (int i = threadIdx.x + CACHED_ELEMENTS * blockDim.x; i < hidden; i += blockDim.x) {
        const float u = xs[i] + (ds ? ds[i] : 0.f);
        if (writeBack) xs[i] = u;
        sumSquares += u * u;
    }
    const float inv = rsqrtf(block_sum(sumSquares, scratch) / hidden + eps);
#pragma unroll
    for (int k = 0; k < CACHED_ELEMENTS; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < hidden) {
            if (writeBack) xs[i] = v[k];
            o[i] = from_float<T>(v[k] * inv * weight[i]);
        }
    }
    for (int i = threadIdx.x + CACHED_ELEMENTS * blockDim.x; i < hidden; i += blockDim.x) {
        const float u = writeBack ? xs[i] : xs[i] + (ds ? ds[i] : 0.f);
        o[i] = from_float<T>(u * inv * weight[i]);
    }
}

}  // namespace ember

EMBER_INSTANTIATE(add_rmsnorm,
                  (float* x, const float* delta, const float* weight, T* out, const int* rowIndex, int hidden,
                   float eps, int writeBack),
                  (x, delta, weight, out, rowIndex, hidden, eps, writeBack))
