// Products of a small batch of rows by a weight matrix on the tensor cores, out[m][n] = x[m][k] · w[n][k]ᵀ for up
// to 256 rows: the decode steps of a batch too large for the matrix-vector kernel (gemv.cu) and too small for the
// weights to stop being most of the bytes. cuBLASLt runs these too; what this kernel has that its kernels cannot is
// programmatic dependent launch: a block asks for its first weight tiles before it waits for the kernels before it
// (no kernel writes the weights), so that the stream of weights starts while the norm before the product runs.
//
// Bytes: n*k*sizeof(T) of weights, read once (each block its columns' rows), plus m*k*sizeof(T) of x per block
// (from L2 after the first), m*n*sizeof(O) written; 2*m*n*k FLOPs on mma.sync m16n8k16 (tensor_cores.cuh), fp32
// accumulation. Work: a block of 8 warps takes 16 * GROUPS output columns (128, 64 or 32) for every row of x; warp w
// takes 16 columns (w % GROUPS) and, in each chunk of 64 rows, 64 * GROUPS / 8 of them (w / GROUPS): the weights are
// the A operand (16 columns by 16 of k), x the B operand (16 of k by 8 rows; a row of x is already B's layout, as
// keys are in the attention kernels). Wider blocks read x (from L2) fewer times for the same weights; narrower ones
// give a product of few columns more blocks.
// Tiles of 64 of k of both move through PRODUCT_STAGES of shared memory by cp.async, each 16-byte chunk of a 128-byte row
// stored at its index XOR the row's (so that ldmatrix reads eight rows' chunks from eight different banks).
//
// Split k: where a product has too few columns to give every multiprocessor a block, the grid's y splits the tiles of
// k into runs, each block writing its fp32 sums to partial[split][m][n] (splits * m * n * 4 bytes, mostly staying in
// L2), and product_reduce adds them into out (splits * m * n * 4 bytes read, m * n * sizeof(O) written).
//
// Requires k a multiple of 8 and x, w 16-byte aligned; rows of x past m and columns past n are zero-filled and
// not written.
#include "tensor_cores.cuh"

