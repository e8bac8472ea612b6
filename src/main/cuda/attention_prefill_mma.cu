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
//
// prefill_attention_bulk, further down, is the same arithmetic (prefill_mma_tile, shared) for Hopper: tiles moved by
// bulk copies three deep and the query heads of a KV head packed in one block (see there).
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

// A warp's 16 query rows of one head, of at most HD dimensions: their query fragments, the running max and this
// thread's share of the sum of each of its two rows (g and g + 8), and their 16 x HD output, all in registers.
template <int HD>
struct PrefillRows {
    uint32_t qf[HD / 16][4];
    float m0, m1, l0, l1;
    float o[HD / 8][4];
};

// Starts a warp's rows: queries q0 and q1 (rows g and g + 8; zeros where not valid), no keys seen.
template <typename T, int HD>
__device__ __forceinline__ void prefill_rows_start(PrefillRows<HD>& a, const T* q0, const T* q1, bool valid0, bool valid1,
                                                   int hd, int t) {
    load_query_fragments(a.qf, q0, q1, valid0, valid1, hd, t);
    a.m0 = a.m1 = -INFINITY;
    a.l0 = a.l1 = 0.f;
#pragma unroll
    for (int n = 0; n < HD / 8; n++) a.o[n][0] = a.o[n][1] = a.o[n][2] = a.o[n][3] = 0.f;
}

// One tile of MMA_KEYS keys from position k0 for a warp's rows (this thread's at positions pos0 and pos1), staged as
// rows `stride` elements apart from `keys` and `values`, whose dimensions the lane's ldmatrix rows XOR with `swizzle`
// (0 for rows staged in order): S = Q K^T (hd/16 x 8 mma), masked (but where `unmasked`: every key is visible to every
// row) and exponentiated in registers, the output rescaled, then O += P V (4 x hd/8 mma), S's accumulator registers
// reused as P's operand registers. Keys past a row's position, before its window, or of rows not valid score -inf
// (by a select: their staged bits may be anything); their values weigh 0, so must be finite. Inlined where `hd` and
// `stride` are constants (prefill_attention_bulk), the head-dimension guards and the shared-memory addresses fold
// away: in the runtime-hd form a branch and a warp synchronisation came with every mma and ldmatrix, and integer
// address arithmetic was 40% of the tile's instructions (ncu, 1024 rows on the H200).
template <typename T, int HD>
__device__ __forceinline__ void prefill_mma_tile(PrefillRows<HD>& a, const T* keys, const T* values, int stride,
                                                 int swizzle, int k0, bool unmasked, int pos0, int pos1, bool valid0,
                                                 bool valid1, int window, float qScale, int hd, int lane) {
    using Ops = MmaOps<T>;
    constexpr int KSTEPS = HD / 16, DTILES = HD / 8, NTILES = MMA_KEYS / 8;
    const int t = lane & 3;
    float s[NTILES][4];
#pragma unroll
    for (int n = 0; n < NTILES; n++) {
        s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KSTEPS; kk++) {
            if (kk * 16 < hd) {
                uint32_t b0, b1;
                load_key_fragment(keys + n * 8 * stride, stride, kk * 16, lane, b0, b1, swizzle);
                Ops::mma(s[n], a.qf[kk], b0, b1);
            }
        }
    }
    float max0 = -INFINITY, max1 = -INFINITY;
    // Where unmasked, rows past the chunk's end (in its last tile) get finite scores too, which are never stored. The
    // two forms are separate loops so that the common one, every key visible, computes no key position.
    if (unmasked) {
#pragma unroll
        for (int n = 0; n < NTILES; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) s[n][e] *= qScale;
        }
    } else {
#pragma unroll
        for (int n = 0; n < NTILES; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int key = k0 + n * 8 + 2 * t + (e & 1);
                const int pos = e < 2 ? pos0 : pos1;
                const bool visible = (e < 2 ? valid0 : valid1) && key <= pos && (window <= 0 || key > pos - window);
                s[n][e] = visible ? s[n][e] * qScale : -INFINITY;
            }
        }
    }
