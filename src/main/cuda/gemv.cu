// The matrix-vector kernel's entries (gemv.cuh holds its code and says what it computes and moves).
#include "gemv.cuh"

// gemv_mM: fp32 output (added to out's values when accumulate is set); gemv_mM_rounded: output in the storage type;
// gemv_mM_normed: x is the fp32 residual, normalised in the prologue (fp32 output), gemv_mM_rounded_normed the same
// rounded; gemv_mM_gated: x is the gate/up product, gated in the prologue (fp32 output: the down projection, which adds
// into the residual); _u8 / _u16: eight / sixteen slices in flight per lane; _wN: N warps a column. 256 threads
// (8 warps) per block.
#define GEMV_PARAMS (const void* __restrict__ x, const float* __restrict__ norm, float eps, const T* __restrict__ w, \
                     float* __restrict__ out, int m, int n, int k, int accumulate)
#define GEMV_ROUNDED_PARAMS (const void* __restrict__ x, const float* __restrict__ norm, float eps, const T* __restrict__ w, \
                             T* __restrict__ out, int m, int n, int k, int accumulate)
#define GEMV_ARGS (x, norm, eps, w, out, m, n, k, accumulate)
#define GEMV_VARIANTS(M, U, W, suffix)                                                                                       \
    EMBER_INSTANTIATE_EARLY(gemv_m##M##suffix, (gemv<T, float, M, U, W, Input::ROWS>), GEMV_PARAMS, GEMV_ARGS)               \
    EMBER_INSTANTIATE_EARLY(gemv_m##M##_rounded##suffix, (gemv<T, T, M, U, W, Input::ROWS>), GEMV_ROUNDED_PARAMS, GEMV_ARGS) \
    EMBER_INSTANTIATE_EARLY(gemv_m##M##_normed##suffix, (gemv<T, float, M, U, W, Input::NORM>), GEMV_PARAMS, GEMV_ARGS)      \
    EMBER_INSTANTIATE_EARLY(gemv_m##M##_rounded_normed##suffix, (gemv<T, T, M, U, W, Input::NORM>), GEMV_ROUNDED_PARAMS,     \
                            GEMV_ARGS)                                                                                       \
    EMBER_INSTANTIATE_EARLY(gemv_m##M##_gated##suffix, (gemv<T, float, M, U, W, Input::GATE>), GEMV_PARAMS, GEMV_ARGS)
#define GEMV_ROW_COUNTS(U, W, suffix) \
    GEMV_VARIANTS(1, U, W, suffix) GEMV_VARIANTS(2, U, W, suffix) GEMV_VARIANTS(4, U, W, suffix) GEMV_VARIANTS(8, U, W, suffix)
GEMV_ROW_COUNTS(4, 1, )
GEMV_ROW_COUNTS(8, 1, _u8)
GEMV_ROW_COUNTS(8, 2, _u8_w2)
GEMV_ROW_COUNTS(4, 4, _w4)
GEMV_ROW_COUNTS(16, 1, _u16)