namespace ember {

constexpr int PRODUCT_DEPTH = 64;      // elements of k a tile holds: 128 bytes, eight 16-byte chunks a row
constexpr int PRODUCT_CHUNK_ROWS = 64; // rows of x a chunk holds
constexpr int PRODUCT_STAGES = 3;
constexpr int PRODUCT_THREADS = 256;

// Byte offset of 16-byte chunk `chunk` of row `row` in a swizzled tile.
__device__ __forceinline__ int product_tile_offset(int row, int chunk) {
    return row * 128 + ((chunk ^ (row & 7)) << 4);
}

// Starts the copies of rows [0, rows) of a tile, k from k0 on: row r from src + r * k (zero-filled past `valid` rows
// and past k), spread over the block's threads.
template <typename T>
__device__ __forceinline__ void product_load_tile(unsigned char* tile, const T* __restrict__ src, int rows, int valid,
                                                  int k, int k0) {
    for (int i = threadIdx.x; i < rows * 8; i += PRODUCT_THREADS) {
        const int row = i >> 3, chunk = i & 7, at = k0 + chunk * 8;
        const bool inside = row < valid && at < k;
        copy_async_16(tile + product_tile_offset(row, chunk), inside ? src + (size_t)row * k + at : src, inside);
    }
}

// CHUNKS: chunks of 64 rows of x the build holds (1, 2 or 4: m up to 64, 128 or 256). GROUPS: column groups of 16
// (8, 4 or 2: 128, 64 or 32 columns a block). O: the output type. Entered without waiting for the kernels before it: it
// waits after asking for its first weight tiles.
template <typename T, typename O, int CHUNKS, int GROUPS>
__device__ void product_mma(const T* __restrict__ x, const T* __restrict__ w, O* __restrict__ out,
                            float* __restrict__ partial, int m, int n, int k) {
    extern __shared__ __align__(128) unsigned char shared[];
    constexpr int PRODUCT_COLUMNS = 16 * GROUPS;
    constexpr int ROWS_PER_WARP = PRODUCT_CHUNK_ROWS * GROUPS / 8;  // of each chunk: 64, 32 or 16
    constexpr int PAIRS = ROWS_PER_WARP / 16;                       // ldmatrix.x4 loads of two 8-row tiles
    constexpr int W_BYTES = PRODUCT_COLUMNS * 128, X_BYTES = CHUNKS * PRODUCT_CHUNK_ROWS * 128;
    constexpr int STAGE_BYTES = W_BYTES + X_BYTES;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int columnGroup = warp % GROUPS, rowPart = warp / GROUPS;
    const int column0 = blockIdx.x * PRODUCT_COLUMNS;
    const int columns = min(PRODUCT_COLUMNS, n - column0);
    const T* wBlock = w + (size_t)column0 * k;
    const int allTiles = (k + PRODUCT_DEPTH - 1) / PRODUCT_DEPTH, splits = gridDim.y;
    const int firstTile = blockIdx.y * allTiles / splits, tiles = (blockIdx.y + 1) * allTiles / splits - firstTile;
    const int k0 = firstTile * PRODUCT_DEPTH;

    // The weights of the first stages before the wait (no kernel writes them), then x's, one group per stage: the
    // first group holds every early weight tile, which only makes its wait the longer.
#pragma unroll
    for (int s = 0; s < PRODUCT_STAGES - 1; s++) {
        if (s < tiles) product_load_tile(shared + s * STAGE_BYTES, wBlock, PRODUCT_COLUMNS, columns, k, k0 + s * PRODUCT_DEPTH);
    }
    wait_for_previous_grid();
#pragma unroll
    for (int s = 0; s < PRODUCT_STAGES - 1; s++) {
        if (s < tiles) product_load_tile(shared + s * STAGE_BYTES + W_BYTES, x, CHUNKS * PRODUCT_CHUNK_ROWS, m, k, k0 + s * PRODUCT_DEPTH);
        asm volatile("cp.async.commit_group;\n" ::);
    }

    float acc[CHUNKS][2 * PAIRS][4];
#pragma unroll
    for (int c = 0; c < CHUNKS; c++)
#pragma unroll
        for (int t = 0; t < 2 * PAIRS; t++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[c][t][i] = 0.f;

    for (int tile = 0; tile < tiles; tile++) {
        asm volatile("cp.async.wait_group %0;\n" :: "n"(PRODUCT_STAGES - 2));
        __syncthreads();  // the tile is in; every warp is done with the stage the next copies overwrite
        const int next = tile + PRODUCT_STAGES - 1;
        if (next < tiles) {
            unsigned char* stage = shared + (next % PRODUCT_STAGES) * STAGE_BYTES;
            product_load_tile(stage, wBlock, PRODUCT_COLUMNS, columns, k, k0 + next * PRODUCT_DEPTH);
            product_load_tile(stage + W_BYTES, x, CHUNKS * PRODUCT_CHUNK_ROWS, m, k, k0 + next * PRODUCT_DEPTH);
        }
        asm volatile("cp.async.commit_group;\n" ::);  // possibly empty: one group per iteration
        const unsigned wTile = (unsigned)__cvta_generic_to_shared(shared + (tile % PRODUCT_STAGES) * STAGE_BYTES);
        const unsigned xTile = wTile + W_BYTES;
#pragma unroll
        for (int step = 0; step < PRODUCT_DEPTH / 16; step++) {
            // A: the warp's 16 columns, k [16 step, 16 step + 16): lanes 0-15 rows 0-15 of the first 8 of k, 16-31 the
            // next 8 (a0..a3 as m16n8k16 wants them).
            uint32_t a[4];
            const unsigned aAt = wTile + product_tile_offset(columnGroup * 16 + (lane & 15), 2 * step + (lane >> 4));
            asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                         : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3]) : "r"(aAt));
#pragma unroll
            for (int c = 0; c < CHUNKS; c++) {
#pragma unroll
                for (int pair = 0; pair < PAIRS; pair++) {
                    // B of two tiles of 8 rows: lanes 0-7 / 8-15 the first tile's rows at k and k + 8, 16-31 the second's.
                    const int row = c * PRODUCT_CHUNK_ROWS + rowPart * ROWS_PER_WARP + pair * 16 + (lane >> 4) * 8 + (lane & 7);
                    uint32_t b[4];
                    const unsigned bAt = xTile + product_tile_offset(row, 2 * step + ((lane >> 3) & 1));
                    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                                 : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3]) : "r"(bAt));
                    MmaOps<T>::mma(acc[c][2 * pair], a, b[0], b[1]);
                    MmaOps<T>::mma(acc[c][2 * pair + 1], a, b[2], b[3]);
                }
            }
        }
    }

    // c0, c1: column g of the warp's 16, rows 2t and 2t + 1 of the tile; c2, c3: column g + 8. A split's sums go to
    // its partial rows, for product_reduce.
    const int g = lane >> 2, t = lane & 3;
    float* partialRows = partial + (size_t)blockIdx.y * m * n;