#pragma unroll
    for (int n = 0; n < NTILES; n++) {
        max0 = fmaxf(max0, fmaxf(s[n][0], s[n][1]));
        max1 = fmaxf(max1, fmaxf(s[n][2], s[n][3]));
    }
    max0 = warp_max<4>(max0);
    max1 = warp_max<4>(max1);
    const float mNew0 = fmaxf(a.m0, max0), mNew1 = fmaxf(a.m1, max1);
    // A row with no visible key yet keeps m = -inf and adds nothing.
    const float alpha0 = mNew0 == -INFINITY ? 1.f : exp2f(a.m0 - mNew0);
    const float alpha1 = mNew1 == -INFINITY ? 1.f : exp2f(a.m1 - mNew1);
    a.m0 = mNew0;
    a.m1 = mNew1;
    a.l0 *= alpha0;
    a.l1 *= alpha1;
    scale_rows(a.o, alpha0, alpha1);
    // A row with no visible key yet subtracts 0 rather than -inf: its scores are all -inf, and 2^-inf is the 0 they
    // weigh (where -inf - -inf would be NaN).
    const float sub0 = a.m0 == -INFINITY ? 0.f : a.m0, sub1 = a.m1 == -INFINITY ? 0.f : a.m1;
#pragma unroll
    for (int n = 0; n < NTILES; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) s[n][e] = exp2_approx(s[n][e] - (e < 2 ? sub0 : sub1));
        a.l0 += s[n][0] + s[n][1];
        a.l1 += s[n][2] + s[n][3];
    }
#pragma unroll
    for (int j = 0; j < MMA_KEYS / 16; j++) {
        const uint32_t p[4] = {Ops::pack(s[2 * j][0], s[2 * j][1]), Ops::pack(s[2 * j][2], s[2 * j][3]),
                               Ops::pack(s[2 * j + 1][0], s[2 * j + 1][1]), Ops::pack(s[2 * j + 1][2], s[2 * j + 1][3])};
#pragma unroll
        for (int n = 0; n < DTILES; n++) {
            if (n * 8 < hd) {
                uint32_t b0, b1;
                load_value_fragment(values + j * 16 * stride, stride, n * 8, lane, b0, b1, swizzle);
                Ops::mma(a.o[n], p, b0, b1);
            }
        }
    }
}

// Writes a warp's rows, normalised, to out0 and out1 (rows g and g + 8, where valid).
template <typename T, int HD>
__device__ __forceinline__ void prefill_rows_finish(PrefillRows<HD>& a, T* out0, T* out1, bool valid0, bool valid1,
                                                    int hd, int t) {
    using Ops = MmaOps<T>;
    const float l0 = warp_sum<4>(a.l0), l1 = warp_sum<4>(a.l1);
    const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
#pragma unroll
    for (int n = 0; n < HD / 8; n++) {
        if (n * 8 < hd) {
            const int d = n * 8 + 2 * t;
            if (valid0) *reinterpret_cast<uint32_t*>(out0 + d) = Ops::pack(a.o[n][0] * inv0, a.o[n][1] * inv0);
            if (valid1) *reinterpret_cast<uint32_t*>(out1 + d) = Ops::pack(a.o[n][2] * inv1, a.o[n][3] * inv1);
        }
    }
}

