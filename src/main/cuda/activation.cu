// The SwiGLU gate: the MLP's fused gate/up projection in, the down projection's input out.
#include "common.cuh"

namespace ember {

// 16-byte vectors each thread of silu_mul takes per row; a block of SILU_THREADS covers SILU_THREADS * SILU_VECTORS
// vectors of one row (EmberKernels.siluMul sizes the grid from both).
constexpr int SILU_VECTORS = 2;
constexpr int SILU_THREADS = 256;

// out[r][c] = silu(g) * u with g = gateUp[r][c], u = gateUp[r][ff + c], silu(g) = g / (1 + e^-g), in fp32 (swiglu),
// rounded once to T. gateUp is the output of the fused [gate; up] GEMM, in the storage type (as HF rounds it), so each row
// holds 2*ff values. Moves rows*ff*3*sizeof(T) bytes (44 MB for 512 rows of ff 14336 in bf16: about 10.5 us of HBM);
// about 5 FLOPs and one exp per element.
// Grid: (ceil(units / (SILU_THREADS * SILU_VECTORS)), rows, 1), where a unit is a 16-byte vector when ff is a multiple
// of one (every real model; then each row starts 16-byte aligned), else one element. The row is the block's y (at
// most 65535; rows past it loop), so no thread divides by the row length; each thread has 2 * SILU_VECTORS
// independent 16-byte loads in flight (the loads read through the non-coherent path: gateUp is read once).
template <typename T>
__device__ __forceinline__ void silu_mul_row(const T* __restrict__ gateUp, T* __restrict__ out, int r, int ff) {
    constexpr int PER_VECTOR = 16 / sizeof(T);
    const T* gate = gateUp + (size_t)r * 2 * ff;
    const T* up = gate + ff;
    T* o = out + (size_t)r * ff;
    if (ff % PER_VECTOR == 0) {
        const int vectors = ff / PER_VECTOR;
        const int first = blockIdx.x * (SILU_THREADS * SILU_VECTORS) + threadIdx.x;
        uint4 g[SILU_VECTORS], u[SILU_VECTORS];
        // All loads first, then the arithmetic: the loads of one thread overlap instead of queueing behind each other.
#pragma unroll
        for (int k = 0; k < SILU_VECTORS; k++) {
            const int j = first + k * SILU_THREADS;
            if (j < vectors) {
                g[k] = load_streaming(gate + (size_t)j * PER_VECTOR);
                u[k] = load_streaming(up + (size_t)j * PER_VECTOR);
            }
        }
#pragma unroll
        for (int k = 0; k < SILU_VECTORS; k++) {
            const int j = first + k * SILU_THREADS;
            if (j < vectors) {
                *reinterpret_cast<uint4*>(o + (size_t)j * PER_VECTOR) = swiglu16<T>(g[k], u[k]);
            }
        }
        return;
    }
    // ff not a multiple of a vector: element by element, striding over the row with however many blocks it got.
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < ff; c += gridDim.x * blockDim.x) {
        o[c] = from_float<T>(swiglu(to_float(gate[c]), to_float(up[c])));
    }
}

template <typename T>
__device__ __forceinline__ void silu_mul(const T* __restrict__ gateUp, T* __restrict__ out, int rows, int ff) {
    // Rows past the grid's 65535 in y, if ever, loop.
    for (int r = blockIdx.y; r < rows; r += gridDim.y) silu_mul_row(gateUp, out, r, ff);
}

}  // namespace ember

EMBER_INSTANTIATE(silu_mul, (const T* gateUp, T* out, int rows, int ff), (gateUp, out, rows, ff))
