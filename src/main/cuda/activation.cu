// The SwiGLU gate: the MLP's fused gate/up projection in, the down projection's input out.
#include "common.cuh"

namespace ember {

// out[r][c] = silu(g) * u with g = gateUp[r][c], u = gateUp[r][ff + c], silu(g) = g / (1 + e^-g), in fp32.
// gateUp is the output of the fused [gate; up] GEMM, in the storage type (as HF rounds it), so each row
// holds 2*ff values. Grid-stride over rows*ff. Moves rows*ff*3*sizeof(T) bytes; about 5 FLOPs and one
// exp per element.
template <typename T>
__device__ __forceinline__ void silu_mul(const T* __restrict__ gateUp, T* __restrict__ out, int rows, int ff) {
    constexpr int PER_VECTOR = 16 / sizeof(T);
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    if (ff % PER_VECTOR == 0) {
        // 16-byte loads and stores (8 bf16 values each): a prefill's rows of 2 x 14336 values are
        // bandwidth-bound, and 2-byte accesses left a third of the bandwidth unused.
        const size_t vectorsPerRow = ff / PER_VECTOR, n = (size_t)rows * vectorsPerRow;
        for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride) {
            const size_t r = i / vectorsPerRow, c = (i % vectorsPerRow) * PER_VECTOR;
            T g[PER_VECTOR], u[PER_VECTOR], o[PER_VECTOR];
            *reinterpret_cast<uint4*>(g) = *reinterpret_cast<const uint4*>(gateUp + r * 2 * ff + c);
            *reinterpret_cast<uint4*>(u) = *reinterpret_cast<const uint4*>(gateUp + r * 2 * ff + ff + c);
#pragma unroll
            for (int e = 0; e < PER_VECTOR; e++) {
                const float x = to_float(g[e]);
                o[e] = from_float<T>(x / (1.f + expf(-x)) * to_float(u[e]));
            }
            *reinterpret_cast<uint4*>(out + r * ff + c) = *reinterpret_cast<const uint4*>(o);
        }
        return;
    }
    const size_t n = (size_t)rows * ff;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride) {
        const size_t r = i / ff, c = i % ff;
        const float g = to_float(gateUp[r * 2 * ff + c]);
        const float u = to_float(gateUp[r * 2 * ff + ff + c]);
        out[i] = from_float<T>(g / (1.f + expf(-g)) * u);
    }
}

}  // namespace ember

EMBER_INSTANTIATE(silu_mul, (const T* gateUp, T* out, int rows, int ff), (gateUp, out, rows, ff))