template <typename T>
__device__ __forceinline__ void prefill_attention_mma(
        const T* __restrict__ q, const T* __restrict__ kCache, const T* __restrict__ vCache,
        const int* __restrict__ blockTables, int tableStride, const int* __restrict__ prefillChunks,
        const int* __restrict__ chunkRowStart, const int* __restrict__ chunkLength,
        const int* __restrict__ chunkStartPosition, T* __restrict__ out, int heads, int kvHeads, int hd,
        int blockSize, int window, float scale) {
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

    PrefillRows<MMA_MAXHD> a;
    prefill_rows_start(a, q + (size_t)(firstRow + r0) * qd + head * hd, q + (size_t)(firstRow + r1) * qd + head * hd,
                       valid0, valid1, hd, t);

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
    // says 168 for sm_90 with this arrangement (CUDA 13), and spilled with the constants hoisted).
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
            // Most tiles lie wholly in the past of every row of this warp (and no window applies): no key to mask.
            const bool unmasked = window <= 0 && k0 + MMA_KEYS - 1 <= firstPos + warp * 16;
            prefill_mma_tile(a, Ks[0], Vs[0], MMA_MAXHD + 8, 0, k0, unmasked, pos0, pos1, valid0, valid1, window,
                             qScale, hd, lane);
        }
        __syncthreads();  // this stage is consumed before the next iteration refills it
    }
    prefill_rows_finish(a, out + (size_t)(firstRow + r0) * qd + head * hd, out + (size_t)(firstRow + r1) * qd + head * hd,
                        valid0, valid1, hd, t);
}