#pragma unroll
    for (int c = 0; c < CHUNKS; c++) {
#pragma unroll
        for (int tile = 0; tile < 2 * PAIRS; tile++) {
            const int row = c * PRODUCT_CHUNK_ROWS + rowPart * ROWS_PER_WARP + tile * 8 + 2 * t;
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int r = row + (i & 1), column = column0 + columnGroup * 16 + g + (i >> 1) * 8;
                if (r >= m || column >= n) continue;
                if (splits == 1) {
                    out[(size_t)r * n + column] = from_float<O>(acc[c][tile][i]);
                } else {
                    partialRows[(size_t)r * n + column] = acc[c][tile][i];
                }
            }
        }
    }
}

// out[i] = the sum over splits of partial[split][i], i < count (m * n), in the output type; the splits added in order.
template <typename O>
__device__ void product_reduce(const float* __restrict__ partial, O* __restrict__ out, int count, int splits) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
        float sum = 0.f;
        for (int s = 0; s < splits; s++) sum += partial[(size_t)s * count + i];
        out[i] = from_float<O>(sum);
    }
}

}  // namespace ember

EMBER_INSTANTIATE(product_reduce, (const float* __restrict__ partial, T* __restrict__ out, int count, int splits),
                  (partial, out, count, splits))

// product_mma_cC_nN: fp32 output; product_mma_cC_nN_rounded: output in the storage type; C chunks of 64 rows, N
// columns a block. 16-bit types only (the tensor cores' operands), on sm_80 and later.
#define PRODUCT_PARAMS(T, O) (const T* __restrict__ x, const T* __restrict__ w, O* __restrict__ out, \
                              float* __restrict__ partial, int m, int n, int k)
#define PRODUCT_ENTRY(name, T, O, C, G)                                                                  \
    extern "C" __global__ void __launch_bounds__(ember::PRODUCT_THREADS) name PRODUCT_PARAMS(T, O) {     \
        ember::allow_next_grid();                                                                        \
        ember::product_mma<T, O, C, G>(x, w, out, partial, m, n, k);                                     \
    }
#define PRODUCT_TYPES(C, G, N)                                                                           \
    PRODUCT_ENTRY(product_mma_c##C##_n##N##_bf16, __nv_bfloat16, float, C, G)                           \
    PRODUCT_ENTRY(product_mma_c##C##_n##N##_rounded_bf16, __nv_bfloat16, __nv_bfloat16, C, G)           \
    PRODUCT_ENTRY(product_mma_c##C##_n##N##_f16, __half, float, C, G)                                   \
    PRODUCT_ENTRY(product_mma_c##C##_n##N##_rounded_f16, __half, __half, C, G)
PRODUCT_TYPES(1, 8, 128) PRODUCT_TYPES(2, 8, 128) PRODUCT_TYPES(4, 8, 128)
PRODUCT_TYPES(1, 4, 64) PRODUCT_TYPES(2, 4, 64) PRODUCT_TYPES(4, 4, 64)
PRODUCT_TYPES(1, 2, 32) PRODUCT_TYPES(2, 2, 32) PRODUCT_TYPES(4, 2, 32)
