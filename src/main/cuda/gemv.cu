// Products of a few rows by a weight matrix, out[m][n] = x[m][k] · w[n][k]ᵀ for m <= 8: the decode steps of
// small batches, where every weight is used by at most eight rows and the product is a stream of the weights.
//
// Bytes: n*k*sizeof(T) of weights, read once, with 16-byte loads that bypass L1 (ld.global.nc.L1::no_allocate)
// so the few rows of x (m*k*sizeof(T), re-read by every warp) stay there; 2*m*n*k FLOPs. Work: one warp per output
// column (a row of w), or WARPS warps each taking a contiguous run of it, each lane a 16-byte slice UNROLL slices at
// a time, all loads of a step issued before the first product; m fp32 sums per lane, reduced across the warp at the
// end (and across a column's warps in shared memory), lane i writing row i's output. Every warp reads contiguous runs
// of one row; the runner times each build against cuBLASLt per shape and keeps the fastest (n >= 1024 at every shape
// it is chosen for).
//
// Requires k a multiple of 16 / sizeof(T) and x, w 16-byte aligned (rows k*sizeof(T) apart).
#include "common.cuh"

namespace ember {

// What the product's x is. ROWS: the rows themselves, read from global memory. NORM: the fp32 residual stream, whose
// RMSNorm each block computes into shared memory first (normalise_rows). GATE: the fused gate/up product's rows
// (2*k values each, the storage type), whose SwiGLU gate silu(gate) * up each block computes into shared memory first
// (gate_rows). The two staged inputs spare a small kernel and its round trip through memory between two products.
enum class Input { ROWS, NORM, GATE };

// The row of x that sum i of an M-row build reads: i, or for the sums past the runtime m (never written) row m - 1.
template <int M>
__device__ __forceinline__ int row_of(int i, int m) {
    return M == 1 ? 0 : min(i, m - 1);
}

// x's 16 bytes at p: through the read-only path from global memory, or from shared memory where the block normalised x.
template <bool SHARED>
__device__ __forceinline__ uint4 load_x(const void* p) {
    if constexpr (SHARED) {
        return *reinterpret_cast<const uint4*>(p);
    } else {
        return __ldg(reinterpret_cast<const uint4*>(p));
    }
}

// The NORM builds' prologue: rows[i] = rmsnorm(residual[i]) * weight for the m rows, into the block's shared memory,
// rounded once to T, in rmsnorm's arithmetic and (for 256 threads and hidden = 4096) its order of summation:
// per thread over vectors threadIdx.x + j * 256, then across the warp and across the warps as block_sum adds. All M
// rows go through each pass together (rows past m re-read row m - 1, their sums unused), so the block's reductions
// cost one pair of barriers for all rows, not a pair a row. Moves m*k*4 bytes of residual (twice) and k*4 of weight
// from L2 per block, which is why NORM builds keep their blocks resident and loop over columns.
template <typename T, int M>
__device__ void normalise_rows(const float* __restrict__ residual, const float* __restrict__ weight, float eps, T* rows,
                               int m, int k) {
    __shared__ float scratch[M][32];
    const int vectors = k >> 2, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    const float4* wv = reinterpret_cast<const float4*>(weight);
    float sums[M];
#pragma unroll
    for (int i = 0; i < M; i++) sums[i] = 0.f;
    for (int j = threadIdx.x; j < vectors; j += blockDim.x) {
#pragma unroll
        for (int i = 0; i < M; i++) {
            const float4 v = reinterpret_cast<const float4*>(residual + (size_t)row_of<M>(i, m) * k)[j];
            sums[i] += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
    }
#pragma unroll
    for (int i = 0; i < M; i++) {
        sums[i] = warp_sum(sums[i]);
        if (lane == 0) scratch[i][warp] = sums[i];
    }
    __syncthreads();
    float inv[M];
#pragma unroll
    for (int i = 0; i < M; i++) inv[i] = rsqrtf(warp_sum(lane < warps ? scratch[i][lane] : 0.f) / k + eps);
    for (int j = threadIdx.x; j < vectors; j += blockDim.x) {
        const float4 w = wv[j];
        float4 v[M];  // every row's load before the first store (a load behind each row's test would wait for the last)
#pragma unroll
        for (int i = 0; i < M; i++) v[i] = reinterpret_cast<const float4*>(residual + (size_t)row_of<M>(i, m) * k)[j];
#pragma unroll
        for (int i = 0; i < M; i++) {
            if (i < m) {
                T* o = rows + (size_t)i * k + 4 * j;
                o[0] = from_float<T>(v[i].x * inv[i] * w.x);
                o[1] = from_float<T>(v[i].y * inv[i] * w.y);
                o[2] = from_float<T>(v[i].z * inv[i] * w.z);
                o[3] = from_float<T>(v[i].w * inv[i] * w.w);
            }
        }
    }
    __syncthreads();
}

// The GATE builds' prologue: rows[i][c] = silu(gateUp[i][c]) * gateUp[i][k + c] for the m rows, into the block's
// shared memory, rounded once to T: silu_mul's arithmetic (swiglu), so the product has the bits of silu_mul followed
// by the plain build. Moves m*2k*sizeof(T) bytes from L2 per block (57 KB a row for the 8B shape's k = 14336 in bf16)
// and computes m*k exponentials, which is why GATE builds keep their blocks resident and loop over columns.
template <typename T, int M>
__device__ void gate_rows(const T* __restrict__ gateUp, T* rows, int m, int k) {
    constexpr int VEC = 16 / sizeof(T);
    const int vectors = k / VEC;
    for (int j = threadIdx.x; j < vectors; j += blockDim.x) {
        uint4 g[M], u[M];  // every row's loads before the first store
#pragma unroll
        for (int i = 0; i < M; i++) {
            const T* gate = gateUp + (size_t)row_of<M>(i, m) * 2 * k + (size_t)j * VEC;
            g[i] = load_streaming(gate);
            u[i] = load_streaming(gate + k);
        }
#pragma unroll
        for (int i = 0; i < M; i++) {
            if (i < m) *reinterpret_cast<uint4*>(rows + (size_t)i * k + (size_t)j * VEC) = swiglu16<T>(g[i], u[i]);
        }
    }
    __syncthreads();
}

// One group of a block's columns (8 / WARPS of them): each warp's part of its column's sum, and the column's output.
// LOOPS: the block goes on to another group after this one (staged_columns), so with several warps a column it waits
// for every warp's part to be read before the next group's parts overwrite them.
template <typename T, typename O, int M, int GEMV_UNROLL, int WARPS, Input IN, bool LOOPS>
__device__ __forceinline__ void gemv_group(const T* __restrict__ x, const T* __restrict__ w, O* __restrict__ out, int m,
                                           int n, int k, int accumulate, int group, int begin, int end) {
    constexpr int VEC = 16 / sizeof(T);
    constexpr int STEP = 32 * VEC;
    constexpr int COLUMNS = 8 / WARPS;
    constexpr bool SHARED = IN != Input::ROWS;  // x is the block's staged copy in shared memory
    const int warpInBlock = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int part = warpInBlock % WARPS;
    const int column = group * COLUMNS + warpInBlock / WARPS;
    const bool valid = column < n;
    if (WARPS == 1 && !valid) return;  // with several warps a column every warp reaches the block's barrier
    const T* row = w + (size_t)(valid ? column : 0) * k;
    float acc[M];
#pragma unroll
    for (int i = 0; i < M; i++) acc[i] = 0.f;
    int at = begin + lane * VEC;
    for (; valid && at + (GEMV_UNROLL - 1) * STEP < end; at += GEMV_UNROLL * STEP) {
        uint4 wv[GEMV_UNROLL];
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) wv[u] = load_streaming(row + at + u * STEP);
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) {
#pragma unroll
            for (int i = 0; i < M; i++) {
                // Rows past m read row m - 1 again (an L1 hit) and their sums are never written: with no test around
                // the x loads and products ptxas issues every row's loads at once, where a branch per row made them
                // round trips one after another (on an H100: batch 4 of the 8B shape 591 -> 640 tok/s, the shipped
                // tiny model at 3 and 8 rows +22-24%; docs/benchmarks.md).
                const uint4 xv = load_x<SHARED>(x + (size_t)row_of<M>(i, m) * k + at + u * STEP);
                acc[i] = dot16<T>(wv[u], xv, acc[i]);
            }
        }
    }
    if constexpr (GEMV_UNROLL >= 16) {
        // The 16-slice build's last steps (up to 15: the 8B shape's down projection, k = 14336, leaves 8) in one
        // round trip, every load issued before the first product, summed in the loop's order. The smaller builds
        // take theirs one step at a time, which holds fewer registers: ptxas fits their one-row entries in 32, and
        // their speed was measured at that occupancy.
        if (valid && at < end) {
            uint4 wv[GEMV_UNROLL];
#pragma unroll
            for (int u = 0; u < GEMV_UNROLL; u++) {
                if (at + u * STEP < end) wv[u] = load_streaming(row + at + u * STEP);
            }
#pragma unroll
            for (int u = 0; u < GEMV_UNROLL; u++) {
                if (at + u * STEP < end) {
#pragma unroll
                    for (int i = 0; i < M; i++) {
                        const uint4 xv = load_x<SHARED>(x + (size_t)row_of<M>(i, m) * k + at + u * STEP);
                        acc[i] = dot16<T>(wv[u], xv, acc[i]);
                    }
                }
            }
        }
    } else {
        for (; valid && at < end; at += STEP) {
            const uint4 wv = load_streaming(row + at);
#pragma unroll
            for (int i = 0; i < M; i++) {
                acc[i] = dot16<T>(wv, load_x<SHARED>(x + (size_t)row_of<M>(i, m) * k + at), acc[i]);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < M; i++) acc[i] = warp_sum(acc[i]);
    if constexpr (WARPS > 1) {
        __shared__ float parts[8][M];  // a block's 8 warps
        if (lane == 0) {
#pragma unroll
            for (int i = 0; i < M; i++) parts[warpInBlock][i] = acc[i];
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < M; i++) {
#pragma unroll
            for (int p = 1; p < WARPS; p++) acc[i] += parts[warpInBlock - part + p][i];
        }
        if constexpr (LOOPS) __syncthreads();  // the block's next group overwrites parts
    }
    // Every lane holds every row's sum (warp_sum and the parts are added in all lanes): lane i writes row i, so that
    // an accumulating product's m read-modify-writes of the residual are one round trip, not m one after another
    // (the compiler cannot hoist row i + 1's load above row i's store, whose address it cannot tell apart). One-row
    // builds keep lane 0 and row 0 as constants, as they were measured.
    const int outRow = M == 1 ? 0 : lane;
    if (part == 0 && valid && (M == 1 ? lane == 0 : lane < m)) {
        float sum = acc[0];
#pragma unroll
        for (int i = 1; i < M; i++) {
            if (outRow == i) sum = acc[i];
        }
        O* o = out + (size_t)outRow * n + column;
        if constexpr (sizeof(O) == sizeof(float)) {
            *o = accumulate ? *o + sum : sum;
        } else {
            *o = from_float<O>(sum);
        }
    }
}

// The run of a column's row that warp `part` of its WARPS takes: all of it, or a contiguous share of its 32-lane steps.
struct WarpRun {
    int begin, end;
};

template <typename T, int WARPS>
__device__ __forceinline__ WarpRun warp_run(int k) {
    constexpr int STEP = 32 * (16 / sizeof(T));
    const int part = (threadIdx.x >> 5) % WARPS;
    const int steps = (k + STEP - 1) / STEP;
    return WARPS == 1 ? WarpRun{0, k} : WarpRun{STEP * (steps * part / WARPS), min(k, STEP * (steps * (part + 1) / WARPS))};
}

// Asks the first GEMV_UNROLL slices of each warp's run in column group `group` into L2. No kernel writes the weights,
// so this may come before waiting for the kernels before this one (or at a barrier): under programmatic dependent
// launch their stream from memory starts while the kernels before still run, and the loads find them there. A
// prefetch holds no register.
template <typename T, int GEMV_UNROLL, int WARPS>
__device__ __forceinline__ void prefetch_first_weights(const T* __restrict__ w, int n, int k, int group, WarpRun run) {
    constexpr int VEC = 16 / sizeof(T);
    constexpr int STEP = 32 * VEC;
    const int column = group * (8 / WARPS) + (threadIdx.x >> 5) / WARPS, lane = threadIdx.x & 31;
    if (column < n) {
        const T* row = w + (size_t)column * k;
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) {
            const int at = run.begin + lane * VEC + u * STEP;
            if (at < run.end) prefetch_l2(row + at);
        }
    }
}

// A staged build's columns: the block's groups, gridDim.x apart, each against x, the rows staged in shared memory.
template <typename T, typename O, int M, int GEMV_UNROLL, int WARPS, Input IN>
__device__ __forceinline__ void staged_columns(const T* x, const T* __restrict__ w, O* __restrict__ out, int m, int n,
                                               int k, int accumulate, WarpRun run) {
    const int groups = (n + 8 / WARPS - 1) / (8 / WARPS);
    for (int group = blockIdx.x; group < groups; group += gridDim.x) {
        gemv_group<T, O, M, GEMV_UNROLL, WARPS, IN, true>(x, w, out, m, n, k, accumulate, group, run.begin, run.end);
    }
}

// Entered without waiting for the kernels before it (EMBER_INSTANTIATE_EARLY): it waits after its first loads.
// M: the most rows of x this instantiation handles (the runtime m may be smaller). O: the output type.
// UNROLL: 16-byte slices of the row each lane has in flight per step (4, 8 or 16: 8 halves the round trips of a
// short row, 4 leaves more registers for large M; 16 puts a whole 8 KB row of the 8B shape in flight in one round trip,
// with fewer warps resident at once: the runner times each).
// WARPS: warps per column (1, 2 or 4), each taking a contiguous run of the row's steps, their sums added in shared
// memory in the order of k. A short product (n = 4096 columns of 8 KB at the 8B shape's o projection) gives each warp
// two round trips to memory and the whole kernel few more than that, so launch and latency weigh as much as the
// bytes; more warps a column put more of the row in flight at once (the runner times each).
// IN: Input::NORM, x is the fp32 residual stream and the product's input is its RMSNorm (normalise_rows);
// Input::GATE, x is the gate/up product and the input its SwiGLU gate (gate_rows). Either goes into dynamic shared
// memory of m*k*sizeof(T) bytes: it costs no kernel of its own, no round trip through memory, and no wait between
// two grids. The grid is then only as large as the GPU holds at once and each block loops over column groups, so that
// the input is computed once per resident block, not once per group.
// accumulate (fp32 output only): out += the product, the residual add of an output projection.
template <typename T, typename O, int M, int GEMV_UNROLL, int WARPS, Input IN>
__device__ void gemv(const void* __restrict__ xin, const float* __restrict__ normWeight, float eps,
                     const T* __restrict__ w, O* __restrict__ out, int m, int n, int k, int accumulate) {
    const WarpRun run = warp_run<T, WARPS>(k);
    prefetch_first_weights<T, GEMV_UNROLL, WARPS>(w, n, k, blockIdx.x, run);
    wait_for_previous_grid();
    if constexpr (IN == Input::ROWS) {
        const T* x = reinterpret_cast<const T*>(xin);
        gemv_group<T, O, M, GEMV_UNROLL, WARPS, IN, false>(x, w, out, m, n, k, accumulate, blockIdx.x, run.begin, run.end);
    } else {
        extern __shared__ uint4 staged[];
        const T* x = reinterpret_cast<const T*>(staged);
        if constexpr (IN == Input::NORM) {
            normalise_rows<T, M>(reinterpret_cast<const float*>(xin), normWeight, eps, reinterpret_cast<T*>(staged), m, k);
        } else {
            gate_rows<T, M>(reinterpret_cast<const T*>(xin), reinterpret_cast<T*>(staged), m, k);
        }
        staged_columns<T, O, M, GEMV_UNROLL, WARPS, IN>(x, w, out, m, n, k, accumulate, run);
    }
}

}  // namespace ember

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
