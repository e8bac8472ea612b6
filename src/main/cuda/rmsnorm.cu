// RMSNorm fused with the residual add that precedes it in every pre-norm decoder layer.
#include "common.cuh"

namespace ember {

// For each output row r, with s = rowIndex ? rowIndex[r] : r:
//   v      = x[s] + (delta ? delta[s] : 0)             (the residual add)
//   x[s]   = v                                          (when writeBack)
//   out[r] = v * rsqrt(mean(v^2) + eps) * weight        (rounded once to T)
// rowIndex lets the final norm read only each sequence's last token. Grid: one block per output row.
// Moves rows*hidden*(4 + 4 + sizeof(T)) bytes, +4 more per element with writeBack, and the second
// pass re-reads x from L1/L2; about 5 FLOPs per element.
template <typename T>
__device__ __forceinline__ void add_rmsnorm(float* __restrict__ x, const float* __restrict__ delta,
                                            const float* __restrict__ weight, T* __restrict__ out,
                                            const int* __restrict__ rowIndex, int hidden, float eps,
                                            int writeBack) {
    __shared__ float scratch[32];
    const int r = blockIdx.x;
    const int s = rowIndex ? rowIndex[r] : r;
    float* xs = x + (size_t)s * hidden;
    const float* ds = delta ? delta + (size_t)s * hidden : nullptr;
    float sumSquares = 0.f;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
        float v = xs[i] + (ds ? ds[i] : 0.f);
        if (writeBack) xs[i] = v;
        sumSquares += v * v;
    }
    const float inv = rsqrtf(block_sum(sumSquares, scratch) / hidden + eps);
    T* o = out + (size_t)r * hidden;
    // With writeBack each thread re-reads only the elements it wrote itself, so no barrier is needed.
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
        float v = writeBack ? xs[i] : xs[i] + (ds ? ds[i] : 0.f);
        o[i] = from_float<T>(v * inv * weight[i]);
    }
}

}  // namespace ember

EMBER_INSTANTIATE(add_rmsnorm,
                  (float* x, const float* delta, const float* weight, T* out, const int* rowIndex, int hidden,
                   float eps, int writeBack),
                  (x, delta, weight, out, rowIndex, hidden, eps, writeBack))