// prefill_attention_bulk (sm_90 and later; 16-bit types at hd 64 and 128, whose cache rows are whole 128-byte lines
// stored swizzled, and cache blocks of a multiple of 8 tokens): prefill_attention_mma's function and arithmetic
// (prefill_mma_tile), with two changes. (1) Its K/V tiles arrive by bulk asynchronous copies, bulk_copy_kv_rows as in
// decode_attention_bulk: per tile one copy of keys and one of values per cache block it covers, started by one warp
// (tile % 8), completing on the stage's mbarrier, `stages` deep (EmberKernels: 3), where prefill_attention_mma spends
// its issue slots on 2,048 16-byte cp.async a tile (each with its block-table read and paged address) two deep. The
// rows arrive unpadded and swizzled as the cache stores them (chunk c of offset o at c ^ (o % 8)); tiles start at a
// multiple of 8 positions (the window's first key rounded down, the keys before it masked), so row r of every tile lies
// at offset r (mod 8) of its block and ldmatrix XORs the lane's row's dimensions by one constant. (2) Grouped-query
// packing and a larger query tile: a block takes `packed` query heads of one KV head (4 where the group is a multiple
// of 4, 2 where of 2, else 1: EmberKernels.prefillPacked) and 16 * WARPS / packed query positions (32 for the 8B
// shape's groups of 4 with 8 warps), warp w the 16 rows (w / packed) of head (w % packed), so each K/V tile crosses
// shared memory once for 16 * WARPS query rows, where prefill_attention_mma's crosses once for 64 rows of one head.
// WARPS: 8 (EmberKernels; one block a multiprocessor), or 4 for measuring (EMBER_PREFILL_BULK_WARPS=4: two blocks a
// multiprocessor, each tile once per 64 rows, but a block's __syncthreads a tile stalls half as many warps).
// Block (head groups, query tiles reversed: the longest first, chunks); 32 * WARPS threads. The last tile of a range
// copies only the keys up to the block's last position: the rows past them hold whatever shared memory held, so the
// block zeros those value rows (p = 0 would not cancel a NaN there) and their keys' scores are masked by a select.
// Shared memory: stages x 2 x 64 x hd elements and a barrier per stage, 98,328 bytes at three stages for hd 128
// (EmberKernels.decodeBulkSharedBytes, the same layout as decode_attention_bulk's), one block a multiprocessor of an
// H200 at 8 warps, two at 4 (registers: see the entry points). Cost for a chunk of n new tokens after c cached ones,
// per KV head: about 4*G*n*(c + n/2)*hd FLOPs on the tensor cores (as prefill_attention_mma), and keys and values
// 2*(c + n/2)*hd*sizeof(T) bytes read from L2 once per 16 * WARPS / packed query positions.
template <typename T, int WARPS, int HD>
__device__ __forceinline__ void prefill_attention_bulk(
        const T* __restrict__ q, const T* __restrict__ kCache, const T* __restrict__ vCache,
        const int* __restrict__ blockTables, int tableStride, const int* __restrict__ prefillChunks,
        const int* __restrict__ chunkRowStart, const int* __restrict__ chunkLength,
        const int* __restrict__ chunkStartPosition, T* __restrict__ out, int heads, int kvHeads,
        int blockSize, int window, float scale, int packed, int stages) {
    constexpr int hd = HD;  // a constant: the tile's guards and addresses fold (prefill_mma_tile)
    extern __shared__ __align__(128) unsigned char smem[];
    const int stageElems = 2 * MMA_KEYS * hd;
    T* const staged = reinterpret_cast<T*>(smem);  // stage s: keys at s * stageElems, values MMA_KEYS * hd further
    uint64_t* const full = reinterpret_cast<uint64_t*>(smem + (size_t)stages * stageElems * sizeof(T));

    const int positions = 16 * WARPS / packed;  // query positions a block
    const int chunk = prefillChunks[blockIdx.z];
    const int length = chunkLength[chunk];
    const int tile = (gridDim.y - 1 - blockIdx.y) * positions;  // the longest tiles first, as prefill_attention_mma
    if (tile >= length) return;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int head = blockIdx.x * packed + warp % packed, kvHead = blockIdx.x * packed / (heads / kvHeads);
    const int slice = 16 * (warp / packed);  // this warp's first row in the tile
    const int qd = heads * hd;
    const int firstRow = chunkRowStart[chunk] + tile;
    const int rows = min(positions, length - tile);
    const int firstPos = chunkStartPosition[chunk] + tile, lastPos = firstPos + rows - 1;
    const int* table = blockTables + (size_t)chunk * tableStride;
    const int r0 = slice + g, r1 = r0 + 8;  // this thread's two rows in the tile
    const bool valid0 = r0 < rows, valid1 = r1 < rows;
    const int pos0 = firstPos + r0, pos1 = firstPos + r1;
    const bool warpActive = slice < rows;
    const int warpLastPos = firstPos + min(rows - 1, slice + 15);
    const float qScale = scale * MMA_LOG2E;

    // Tiles of keys [keyBegin + 64i, +64) up to lastPos, keyBegin a multiple of 8 (see above).
    const int keyBegin = window > 0 ? max(0, firstPos - window + 1) & ~7 : 0;
    const int tiles = (lastPos - keyBegin) / MMA_KEYS + 1;
    if (threadIdx.x == 0) barriers_init(full, stages);
    __syncthreads();
    // Tile `i` into its stage (i % stages), started by warp i % WARPS.
    auto stage = [&](int i) {
        const int k0 = keyBegin + i * MMA_KEYS;
        T* keys = staged + (i % stages) * stageElems;
        bulk_copy_kv_rows(kCache, vCache, table, kvHead, keys, keys + MMA_KEYS * hd, full + i % stages, k0,
                          min(k0 + MMA_KEYS, lastPos + 1), kvHeads, hd, blockSize, lane);
    };
    for (int i = warp; i < min(stages, tiles); i += WARPS) stage(i);  // every stage is free

    PrefillRows<HD> a;  // the queries' loads overlap the first copies
    prefill_rows_start(a, q + (size_t)(firstRow + r0) * qd + head * hd, q + (size_t)(firstRow + r1) * qd + head * hd,
                       valid0, valid1, hd, t);
    // Row r of every tile lies at offset r (mod 8) of its cache block: the lane's ldmatrix rows (lane % 8 of 8 keys,
    // lane % 16 of 16 values) take one swizzle.
    const int swizzle = kv_swizzle<T>(lane & 7, hd);
    for (int i = 0, s = 0, parity = 0; i < tiles; i++) {
        const int k0 = keyBegin + i * MMA_KEYS;
        if (i > 0) {
            __syncthreads();  // every warp is done with tile i - 1, whose stage tile i + stages - 1 fills
            const int next = i + stages - 1;
            if (next < tiles && warp == next % WARPS) stage(next);
        }
        barrier_wait(full + s, parity);
        T* keys = staged + s * stageElems;
        T* values = keys + MMA_KEYS * hd;
        const int filled = lastPos + 1 - k0;  // rows of this tile copied (uniform across the block)
        if (filled < MMA_KEYS) {  // the last tile: zero the value rows past the copies
            uint4* rest = reinterpret_cast<uint4*>(values + filled * hd);
            for (int v = threadIdx.x; v < (MMA_KEYS - filled) * hd * (int)sizeof(T) / 16; v += 32 * WARPS) {
                rest[v] = make_uint4(0, 0, 0, 0);
            }
            __syncthreads();
        }
        if (warpActive && k0 <= warpLastPos) {  // else no key of this tile is visible to this warp's rows
            // Most tiles lie wholly in the past of every row of this warp (and no window applies): no key to mask.
            const bool unmasked = window <= 0 && k0 + MMA_KEYS - 1 <= firstPos + slice;
            prefill_mma_tile(a, keys, values, hd, swizzle, k0, unmasked, pos0, pos1, valid0, valid1, window, qScale,
                             hd, lane);
        }
        if (++s == stages) {
            s = 0;
            parity ^= 1;
        }
    }
    if (warpActive) {
        prefill_rows_finish(a, out + (size_t)(firstRow + r0) * qd + head * hd,
                            out + (size_t)(firstRow + r1) * qd + head * hd, valid0, valid1, hd, t);
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

// prefill_attention_bulk_hd{64,128}_{bf16,f16} (8 warps) and prefill_attention_bulk_w4_hd{64,128}_{bf16,f16} (4 warps,
// for measuring): sm_90 and later; on older targets entry points that trap, never launched there. One block of 8 warps
// a multiprocessor (or two of 4) at three stages for hd 128 (shared memory), so registers cost no occupancy up to 255
// a thread (ptxas, CUDA 13, sm_90: 220 at hd 128, 164 at hd 64, no spills). The `hd` argument is unused: the entry
// point's HD is it (EmberKernels picks the entry of the shape's head dimension).
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
#define PREFILL_BULK_BODY(T, WARPS, HD)                                                                     \
    ember::allow_next_grid();                                                                              \
    ember::wait_for_previous_grid();                                                                       \
    ember::prefill_attention_bulk<T, WARPS, HD>(q, kCache, vCache, blockTables, tableStride, prefillChunks, \
                                                chunkRowStart, chunkLength, chunkStartPosition, out, heads, kvHeads, \
                                                blockSize, window, scale, packed, stages);
#else
#define PREFILL_BULK_BODY(T, WARPS, HD) __trap();
#endif
#define PREFILL_BULK_PARAMS(T)                                                                             \
    (const T* q, const T* kCache, const T* vCache, const int* blockTables, int tableStride,               \
     const int* prefillChunks, const int* chunkRowStart, const int* chunkLength, const int* chunkStartPosition, \
     T* out, int heads, int kvHeads, int hd, int blockSize, int window, float scale, int packed, int stages)
#define PREFILL_BULK_ENTRY(name, T, WARPS, HD)                                                             \
    extern "C" __global__ void __launch_bounds__(32 * WARPS, 8 / WARPS) name PREFILL_BULK_PARAMS(T) {     \
        PREFILL_BULK_BODY(T, WARPS, HD)                                                                    \
    }
PREFILL_BULK_ENTRY(prefill_attention_bulk_hd128_bf16, __nv_bfloat16, 8, 128)
PREFILL_BULK_ENTRY(prefill_attention_bulk_hd128_f16, __half, 8, 128)
PREFILL_BULK_ENTRY(prefill_attention_bulk_hd64_bf16, __nv_bfloat16, 8, 64)
PREFILL_BULK_ENTRY(prefill_attention_bulk_hd64_f16, __half, 8, 64)
PREFILL_BULK_ENTRY(prefill_attention_bulk_w4_hd128_bf16, __nv_bfloat16, 4, 128)
PREFILL_BULK_ENTRY(prefill_attention_bulk_w4_hd128_f16, __half, 4, 128)
PREFILL_BULK_ENTRY(prefill_attention_bulk_w4_hd64_bf16, __nv_bfloat16, 4, 64)
PREFILL_BULK_ENTRY(prefill_attention_bulk_w4_hd64_f16, __half, 4, 64)
