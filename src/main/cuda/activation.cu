// The SwiGLU gate: the MLP's fused gate/up projection in, the down projection's input out.
#include "common.cuh"

namespace ember {

// out[r][c] = silu(g) * u with g = gateUp[r][c], u = gateUp[r][ff + c], silu(g) = g / (1 + e^-g), in fp32.
// gateUp is the output of the fused [gate; up] GEMM, in the storage type (as HF rounds it), so each row
// holds 2*ff values. Grid-stride over rows*ff. Moves rows*ff*3*sizeof(T) bytes; about 5 FLOPs and one
// exp per element.
template <typename T>
__device__ __forceinline__ void silu_mul(const T* __restrict__ gateUp, T* __restrict__ out, int rows, int ff) {
    const size_t n = (size_t)rows * ff;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const size_t r = i / ff, c = i % ff;
        const float g = to_float(gateUp[r * 2 * ff + c]);
        const float u = to_float(gateUp[r * 2 * ff + ff + c]);
        out[i] = from_float<T>(g / (1.f + expf(-g)) * u);
    }
}

}  // namespace ember

EMBER_INSTANTIATE(silu_mul, (const T* gateUp, T* out, int rows, int ff), (gateUp, out, rows, ff))
