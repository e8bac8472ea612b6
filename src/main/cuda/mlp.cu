// A layer's MLP at a few rows in one launch, optionally with its attention's output projection before it: the
// matrix-vector kernel's plain, NORM and GATE builds (gemv.cuh) with a grid-wide barrier between them. Built for the
// 16-bit storage types at up to eight rows (a small decode batch, or a speculative verification of a few tokens), where
// the layer's second half is a stream of its weights; the runner times it against the separate products per shape
// (MatrixProducts).
#include "gemv.cuh"

namespace ember {

// A barrier across the whole grid, for a grid whose blocks are all resident at once (EmberKernels.mlp sizes it so).
// `count` starts at 0 and is touched only here: each block adds 1 and block 0 adds 2^31 - (gridDim.x - 1), so the
// word's top bit flips exactly when the last block arrives and its other bits are back where they were; the same word
// serves every launch after without a reset (as cooperative groups' grid sync does). The fences make each block's
// writes before it visible to every block after it. A block that waits more than about a second traps: a grid that is
// not all resident ends with an error instead of hanging the GPU.
__device__ __forceinline__ void grid_barrier(unsigned int* count) {
    __syncthreads();
    if (threadIdx.x == 0) {
        const unsigned int add = blockIdx.x == 0 ? 0x80000000u - (gridDim.x - 1) : 1u;
        __threadfence();
        const unsigned int before = atomicAdd(count, add);
        const long long start = clock64();
        unsigned int now;
        do {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(now) : "l"(count) : "memory");
            if (clock64() - start > (1LL << 31)) __trap();
        } while (((before ^ now) & 0x80000000u) == 0);
        __threadfence();
    }
    __syncthreads();
}

// A layer's MLP at a few rows in one launch, every block resident, optionally after its attention's output projection:
//   x += attention · wOᵀ where wO is given (the plain build's columns, on the same column groups as down's), then a
//   grid-wide barrier: every column of x written and visible;
//   gateUp = rmsnorm(x) * normWeight · wGateUpᵀ, rounded to T (the NORM build's prologue and columns);
//   a grid-wide barrier: every gate/up row written and visible;
//   x += (silu(gate) * up) · wDownᵀ (the GATE build's prologue, reading gateUp through L2, and columns).
// The bits are those of the builds launched one after the other (the same functions in the same order). Bytes: the
// products' weights ((qDim*h + 3*h*ff)*sizeof(T)), x read and added to, gateUp written once and read back by every
// block from L2; 2*m*(qDim*h + 3*h*ff) FLOPs. What it spares is the boundary between grids: each block asks for its
// next product's first weights before it waits at a barrier, so the stream of weights need not drain and restart.
// Shared memory: m * max(h, ff) * sizeof(T), the normalised rows and then the gated ones (the projection reads its
// rows from global memory).
template <typename T, int M, int GEMV_UNROLL, int WARPS>
__device__ void mlp(const T* __restrict__ attention, const T* __restrict__ wO, float* x, const float* __restrict__ normWeight,
                    float eps, const T* __restrict__ wGateUp, T* gateUp, const T* __restrict__ wDown, unsigned int* barrier,
                    int m, int qDim, int h, int ff) {
    extern __shared__ uint4 staged[];
    T* rows = reinterpret_cast<T*>(staged);
    constexpr int COLUMNS = 8 / WARPS;
    const WarpRun up = warp_run<T, WARPS>(h), down = warp_run<T, WARPS>(ff);
    // A block past a product's column groups stages nothing for it (the test is the same for the whole block). The
    // output projection and down have the same h columns, so a block adds to the same columns of x in both.
    const bool upGroups = blockIdx.x * COLUMNS < 2 * ff, downGroups = blockIdx.x * COLUMNS < h;
    if (wO != nullptr) {
        const WarpRun o = warp_run<T, WARPS>(qDim);
        prefetch_first_weights<T, GEMV_UNROLL, WARPS>(wO, h, qDim, blockIdx.x, o);
        wait_for_previous_grid();
        if (downGroups) staged_columns<T, float, M, GEMV_UNROLL, WARPS, Input::ROWS>(attention, wO, x, m, h, qDim, 1, o);
        prefetch_first_weights<T, GEMV_UNROLL, WARPS>(wGateUp, 2 * ff, h, blockIdx.x, up);
        grid_barrier(barrier);
    } else {
        prefetch_first_weights<T, GEMV_UNROLL, WARPS>(wGateUp, 2 * ff, h, blockIdx.x, up);
        wait_for_previous_grid();
    }
    if (upGroups) {
        normalise_rows<T, M, true>(x, normWeight, eps, rows, m, h);
        staged_columns<T, T, M, GEMV_UNROLL, WARPS, Input::NORM>(rows, wGateUp, gateUp, m, 2 * ff, h, 0, up);
    }
    prefetch_first_weights<T, GEMV_UNROLL, WARPS>(wDown, h, ff, blockIdx.x, down);
    grid_barrier(barrier);
    if (downGroups) {
        gate_rows<T, M, true>(gateUp, rows, m, ff);
        staged_columns<T, float, M, GEMV_UNROLL, WARPS, Input::GATE>(rows, wDown, x, m, h, ff, 1, down);
    }
}

}  // namespace ember

// mlp_mM: M rows at most (the runtime m may be fewer); _u8 / _u16: eight / sixteen slices in flight per lane; _wN: N
// warps a column, in every product. 256 threads (8 warps) per block; launched cooperatively (EmberKernels.mlp).
#define MLP_PARAMS (const T* __restrict__ attention, const T* __restrict__ wO, float* x, const float* __restrict__ norm,   \
                    float eps, const T* __restrict__ wGateUp, T* gateUp, const T* __restrict__ wDown, unsigned int* barrier, \
                    int m, int qDim, int h, int ff)
#define MLP_ARGS (attention, wO, x, norm, eps, wGateUp, gateUp, wDown, barrier, m, qDim, h, ff)
#define MLP_ROW_COUNTS(U, W, suffix)                                                          \
    EMBER_INSTANTIATE_EARLY_16BIT(mlp_m1##suffix, (mlp<T, 1, U, W>), MLP_PARAMS, MLP_ARGS) \
    EMBER_INSTANTIATE_EARLY_16BIT(mlp_m2##suffix, (mlp<T, 2, U, W>), MLP_PARAMS, MLP_ARGS) \
    EMBER_INSTANTIATE_EARLY_16BIT(mlp_m4##suffix, (mlp<T, 4, U, W>), MLP_PARAMS, MLP_ARGS) \
    EMBER_INSTANTIATE_EARLY_16BIT(mlp_m8##suffix, (mlp<T, 8, U, W>), MLP_PARAMS, MLP_ARGS)
MLP_ROW_COUNTS(4, 1, )
MLP_ROW_COUNTS(8, 1, _u8)
MLP_ROW_COUNTS(8, 2, _u8_w2)
MLP_ROW_COUNTS(4, 4, _w4)
MLP_ROW_COUNTS(16, 1, _u16)
