// Prefill attention on the tensor cores (mma.sync m16n8k16, bf16 or fp16 operands, fp32 accumulation), for
// head dimensions that are multiples of 16 up to 128: the same function as prefill_attention in
// attention_prefill.cu (causal, grouped-query, paged cache, sliding window), computed FlashAttention-2 style.
//
// A block of 4 warps takes 64 query rows of one chunk and one head; each warp owns 16 rows, keeping its
// queries, the running max and sum of its rows, and its 16 x hd output in registers. Keys and values come
// in tiles of 64, copied into shared memory with cp.async two stages deep (the next tile loads while the
// tensor cores work on this one); keys reach the tensor cores through ldmatrix, values through
// ldmatrix.trans, which transposes them on the way. Grid (heads, query tiles, chunks), the tiles last first.
// Per tile a warp computes S = Q K^T (hd/16 x 8 mma), masks and exponentiates it in registers, rescales
// its output, and adds P V (4 x hd/8 mma), reusing S's accumulator registers as P's operand registers.
//
// Cost for a chunk of n new tokens after c cached ones, per head: about 4*n*(c + n/2)*hd FLOPs on the
// tensor cores; keys and values are read once per 64 query rows.
#include "tensor_cores.cuh"

namespace ember {

constexpr int MMA_ROWS = 64;   // query rows per block: 16 per warp
constexpr int MMA_KEYS = 64;   // keys per staged tile
constexpr int MMA_MAXHD = 128;
constexpr int MMA_THREADS = 128;  // 4 warps
constexpr int MMA_STAGE_STEPS = MMA_KEYS * (MMA_MAXHD / 8) / MMA_THREADS;  // 16-byte copies per thread per tile, at most
constexpr float MMA_LOG2E = 1.4426950408889634f;

// Shared memory of prefill_attention_mma: two stages of K and V tiles (EmberKernels.prefillAttention asks
// for this much).
constexpr int MMA_SHARED_BYTES = 2 * 2 * MMA_KEYS * (MMA_MAXHD + 8) * 2;
static_assert(MMA_SHARED_BYTES <= 99 * 1024, "within the opt-in shared memory of every target (sm_86 and sm_89: 99 KiB)");

template <typename T>
__device__ __forceinline__ void prefill_attention_mma(
        const T* __restrict__ q, const T* __restrict__ kCache, const T* __restrict__ vCache,
        const int* __restrict__ blockTables, int tableStride, const int* __restrict__ prefillChunks,
        const int* __restrict__ chunkRowStart, const int* __restrict__ chunkLength,
        const int* __restrict__ chunkStartPosition, T* __restrict__ out, int heads, int kvHeads, int hd,
        int blockSize, int window, float scale) {
    using Ops = MmaOps<T>;
    constexpr int KSTEPS = MMA_MAXHD / 16, DTILES = MMA_MAXHD / 8, NTILES = MMA_KEYS / 8;
    // Two stages of K and V tiles (dynamic shared memory: MMA_SHARED_BYTES). +8 elements per row: the 8 rows
    // an ldmatrix or a quad of lanes reads fall in different banks.
    extern __shared__ __align__(16) unsigned char smemRaw[];
    using Row = T[MMA_MAXHD + 8];
    Row* const stagedRows = reinterpret_cast<Row*>(smemRaw);  // K stage 0, K stage 1, V stage 0, V stage 1

    const int chunk = prefillChunks[blockIdx.z];
    const int length = chunkLength[chunk];
    // Later query tiles see more keys: launching them first shortens the tail of a causal prefill. Blocks start in
    // the order of their index, x fastest, so the grid is (heads, tiles, chunks) with the tiles reversed: every
    // head's last tile starts before any head's second-to-last (with tiles in x, head 0's short tiles started before
    // the last heads' long ones).
    const int tile = (gridDim.y - 1 - blockIdx.y) * MMA_ROWS;
    if (tile >= length) return;
    const int head = blockIdx.x, kvHead = head / (heads / kvHeads);
    const int qd = heads * hd;
    const int firstRow = chunkRowStart[chunk] + tile;
    const int rows = min(MMA_ROWS, length - tile);
    const int firstPos = chunkStartPosition[chunk] + tile, lastPos = firstPos + rows - 1;
    const int* table = blockTables + (size_t)chunk * tableStride;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int r0 = warp * 16 + g, r1 = r0 + 8;  // this thread's two rows in the tile
    const bool valid0 = r0 < rows, valid1 = r1 < rows;
    const int pos0 = firstPos + r0, pos1 = firstPos + r1;
    const float qScale = scale * MMA_LOG2E;

    uint32_t qf[KSTEPS][4];
    load_query_fragments(qf, q + (size_t)(firstRow + r0) * qd + head * hd, q + (size_t)(firstRow + r1) * qd + head * hd,
                         valid0, valid1, hd, t);

    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;  // l: this thread's share of its rows' sums
    float o[DTILES][4];
#pragma unroll
    for (int n = 0; n < DTILES; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;

    const int vectorsPerRow = hd / 8;  // even: hd is a multiple of 16
    const int keyBegin = window > 0 ? max(0, firstPos - window + 1) : 0;
    const int warpLastPos = firstPos + min(rows - 1, warp * 16 + 15);
    // Tile k0's keys and values, copied asynchronously (cp.async, zero-filled past lastPos) into `stage`. A tile is
    // MMA_KEYS * vectorsPerRow 16-byte vectors of K (and as many of V), a multiple of the block's 128 threads; vector
    // i = key i / vectorsPerRow, dimensions 8 * (i % vectorsPerRow) on. Thread x takes i = x + 128 * step: its key and
    // dimension at step 0 are divided out once per tile and advance by fixed amounts per step, so that the copies
    // divide by nothing (there were two integer divisions per vector, a large share of the instructions of a tile).
    // Unrolled, so that the table loads of all steps are in flight together. Worked out here rather than once per kernel: kept across the loop they cost registers the
    // block's occupancy cannot spare (3 blocks of 128 threads per SM need at most 168 registers a thread; ptxas -v
    // says 166 for sm_90 with this arrangement, and spilled with the constants hoisted).
    auto stageTile = [&](int stage, int k0) {
        const int steps = MMA_KEYS * vectorsPerRow / MMA_THREADS;
        const int keyStep = MMA_THREADS / vectorsPerRow, vectorStep = MMA_THREADS % vectorsPerRow;
        const bool blockPow2 = (blockSize & (blockSize - 1)) == 0;  // always, in practice (16): a shift
        const int blockShift = __ffs(blockSize) - 1;
        int key = threadIdx.x / vectorsPerRow, vector = threadIdx.x % vectorsPerRow;
#pragma unroll
        for (int step = 0; step < MMA_STAGE_STEPS; step++) {
            if (step < steps) {
                const int kp = k0 + key, d = vector * 8;
                const bool inside = kp <= lastPos;  // later table entries may not exist yet
                size_t at = 0;
                if (inside) {
                    const int p = blockPow2 ? kp >> blockShift : kp / blockSize;
                    at = kv_element(kv_row<T>(table[p], kp - p * blockSize, blockSize, kvHeads, kvHead, hd), d);
                }
                copy_async_16(&stagedRows[stage * MMA_KEYS + key][d], kCache + at, inside);
                copy_async_16(&stagedRows[(2 + stage) * MMA_KEYS + key][d], vCache + at, inside);
                key += keyStep;
                vector += vectorStep;
                if (vector >= vectorsPerRow) {
                    vector -= vectorsPerRow;
                    key++;
                }
            }
        }
    };
    // Two stages: while the tensor cores work on one tile, the next one is on its way.
    stageTile(0, keyBegin);
    asm volatile("cp.async.commit_group;\n" ::);
    int stage = 0;
    for (int k0 = keyBegin; k0 <= lastPos; k0 += MMA_KEYS, stage ^= 1) {
        if (k0 + MMA_KEYS <= lastPos) stageTile(stage ^ 1, k0 + MMA_KEYS);
        asm volatile("cp.async.commit_group;\n" ::);  // possibly empty: keeps one group per iteration
        asm volatile("cp.async.wait_group 1;\n" ::);   // all but the newest group, so this tile, have landed
        __syncthreads();
        const Row* Ks = stagedRows + stage * MMA_KEYS;
        const Row* Vs = stagedRows + (2 + stage) * MMA_KEYS;
        if (k0 <= warpLastPos) {  // else every key of this tile is in the future of this warp's rows
        float s[NTILES][4];
#pragma unroll
        for (int n = 0; n < NTILES; n++) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < KSTEPS; kk++) {
                if (kk * 16 < hd) {
                    uint32_t b0, b1;
                    load_key_fragment(Ks[n * 8], MMA_MAXHD + 8, kk * 16, lane, b0, b1);
                    Ops::mma(s[n], qf[kk], b0, b1);
                }
            }
        }
        float max0 = -INFINITY, max1 = -INFINITY;
        // Most tiles lie wholly in the past of every row of this warp (and no window applies): no key to mask. Rows
        // past the chunk's end (in its last tile) then get finite scores too, which are never stored.
        const bool unmasked = window <= 0 && k0 + MMA_KEYS - 1 <= firstPos + warp * 16;
#pragma unroll
        for (int n = 0; n < NTILES; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int key = k0 + n * 8 + 2 * t + (e & 1);
                const int pos = e < 2 ? pos0 : pos1;
                const bool visible =
                        unmasked || ((e < 2 ? valid0 : valid1) && key <= pos && (window <= 0 || key > pos - window));
                s[n][e] = visible ? s[n][e] * qScale : -INFINITY;
            }
            max0 = fmaxf(max0, fmaxf(s[n][0], s[n][1]));
            max1 = fmaxf(max1, fmaxf(s[n][2], s[n][3]));
        }
        max0 = warp_max<4>(max0);
        max1 = warp_max<4>(max1);
        const float mNew0 = fmaxf(m0, max0), mNew1 = fmaxf(m1, max1);
        // A row with no visible key yet keeps m = -inf and adds nothing.
        const float alpha0 = mNew0 == -INFINITY ? 1.f : exp2f(m0 - mNew0);
        const float alpha1 = mNew1 == -INFINITY ? 1.f : exp2f(m1 - mNew1);
        m0 = mNew0;
        m1 = mNew1;
        l0 *= alpha0;
        l1 *= alpha1;
        scale_rows(o, alpha0, alpha1);
#pragma unroll
        for (int n = 0; n < NTILES; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const float mRow = e < 2 ? m0 : m1;
                s[n][e] = s[n][e] == -INFINITY ? 0.f : exp2f(s[n][e] - mRow);
            }
            l0 += s[n][0] + s[n][1];
            l1 += s[n][2] + s[n][3];
        }
#pragma unroll
        for (int j = 0; j < MMA_KEYS / 16; j++) {
            const uint32_t p[4] = {Ops::pack(s[2 * j][0], s[2 * j][1]), Ops::pack(s[2 * j][2], s[2 * j][3]),
                                   Ops::pack(s[2 * j + 1][0], s[2 * j + 1][1]), Ops::pack(s[2 * j + 1][2], s[2 * j + 1][3])};
#pragma unroll
            for (int n = 0; n < DTILES; n++) {
                if (n * 8 < hd) {
                    uint32_t b0, b1;
                    load_value_fragment(Vs[j * 16], MMA_MAXHD + 8, n * 8, lane, b0, b1);
                    Ops::mma(o[n], p, b0, b1);
                }
            }
        }
        }
        __syncthreads();  // this stage is consumed before the next iteration refills it
    }
    l0 = warp_sum<4>(l0);
    l1 = warp_sum<4>(l1);
    const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
    T* out0 = out + (size_t)(firstRow + r0) * qd + head * hd;
    T* out1 = out + (size_t)(firstRow + r1) * qd + head * hd;
