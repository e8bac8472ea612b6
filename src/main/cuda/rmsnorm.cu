// RMSNorm fused with the residual add that precedes it in every pre-norm decoder layer.
#include "common.cuh"

namespace ember {

// For each output row r, with s = rowIndex ? rowIndex[r] : r:
//   v      = x[s] + (delta ? delta[s] : 0)             (the residual add)
//   x[s]   = v                                          (when writeBack)
//   out[r] = v * rsqrt(mean(v^2) + eps) * weight        (rounded once to T)
// rowIndex lets the final norm read only each sequence's last token. Grid: one block per output row.
// Moves rows*hidden*(4 + 4 + sizeof(T)) bytes, +4 more per element with writeBack, and hidden*4 of weight;
// about 5 FLOPs per element.
template <typename T>
__device__ __forceinline__ void add_rmsnorm(float* __restrict__ x, const float* __restrict__ delta,
                                            const float* __restrict__ weight, T* __restrict__ out,
                                            const int* __restrict__ rowIndex, int hidden, float eps,
                                            int writeBack) {
    // Rows of up to CACHED * blockDim elements stay in registers between the two passes; decode steps (a
    // handful of rows) are latency-bound, and the second read would cost a round trip to L2.
    constexpr int CACHED = 8;
    __shared__ float scratch[32];
    const int r = blockIdx.x;
    const int s = rowIndex ? rowIndex[r] : r;
    float* xs = x + (size_t)s * hidden;
    const float* ds = delta ? delta + (size_t)s * hidden : nullptr;
    float v[CACHED];
    float sumSquares = 0.f;
#pragma unroll
    for (int k = 0; k < CACHED; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        v[k] = i < hidden ? xs[i] + (ds ? ds[i] : 0.f) : 0.f;
        sumSquares += v[k] * v[k];
    }
    for (int i = threadIdx.x + CACHED * blockDim.x; i < hidden; i += blockDim.x) {
        const float u = xs[i] + (ds ? ds[i] : 0.f);
        if (writeBack) xs[i] = u;
        sumSquares += u * u;
    }
    const float inv = rsqrtf(block_sum(sumSquares, scratch) / hidden + eps);
    T* o = out + (size_t)r * hidden;
#pragma unroll
    for (int k = 0; k < CACHED; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < hidden) {
            if (writeBack) xs[i] = v[k];
            o[i] = from_float<T>(v[k] * inv * weight[i]);
        }
    }
    // Elements past the cached ones: each thread re-reads only what it wrote itself, so no barrier is needed.
    for (int i = threadIdx.x + CACHED * blockDim.x; i < hidden; i += blockDim.x) {
        const float u = writeBack ? xs[i] : xs[i] + (ds ? ds[i] : 0.f);
        o[i] = from_float<T>(u * inv * weight[i]);
    }
}

}  // namespace ember

EMBER_INSTANTIATE(add_rmsnorm,
                  (float* x, const float* delta, const float* weight, T* out, const int* rowIndex, int hidden,
                   float eps, int writeBack),
                  (x, delta, weight, out, rowIndex, hidden, eps, writeBack))