#pragma unroll
    for (int n = 0; n < DTILES; n++) {
        if (n * 8 < hd) {
            const int d = n * 8 + 2 * t;
            if (valid0) *reinterpret_cast<uint32_t*>(out0 + d) = Ops::pack(o[n][0] * inv0, o[n][1] * inv0);
            if (valid1) *reinterpret_cast<uint32_t*>(out1 + d) = Ops::pack(o[n][2] * inv1, o[n][3] * inv1);
        }
    }
}

}  // namespace ember

#define MMA_PARAMS(T)                                                                                      \
    (const T* q, const T* kCache, const T* vCache, const int* blockTables, int tableStride,               \
     const int* prefillChunks, const int* chunkRowStart, const int* chunkLength, const int* chunkStartPosition, \
     T* out, int heads, int kvHeads, int hd, int blockSize, int window, float scale)
#define MMA_ARGS                                                                                           \
    (q, kCache, vCache, blockTables, tableStride, prefillChunks, chunkRowStart, chunkLength, chunkStartPosition, \
     out, heads, kvHeads, hd, blockSize, window, scale)

// Tensor cores take 16-bit operands only: no fp32 variant (fp32 models use prefill_attention).
extern "C" __global__ void __launch_bounds__(128) prefill_attention_mma_bf16 MMA_PARAMS(__nv_bfloat16) {
    ember::allow_next_grid();
    ember::wait_for_previous_grid();
    ember::prefill_attention_mma<__nv_bfloat16> MMA_ARGS;
}
extern "C" __global__ void __launch_bounds__(128) prefill_attention_mma_f16 MMA_PARAMS(__half) {
    ember::allow_next_grid();
    ember::wait_for_previous_grid();
    ember::prefill_attention_mma<__half> MMA_ARGS;
}
