// Decode attention: one new query token per sequence against its paged KV cache, the context split across thread
// blocks (split-K) so that a few long sequences still fill the GPU. EmberKernels.decodeAttention launches one of the
// three kernels below and, with two or more splits, the reduction after it.
//
// decode_attention_keys_d{128,256}_g{2,4}: block (n, kvHead * headBatches + b, split) takes decode row decodeRows[n],
// HG (2 or 4) of the G = heads/kvHeads query heads that share kvHead (batch b of them; all of them when G <= HG, so
// that each key and value is read from memory once for the whole group), and the split's contiguous share of the
// context (of its last `window` positions under a sliding window). 128 threads: a warp per query head (two at
// HG = 2: below), and no communication between warps but the shared tiles. Per head it writes the split's
// unnormalised result, with s_j = q.k_j * scale * log2(e): o = sum_j 2^(s_j - m) v_j (hd floats), m = max_j s_j,
// l = sum_j 2^(s_j - m); with a single split (every batch that fills the GPU without splitting) it writes o / l in the
// storage type straight to the output, and EmberKernels launches no reduction.
//
// Tiles: 32 keys (one per lane) and their values, in the storage type, copied by cp.async (16 bytes a copy,
// zero-filled past the split's end; element by element where hd*sizeof(T) is not a multiple of 16), two tiles
// deep: the kernel is held by how many warps a multiprocessor keeps (each waits on its tile's shared-memory reads),
// and a third stage costs a third of them (on an H200, Qwen3-0.6B's shape at batch ~256: 2 stages 16,740 tok/s
// offline against 14,330 with 3, at 12.5% occupancy and 39% of DRAM bandwidth; the 8B shape at batch 64 8,872
// against 8,647). Key rows are padded by 16 bytes, so that a quarter-warp's 16-byte
// reads of 8 keys fall on distinct banks; values are packed. One barrier per tile (the tile is in, and the stage
// the next copy fills is free), then in each warp:
//   scores  lane j: key j's dot product with the head's query (fp32, pre-scaled, read from shared memory as a
//           broadcast);
//   softmax the warp's max and sum of its 32 scores (10 shuffles per tile, not per key), online across tiles;
//   values  lane c: dimensions 4c..4c+3 (and 128 further at hd > 128) of sum_j p_j v_j over the tile's keys, p_j
//           read as a broadcast.
// Shared memory (EmberKernels.decodeAttention computes the same size): STAGES * 32 * (2 * rowElems + 16/sizeof(T))
// elements of tiles, then HG * (rowElems + 32) floats of queries and probabilities, rowElems being hd rounded up
// to 16 bytes: 36,352 bytes for the 8B shape in bf16 (hd 128, HG 4), six blocks per multiprocessor on an H200.
//
// Four warps a block: with HG = 4 a warp per head (PARTS = 1), with HG = 2 two warps per head (PARTS = 2), so that
// a group of two (Qwen3-0.6B's shape) keeps as many warps a multiprocessor as a group of four on the same tiles (on
// an H200: offline Qwen3-0.6B 19,255 tok/s against 16,737 with a warp per head; two warps per head at HG = 4 lost
// 2% at batch 64 of the 8B shape, so those keep one). With PARTS = 2 warp w takes head w % HG and part
// p = w / HG, the tile's keys [16p, 16p + 16): lane l scores key 16p + (l & 15) over every other 16-byte slice
// from slice l >> 4, the two halves' sums joined by one shuffle; the softmax runs over the warp's 16 keys (each
// half-warp holds them all, so m and l reduce over 16 lanes); the values as above over those 16 keys. After the
// last tile part 1 leaves (o, m, l) in the tile area and part 0 merges it (M = max, each scaled by 2^(m - M)) and
// writes the split's result as above. Shared memory is the same size (the merge, HG * (rowElems + 4) floats, fits
// in the tiles); bytes read and FLOPs per row are those of PARTS = 1.
//
// decode_attention_mma_{bf16,f16}: the same partials on the tensor cores (mma.sync m16n8k16, fp32 accumulation), for
// 16-bit types, head dimensions that are multiples of 16 up to 128 and groups of more than two query heads, where
// EmberKernels launches it instead (but for decode_attention_bulk's shapes on sm_90 and later). The query heads of a KV head (up to 16 a block; batches of 16 for wider groups) are
// the 16 rows of the A operand, so a tile of keys and values crosses shared memory once for the whole group, where
// decode_attention_keys reads it once per head and re-reads the query for every key: for a group of four that kernel's
// shared-memory traffic is about as fast as DRAM. On an H200, the 8B shape (groups of four): offline Llama-8B 8,291 and
// 8,166 tok/s against 7,831 and 7,706 with decode_attention_keys, batch 64 within 1.5% either way; for groups of two
// (Qwen3-0.6B) decode_attention_keys, two warps a head, stays faster (19,400 against 17,000 offline) and is kept there.
// Blocks of two warps and 32-key tiles were slower on every shape (15,064; 7,781). Block (n, kvHead * batches + b,
// split), 4 warps; tiles of 64 keys and their values staged by the whole block with cp.async, two deep, rows padded by
// 16 bytes so that ldmatrix's 8 rows fall on distinct banks; warp w takes keys [16w, 16w + 16) of each tile: S = Q K^T
// (2 x hd/16 mma, K through ldmatrix), masked past the split's end and scaled, the online softmax of its rows (4-lane
// shuffles), O += P V (hd/8 mma, S's registers reused as P's operand, V through ldmatrix.trans). After the last tile
// warps 1-3 leave (o, m, l) in the tile area and warp 0 merges them (M = max, each scaled by 2^(m - M)) into the
// split's partial. Shared memory: 2 stages x 2 x 64 x 136 elements = 69,632 bytes, three blocks a multiprocessor. Bytes
// read are those above; FLOPs on the tensor cores 4 * 16 * ctx * hd per block (rows past the group are computed and
// dropped), which at 16 FLOPs per byte of bf16 cache is far under their rate.
//
// decode_attention_bulk_hd{64,128}_{bf16,f16} (sm_90+): decode_attention_mma's partials and arithmetic (the same
// mma_decode_keys per warp and 16 keys, the same merge), with its tiles moved by bulk asynchronous copies instead of
// cp.async, for 16-bit types at hd 64 and 128 (rows of whole 128-byte lines, which the cache stores swizzled: kv_row in
// common.cuh) and any group, where EmberKernels launches it on GPUs that have bulk copies (EMBER_DECODE_BULK=0: not).
// decode_attention_mma spends most of its issue slots on its copies: 2,048 16-byte cp.async a tile, each with its
// block-table read and paged address (on an H200 at batch 64 of the 8B shape: 65.4 us a layer, 2.15 TB/s, 41% of issue
// slots used by 0.57 eligible warps a scheduler, 3 blocks a multiprocessor held by both registers and shared memory).
// Here a tile of positions [k0, k0 + 64) is one bulk copy of keys and one of values per cache block it covers: the
// block's rows in the tile, contiguous in the cache ([block][kvHead][token][hd]), 4 KiB each for 16 tokens at hd 128
// in bf16, copied byte for byte into a stage of unpadded rows. A warp (tile % 4, so that the table reads rotate) arms
// the stage's mbarrier with the tile's bytes and its lanes start a cache block's two copies each; the other warps
// issue nothing for it, and the copies hold no registers while in flight, so the pipeline is `stages` tiles deep
// (EmberKernels: 3, EMBER_DECODE_BULK_STAGES=2..4): all stages are started at once, then each tile's stage is refilled
// with the tile `stages` later once the block is past it (one __syncthreads a tile), and every thread waits on the
// tile's barrier before reading it. The rows arrive swizzled as the cache stores them (chunk c of offset o at
// c ^ (o % 8)), so ldmatrix applies the same XOR to its addresses (with blocks of a multiple of 8 tokens, lane % 8 of
// every tile) and reads 8 rows of one chunk from 8 distinct bank groups without padding. Splits are whole cache blocks
// (decode_work's align), counted from the block of the window's first position, so that every copy is a run of one
// block's rows; keys before the window's first position (at most blockSize - 1, in the first split) are copied and
// masked. A tile past the split's end copies only the rows before it: the warps whose 16 keys straddle the end zero
// their value rows past it (shared memory may hold any bits there, which p = 0 would not cancel), their keys' scores
// are masked by a select. Shared memory: stages x 2 x 64 x hd elements and a barrier per stage, 98,328 bytes at three
// stages for hd 128 (EmberKernels.decodeBulkSharedBytes): two blocks a multiprocessor of an H200 (three at two stages);
// ptxas: 155 registers, no spills, bounded to three blocks. EmberKernels.decodeSplits picks the splits from how many
// blocks the GPU holds at once (wholeWaveSplits): at batch 64 of the 8B shape one split, 512 blocks in 1.94 waves of
// 264, no reduction. Bytes read: those above, plus the masked keys before a window's start; FLOPs on the tensor cores
// 4 * 16 * keys * hd per block, as decode_attention_mma. The 8B shape at batch 64 reads 141 MB a layer: 31 us at the
// H200's ~4.5 TB/s read ceiling.
//
// decode_attention_reduce: block (n, head) merges the splits (two or more): M = max m_s, L = sum l_s 2^(m_s - M),
// out = sum o_s 2^(m_s - M) / L, in the storage type.
//
// Cost per decode row and KV head: 2*ctx*hd*sizeof(T) bytes of keys and values read once (once per head batch for
// G > 4), G*hd*sizeof(T) of queries read (by each split) and as much of output written, and with two or more splits
// splits*G*(hd + 2)*4 of partials written and read back by the reduction; 4*G*ctx*hd FLOPs (2*hd for a score, 2*hd for adding p*v, per key
// and head) and G*ctx exp2.
// For the 8B shape at batch 64 (576-token contexts, 8 KV heads of 4 query heads, bf16) that is 151 MB and
// 0.60 GFLOP per layer: 4 FLOPs per byte, far under the fp32 rate per byte of bandwidth, so the kernel is bound by
// how fast it streams the cache.
#include "tensor_cores.cuh"

namespace ember {

constexpr float DECODE_LOG2E = 1.4426950408889634f;

// The E values of one 16-byte slice in shared memory, widened to fp32.
__device__ __forceinline__ void load_slice(const float* s, float* out) {
    const float4 v = *reinterpret_cast<const float4*>(s);
    out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w;
}
__device__ __forceinline__ void load_slice(const __nv_bfloat16* s, float* out) {
    const uint4 v = *reinterpret_cast<const uint4*>(s);
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        out[2 * i] = __uint_as_float(w[i] << 16);
        out[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}
__device__ __forceinline__ void load_slice(const __half* s, float* out) {
    const uint4 v = *reinterpret_cast<const uint4*>(s);
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
        out[2 * i] = f.x;
        out[2 * i + 1] = f.y;
    }
}

// Starts copying the keys and values of tokens [t0, t0 + rows) of one KV head, `vectors` 16-byte vectors a row, into
// shared memory: key row j at kDst + j * kStride, value row j at vDst + j * vStride (elements); rows at or past `end`
// (>= t0 + 1) as zeros. Vector i (key i / vectors) goes to thread i % THREADS. Four of a thread's copies at a time:
// their block-table reads are issued together, none behind a branch (a row past `end` reads the table at end - 1 and
// copies nothing), so that a copy does not wait for the table read of the one before it.
template <typename T, int THREADS>
__device__ __forceinline__ void copy_kv_rows(const T* __restrict__ kCache, const T* __restrict__ vCache,
                                             const int* __restrict__ table, T* kDst, int kStride, T* vDst, int vStride,
                                             int rows, int vectors, int t0, int end, int kvHeads, int kvHead, int hd,
                                             int blockSize) {
    constexpr int E = 16 / sizeof(T), BATCH = 4;
    const int total = rows * vectors;
    const bool pow2 = (vectors & (vectors - 1)) == 0;
    const int shift = __ffs(vectors) - 1;
    for (int first = threadIdx.x; first < total; first += BATCH * THREADS) {
        size_t at[BATCH];
        int key[BATCH], dim[BATCH];
#pragma unroll
        for (int b = 0; b < BATCH; b++) {
            const int i = first + b * THREADS;
            key[b] = pow2 ? i >> shift : i / vectors;
            dim[b] = (i - key[b] * vectors) * E;
            at[b] = paged_offset<T>(table, min(t0 + key[b], end - 1), blockSize, kvHeads, kvHead, hd, dim[b]);
        }
#pragma unroll
        for (int b = 0; b < BATCH; b++) {
            if (first + b * THREADS < total) {
                const bool valid = t0 + key[b] < end;
                copy_async_16(kDst + key[b] * kStride + dim[b], kCache + at[b], valid);
                copy_async_16(vDst + key[b] * vStride + dim[b], vCache + at[b], valid);
            }
        }
    }
}

// Starts copying the keys and values of tokens [t0, t0 + TK) of one KV head into a stage (rows of
// `slices` 16-byte slices; tokens at or past `end` as zeros). Rows whose hd*sizeof(T) bytes are not a
// multiple of 16 are copied element by element instead, synchronously, with the row's tail zeroed: the
// barrier before the tile's use makes either visible.
// Keys go to rows kStride elements apart (the row's slices * E elements and the padding against bank conflicts);
// values are packed. THREADS: the block's threads, which share the copies.
template <typename T, int TK, int THREADS>
__device__ __forceinline__ void stage_tile(const T* __restrict__ kCache, const T* __restrict__ vCache,
                                           const int* __restrict__ table, T* Ks, T* Vs, int slices, int kStride, int t0,
                                           int end, int kvHeads, int kvHead, int hd, int blockSize) {
    constexpr int E = 16 / sizeof(T);
    if (slices * E == hd) {
        copy_kv_rows<T, THREADS>(kCache, vCache, table, Ks, kStride, Vs, slices * E, TK, slices, t0, end, kvHeads,
                                 kvHead, hd, blockSize);
        return;
    }
    const int row = slices * E;
    for (int i = threadIdx.x; i < TK * row; i += THREADS) {
        const int j = i / row, d = i - j * row, kp = t0 + j;
        T k = from_float<T>(0.f), v = from_float<T>(0.f);
        if (kp < end && d < hd) {
            const size_t at = paged_offset<T>(table, kp, blockSize, kvHeads, kvHead, hd, d);
            k = kCache[at];
            v = vCache[at];
        }
        Ks[j * kStride + d] = k;
        Vs[i] = v;
    }
}

// What one block of a decode kernel takes: decode row n's sequence, KV head, its query heads [head0, head0 + count),
// the split's context range [begin, end), and the first position the query sees (`first`: 0, or the sliding window's
// start; begin may lie before it where splits are aligned, and those keys are masked).
struct DecodeWork {
    int n, row, kvHead, head0, count, first, begin, end;
    const int* table;
};

// Splits of whole runs of `align` positions (1: any length), counted from `first` rounded down to a multiple of align:
// with align = blockSize every split starts at the start of a cache block.
template <int HG>
__device__ __forceinline__ DecodeWork decode_work(const int* __restrict__ blockTables, int tableStride,
                                                  const int* __restrict__ decodeRows, const int* __restrict__ rowChunk,
                                                  const int* __restrict__ positions, int heads, int kvHeads, int window,
                                                  int splits, int align = 1) {
    DecodeWork w;
    const int group = heads / kvHeads, batches = (group + HG - 1) / HG;
    w.n = blockIdx.x;
    w.kvHead = blockIdx.y / batches;
    w.head0 = w.kvHead * group + (blockIdx.y % batches) * HG;
    w.count = min(HG, w.kvHead * group + group - w.head0);
    w.row = decodeRows[w.n];
    const int pos = positions[w.row];
    w.table = blockTables + (size_t)rowChunk[w.row] * tableStride;
    w.first = window > 0 ? max(0, pos - window + 1) : 0;
    const int origin = w.first - w.first % align, runs = (pos + 1 - origin + align - 1) / align;
    const int perSplit = (runs + splits - 1) / splits * align;
    w.begin = origin + blockIdx.z * perSplit;
    w.end = min(pos + 1, w.begin + perSplit);
    return w;
}

// Starts copying the first STAGES - 1 tiles of the block's range, one commit group each (empty past the range).
// A stage holds TK key rows kStride elements apart, then TK packed value rows.
template <typename T, int TK, int STAGES, int THREADS>
__device__ __forceinline__ void stage_first_tiles(const T* __restrict__ kCache, const T* __restrict__ vCache,
                                                  const DecodeWork& w, T* tiles, int stageElems, int kStride,
                                                  int slices, int tilesToDo, int kvHeads, int hd, int blockSize) {
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < tilesToDo) {
            T* stage = tiles + s * stageElems;
            stage_tile<T, TK, THREADS>(kCache, vCache, w.table, stage, stage + TK * kStride, slices, kStride,
                                       w.begin + s * TK, w.end, kvHeads, w.kvHead, hd, blockSize);
        }
        asm volatile("cp.async.commit_group;\n" ::);
    }
}

// Waits for tile t, then starts copying tile t + STAGES - 1 into the stage every thread is done with; returns tile
// t's stage (keys, then values TK * kStride further).
template <typename T, int TK, int STAGES, int THREADS>
__device__ __forceinline__ const T* next_tile(const T* __restrict__ kCache, const T* __restrict__ vCache,
                                              const DecodeWork& w, T* tiles, int t, int stageElems, int kStride,
                                              int slices, int tilesToDo, int kvHeads, int hd, int blockSize) {
    asm volatile("cp.async.wait_group %0;\n" :: "n"(STAGES - 2));
    __syncthreads();  // tile t is in; every thread is done with tile t - 1
    const int next = t + STAGES - 1;
    if (next < tilesToDo) {
        T* stage = tiles + (next % STAGES) * stageElems;
        stage_tile<T, TK, THREADS>(kCache, vCache, w.table, stage, stage + TK * kStride, slices, kStride,
                                   w.begin + next * TK, w.end, kvHeads, w.kvHead, hd, blockSize);
    }
    asm volatile("cp.async.commit_group;\n" ::);  // possibly empty: one group per iteration
    return tiles + (t % STAGES) * stageElems;
}

constexpr int KEYS_TILE = 32;  // keys per tile: one per lane
constexpr int DECODE_STAGES = 2;  // tiles in shared memory: one computed on, one in flight

// Four consecutive values in shared memory (8 bytes of 16-bit types, 16 of fp32, aligned so), widened to fp32.
__device__ __forceinline__ void load4(const float* s, float* out) {
    const float4 v = *reinterpret_cast<const float4*>(s);
    out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w;
}
__device__ __forceinline__ void load4(const __nv_bfloat16* s, float* out) {
    const uint2 v = *reinterpret_cast<const uint2*>(s);
    out[0] = __uint_as_float(v.x << 16);
    out[1] = __uint_as_float(v.x & 0xffff0000u);
    out[2] = __uint_as_float(v.y << 16);
    out[3] = __uint_as_float(v.y & 0xffff0000u);
}
__device__ __forceinline__ void load4(const __half* s, float* out) {
    const uint2 v = *reinterpret_cast<const uint2*>(s);
    const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&v.x));
    const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&v.y));
    out[0] = a.x; out[1] = a.y; out[2] = b.x; out[3] = b.y;
}

// The split's partial result (o, m, l) for HG query heads of one KV head: see the top of the file. PARTS warps per
// head, each taking TK / PARTS keys of every tile. Shared memory: STAGES stages of [TK][kStride] keys and
// [TK][rowElems] values in T, then queries [HG][rowElems] and the tile's probabilities [HG * PARTS][TK / PARTS] in
// fp32; with PARTS = 2 the tile area then holds the parts' merge, [HG][rowElems + 4] floats.
template <typename T, int MAXHD, int HG, int PARTS>
__device__ __forceinline__ void decode_attention_keys(
        const T* __restrict__ q, const T* __restrict__ kCache, const T* __restrict__ vCache,
        const int* __restrict__ blockTables, int tableStride, const int* __restrict__ decodeRows,
        const int* __restrict__ rowChunk, const int* __restrict__ positions, float* __restrict__ partialOut,
        float* __restrict__ partialMaxSum, T* __restrict__ out, int heads, int kvHeads, int hd, int blockSize,
        int window, int splits, float scale) {
    static_assert(PARTS == 1 || PARTS == 2, "a warp's keys are a whole warp's or a half-warp's");
    constexpr int E = 16 / sizeof(T), TK = KEYS_TILE, THREADS = 32 * HG * PARTS;
    constexpr int KP = TK / PARTS;  // keys per warp and tile; with PARTS = 2 each half-warp scores all KP of them
    constexpr int STAGES = DECODE_STAGES;
    constexpr int CHUNKS = (MAXHD + 127) / 128;  // 4-dimension chunks per lane in the values phase
    extern __shared__ __align__(16) unsigned char smem[];
    const int slices = (hd + E - 1) / E, rowElems = slices * E, kStride = rowElems + E;
    const int stageElems = TK * (kStride + rowElems);
    T* tiles = reinterpret_cast<T*>(smem);
    float* qs = reinterpret_cast<float*>(smem + STAGES * stageElems * (int)sizeof(T));  // [HG][rowElems]
    float* ps = qs + HG * rowElems;                                                      // [HG * PARTS][KP]

    const DecodeWork w = decode_work<HG>(blockTables, tableStride, decodeRows, rowChunk, positions, heads, kvHeads,
                                         window, splits);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, split = blockIdx.z;
    const int g = PARTS == 1 ? warp : warp % HG, part = PARTS == 1 ? 0 : warp / HG;
    const int key = part * KP + lane % KP, firstSlice = lane / KP;  // the lane's key in the tile, and first slice
    const int tilesToDo = w.end > w.begin ? (w.end - w.begin + TK - 1) / TK : 0;
    stage_first_tiles<T, TK, STAGES, THREADS>(kCache, vCache, w, tiles, stageElems, kStride, slices, tilesToDo,
                                              kvHeads, hd, blockSize);
    for (int i = threadIdx.x; i < HG * rowElems; i += THREADS) {
        const int h = i / rowElems, d = i - h * rowElems;
        qs[i] = h < w.count && d < hd
                ? to_float(q[((size_t)w.row * heads + w.head0 + h) * hd + d]) * scale * DECODE_LOG2E : 0.f;
    }
    const float* qg = qs + g * rowElems;
    float* pg = ps + warp * KP;
    float acc[CHUNKS][4];
#pragma unroll
    for (int k = 0; k < CHUNKS; k++) {
#pragma unroll
        for (int e = 0; e < 4; e++) acc[k][e] = 0.f;
    }
    float m = -INFINITY, l = 0.f;  // the warp's head and keys, the same in every lane

    for (int t = 0; t < tilesToDo; t++) {
        const int t0 = w.begin + t * TK;
        // Tile t is in, the queries are written (first pass), and every warp is done with tile t - 1.
        const T* Ks = next_tile<T, TK, STAGES, THREADS>(kCache, vCache, w, tiles, t, stageElems, kStride, slices,
                                                        tilesToDo, kvHeads, hd, blockSize);
        const T* Vs = Ks + TK * kStride + part * KP * rowElems;

        float s = 0.f;
        const T* kRow = Ks + key * kStride;
        for (int c = firstSlice; c < slices; c += PARTS) {
            float kv[E];
            load_slice(kRow + c * E, kv);
            const float4* qv = reinterpret_cast<const float4*>(qg + c * E);
#pragma unroll
            for (int e4 = 0; e4 < E / 4; e4++) {
                const float4 q4 = qv[e4];
                s += q4.x * kv[4 * e4] + q4.y * kv[4 * e4 + 1] + q4.z * kv[4 * e4 + 2] + q4.w * kv[4 * e4 + 3];
            }
        }
        if constexpr (PARTS == 2) s += __shfl_xor_sync(0xffffffffu, s, 16);  // both halves hold the key's score
        const bool valid = t0 + key < w.end;  // zero-filled keys past the split's end take no weight
        s = valid ? s : -INFINITY;
        // Over the warp's KP keys: each half-warp holds them all once, so its sum counts each key once.
        const float mNew = fmaxf(m, warp_max<KP>(s));
        // With one part the tile's first key is in range, so mNew is finite; part 1 of a split's only tile may have
        // no key in range, and then stays at m = -inf, l = 0 rather than take exp2f(-inf - -inf).
        const float alpha = PARTS > 1 && mNew == -INFINITY ? 1.f : exp2f(m - mNew);  // 0 on the first tile
        const float p = valid ? exp2f(s - mNew) : 0.f;
        l = l * alpha + warp_sum<KP>(p);
        m = mNew;
        pg[lane % KP] = p;  // with PARTS = 2 both halves write the same value
        __syncwarp();
#pragma unroll
        for (int k = 0; k < CHUNKS; k++) {
#pragma unroll
            for (int e = 0; e < 4; e++) acc[k][e] *= alpha;
        }
#pragma unroll
        for (int k = 0; k < CHUNKS; k++) {
            const int d0 = 4 * (lane + 32 * k);
            if (d0 < rowElems) {
#pragma unroll 8
                for (int j = 0; j < KP; j++) {
                    const float pj = pg[j];
                    float v[4];
                    load4(Vs + j * rowElems + d0, v);
#pragma unroll
                    for (int e = 0; e < 4; e++) acc[k][e] += pj * v[e];
                }
            }
        }
        __syncwarp();  // pg is rewritten by the next tile
    }

    asm volatile("cp.async.wait_group 0;\n" ::);
    if constexpr (PARTS == 2) {
        // Part 1 hands its (o, m, l) to part 0 through the tile area, free once every warp is past the last tile.
        float* merge = reinterpret_cast<float*>(smem) + g * (rowElems + 4);  // o [rowElems], m, l (float4-aligned)
        __syncthreads();
        if (part == 1) {
#pragma unroll
            for (int k = 0; k < CHUNKS; k++) {
                const int d0 = 4 * (lane + 32 * k);
                if (d0 < rowElems) {
                    *reinterpret_cast<float4*>(merge + d0) = make_float4(acc[k][0], acc[k][1], acc[k][2], acc[k][3]);
                }
            }
            if (lane == 0) {
                merge[rowElems] = m;
                merge[rowElems + 1] = l;
            }
        }
        __syncthreads();
        if (part == 1) return;
        const float m1 = merge[rowElems], l1 = merge[rowElems + 1], mMax = fmaxf(m, m1);
        // A part with no key (m = -inf) weighs 0, or 1 where both have none (then l = 0 and o = 0 in both).
        const float s0 = m == mMax ? 1.f : exp2f(m - mMax), s1 = m1 == mMax ? 1.f : exp2f(m1 - mMax);
#pragma unroll
        for (int k = 0; k < CHUNKS; k++) {
            const int d0 = 4 * (lane + 32 * k);
            if (d0 < rowElems) {
                float o1[4];
                load4(merge + d0, o1);
#pragma unroll
                for (int e = 0; e < 4; e++) acc[k][e] = acc[k][e] * s0 + o1[e] * s1;
            }
        }
        m = mMax;
        l = l * s0 + l1 * s1;
    }
    if (g >= w.count) return;
    if (splits == 1) {
        // The whole context in one split: the normalised output itself, no partials and no reduction (l > 0: a
        // decode row attends to at least its own key).
        T* o = out + ((size_t)w.row * heads + w.head0 + g) * hd;
        const float inverse = 1.f / l;
#pragma unroll
        for (int k = 0; k < CHUNKS; k++) {
            const int d0 = 4 * (lane + 32 * k);
#pragma unroll
            for (int e = 0; e < 4; e++) {
                if (d0 + e < hd) o[d0 + e] = from_float<T>(acc[k][e] * inverse);
            }
        }
        return;
    }
    // An empty split (short context) writes o = 0, m = -inf, l = 0, which the reduction weighs as zero.
    float* partial = partialOut + (((size_t)w.n * heads + w.head0 + g) * splits + split) * hd;
#pragma unroll
    for (int k = 0; k < CHUNKS; k++) {
        const int d0 = 4 * (lane + 32 * k);
#pragma unroll
        for (int e = 0; e < 4; e++) {
            if (d0 + e < hd) partial[d0 + e] = acc[k][e];
        }
    }
    if (lane == 0) {
        const size_t part = ((size_t)w.n * heads + w.head0 + g) * splits + split;
        partialMaxSum[part * 2] = m;
        partialMaxSum[part * 2 + 1] = l;
    }
}

constexpr int DMMA_KEYS = 64;     // keys per staged tile: 16 per warp
constexpr int DMMA_HEADS = 16;    // query heads per block: the 16 rows of the A operand
constexpr int DMMA_MAXHD = 128;
constexpr int DMMA_ROW = DMMA_MAXHD + 8;  // staged row: +8 elements, so that ldmatrix's 8 rows fall on distinct banks
constexpr int DMMA_WARPS = 4;
constexpr int DMMA_THREADS = 32 * DMMA_WARPS;
constexpr int DMMA_KSTEPS = DMMA_MAXHD / 16, DMMA_DTILES = DMMA_MAXHD / 8;

// What a warp of the tensor-core decode kernels carries across its tiles: the A operand (rows g and g + 8 are query
// heads head0 + g and head0 + g + 8, zero past the block's count), its rows' running max and this thread's share of
// their sums, and their output accumulators.
struct MmaDecodeWarp {
    uint32_t qf[DMMA_KSTEPS][4];
    float m0, m1, l0, l1;
    float o[DMMA_DTILES][4];
};

template <typename T>
__device__ __forceinline__ MmaDecodeWarp mma_decode_start(const T* __restrict__ q, const DecodeWork& w, int heads,
                                                          int hd, int lane) {
    MmaDecodeWarp a;
    const int g = lane >> 2, t = lane & 3;
    const T* q0 = q + ((size_t)w.row * heads + w.head0 + g) * hd;
    load_query_fragments(a.qf, q0, q0 + 8 * hd, g < w.count, g + 8 < w.count, hd, t);
    a.m0 = a.m1 = -INFINITY;
    a.l0 = a.l1 = 0.f;
#pragma unroll
    for (int n = 0; n < DMMA_DTILES; n++) a.o[n][0] = a.o[n][1] = a.o[n][2] = a.o[n][3] = 0.f;
    return a;
}

// One warp's 16 keys of a staged tile, positions first.. first + 15, rows `stride` elements apart from `keys` and
// `values` on: S = Q K^T (2 x hd/16 mma, K through ldmatrix), masked outside [lo, hi) and scaled, the online softmax
// of its rows (4-lane shuffles), O += P V (hd/8 mma, S's registers reused as P's operand, V through ldmatrix.trans).
// Key rows first.. first + 7 and first + 8.. first + 15 apply swizzleK0 and swizzleK1 to the lane's row (lane % 8),
// values swizzleV (lane % 16); 0 for rows staged in order. At least one of the 16 keys lies in [lo, hi), so every
// row's max is finite (rows past the count score 0); values at keys outside it weigh 0 and must be finite.
template <typename T>
__device__ __forceinline__ void mma_decode_keys(MmaDecodeWarp& a, const T* keys, const T* values, int stride,
                                                int swizzleK0, int swizzleK1, int swizzleV, int first, int lo, int hi,
                                                float qScale, int hd, int lane) {
    using Ops = MmaOps<T>;
    const int t = lane & 3;
    float sc[2][4];
#pragma unroll
    for (int n = 0; n < 2; n++) {
        sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < DMMA_KSTEPS; kk++) {
            if (kk * 16 < hd) {
                uint32_t b0, b1;
                load_key_fragment(keys + n * 8 * stride, stride, kk * 16, lane, b0, b1, n == 0 ? swizzleK0 : swizzleK1);
                Ops::mma(sc[n], a.qf[kk], b0, b1);
            }
        }
    }
    float max0 = -INFINITY, max1 = -INFINITY;
#pragma unroll
    for (int n = 0; n < 2; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int key = first + n * 8 + 2 * t + (e & 1);
            sc[n][e] = key >= lo && key < hi ? sc[n][e] * qScale : -INFINITY;  // a select: NaN past the end is dropped
        }
        max0 = fmaxf(max0, fmaxf(sc[n][0], sc[n][1]));
        max1 = fmaxf(max1, fmaxf(sc[n][2], sc[n][3]));
    }
    max0 = warp_max<4>(max0);
    max1 = warp_max<4>(max1);
    const float mNew0 = fmaxf(a.m0, max0), mNew1 = fmaxf(a.m1, max1);  // finite: see above
    const float alpha0 = exp2_approx(a.m0 - mNew0), alpha1 = exp2_approx(a.m1 - mNew1);  // 0 on the warp's first tile
    a.m0 = mNew0;
    a.m1 = mNew1;
    a.l0 *= alpha0;
    a.l1 *= alpha1;
    scale_rows(a.o, alpha0, alpha1);
#pragma unroll
    for (int n = 0; n < 2; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) sc[n][e] = exp2_approx(sc[n][e] - (e < 2 ? a.m0 : a.m1));  // 2^-inf = 0
        a.l0 += sc[n][0] + sc[n][1];
        a.l1 += sc[n][2] + sc[n][3];
    }
    // S's accumulators are P's A operand for the warp's 16 keys: one k-step.
    const uint32_t p[4] = {Ops::pack(sc[0][0], sc[0][1]), Ops::pack(sc[0][2], sc[0][3]),
                           Ops::pack(sc[1][0], sc[1][1]), Ops::pack(sc[1][2], sc[1][3])};
#pragma unroll
    for (int n = 0; n < DMMA_DTILES; n++) {
        if (n * 8 < hd) {
            uint32_t b0, b1;
            load_value_fragment(values, stride, n * 8, lane, b0, b1, swizzleV);
            Ops::mma(a.o[n], p, b0, b1);
        }
    }
}

// After every warp's last tile: warps 1-3 leave (o, m, l) in shared memory (`merge`, at least
// (DMMA_WARPS - 1) * (DMMA_DTILES + 1) * 512 bytes that no copy still writes), each lane's fragments where the same
// lane of warp 0 reads them (the fragments' places in the output are the same in every warp); warp 0 merges them
// (M = max, each scaled by 2^(m - M)) and writes the split's partial, or with one split the normalised output.
template <typename T>
__device__ __forceinline__ void mma_decode_finish(MmaDecodeWarp& a, void* mergeArea, const DecodeWork& w,
                                                  float* __restrict__ partialOut, float* __restrict__ partialMaxSum,
                                                  T* __restrict__ out, int heads, int hd, int splits) {
    using Ops = MmaOps<T>;
    constexpr int DTILES = DMMA_DTILES;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    a.l0 = warp_sum<4>(a.l0);
    a.l1 = warp_sum<4>(a.l1);
    float4* merge = reinterpret_cast<float4*>(mergeArea);  // [warp - 1][DTILES + 1][32]
    __syncthreads();  // every warp is past the last tile (with no tiles: the barrier is harmless)
    if (warp > 0) {
        float4* mine = merge + (warp - 1) * (DTILES + 1) * 32;
#pragma unroll
        for (int n = 0; n < DTILES; n++) {
            if (n * 8 < hd) mine[n * 32 + lane] = make_float4(a.o[n][0], a.o[n][1], a.o[n][2], a.o[n][3]);
        }
        mine[DTILES * 32 + lane] = make_float4(a.m0, a.m1, a.l0, a.l1);
    }
    __syncthreads();
    if (warp > 0) return;
    float mMax0 = a.m0, mMax1 = a.m1;
#pragma unroll
    for (int v = 0; v < DMMA_WARPS - 1; v++) {
        const float4 ml = merge[(v * (DTILES + 1) + DTILES) * 32 + lane];
        mMax0 = fmaxf(mMax0, ml.x);
        mMax1 = fmaxf(mMax1, ml.y);
    }
    // A warp with no key in range (m = -inf) weighs 0; where none has one, o = 0, m = -inf, l = 0 is written, which
    // the reduction weighs as zero.
    const float own0 = a.m0 == -INFINITY ? 0.f : exp2f(a.m0 - mMax0);
    const float own1 = a.m1 == -INFINITY ? 0.f : exp2f(a.m1 - mMax1);
    float l0 = a.l0 * own0, l1 = a.l1 * own1;
    scale_rows(a.o, own0, own1);
    // One warp's fragments at a time: unrolled, ptxas loads all three warps' at once and spills.
#pragma unroll 1
    for (int v = 0; v < DMMA_WARPS - 1; v++) {
        const float4* theirs = merge + v * (DTILES + 1) * 32;
        const float4 ml = theirs[DTILES * 32 + lane];
        const float w0 = ml.x == -INFINITY ? 0.f : exp2f(ml.x - mMax0);
        const float w1 = ml.y == -INFINITY ? 0.f : exp2f(ml.y - mMax1);
        l0 += ml.z * w0;
        l1 += ml.w * w1;
#pragma unroll
        for (int n = 0; n < DTILES; n++) {
            if (n * 8 < hd) {
                const float4 x = theirs[n * 32 + lane];
                a.o[n][0] += x.x * w0;
                a.o[n][1] += x.y * w0;
                a.o[n][2] += x.z * w1;
                a.o[n][3] += x.w * w1;
            }
        }
    }
    // The split's partials, as decode_attention_keys writes them, rows g and g + 8 of the block's heads; with one split
    // the normalised output instead (l > 0: a decode row attends to at least its own key).
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const int h = g + 8 * half;
        if (h >= w.count) continue;
        if (splits == 1) {
            T* result = out + ((size_t)w.row * heads + w.head0 + h) * hd;
            const float inverse = 1.f / (half == 0 ? l0 : l1);
#pragma unroll
            for (int n = 0; n < DTILES; n++) {
                if (n * 8 < hd) {
                    *reinterpret_cast<uint32_t*>(result + n * 8 + 2 * t) = half == 0
                            ? Ops::pack(a.o[n][0] * inverse, a.o[n][1] * inverse)
                            : Ops::pack(a.o[n][2] * inverse, a.o[n][3] * inverse);
                }
            }
            continue;
        }
        const size_t part = ((size_t)w.n * heads + w.head0 + h) * splits + blockIdx.z;
        float* partial = partialOut + part * hd;
#pragma unroll
        for (int n = 0; n < DTILES; n++) {
            if (n * 8 < hd) {
                *reinterpret_cast<float2*>(partial + n * 8 + 2 * t) =
                        half == 0 ? make_float2(a.o[n][0], a.o[n][1]) : make_float2(a.o[n][2], a.o[n][3]);
            }
        }
        if (t == 0) {
            partialMaxSum[part * 2] = half == 0 ? mMax0 : mMax1;
            partialMaxSum[part * 2 + 1] = half == 0 ? l0 : l1;
        }
    }
}

// The merge's floats: warps 1-3's output fragments and (m, l), which every tile area of either kernel holds.
constexpr int DMMA_MERGE_BYTES = (DMMA_WARPS - 1) * (DMMA_DTILES + 1) * 32 * 16;
static_assert(DMMA_MERGE_BYTES <= 2 * 2 * DMMA_KEYS * DMMA_ROW * 2, "the merge fits decode_attention_mma's tiles");
static_assert(DMMA_MERGE_BYTES <= 2 * 2 * DMMA_KEYS * 64 * 2, "the merge fits decode_attention_bulk's at hd 64");

// decode_attention_mma's tiles: see the top of the file. Shared memory: two stages of [DMMA_KEYS][DMMA_ROW] keys then
// as many values (69,632 bytes). Leaves every copy complete.
template <typename T>
__device__ __forceinline__ void mma_decode_async_tiles(MmaDecodeWarp& a, unsigned char* smem, const DecodeWork& w,
                                                       const T* __restrict__ q, const T* __restrict__ kCache,
                                                       const T* __restrict__ vCache, int tiles, int heads, int kvHeads,
                                                       int hd, int blockSize, float qScale) {
    T* const staged = reinterpret_cast<T*>(smem);  // stage s: keys at s * 2 * DMMA_KEYS rows, values DMMA_KEYS further
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    // Tile k0's keys and values into stage s, zero-filled at and past the split's end (their scores are masked, their
    // values weigh 0).
    auto stage = [&](int s, int k0) {
        T* keys = staged + s * 2 * DMMA_KEYS * DMMA_ROW;
        copy_kv_rows<T, DMMA_THREADS>(kCache, vCache, w.table, keys, DMMA_ROW, keys + DMMA_KEYS * DMMA_ROW, DMMA_ROW,
                                      DMMA_KEYS, hd / 8, k0, w.end, kvHeads, w.kvHead, hd, blockSize);
    };
    if (tiles > 0) stage(0, w.begin);
    asm volatile("cp.async.commit_group;\n" ::);
    a = mma_decode_start(q, w, heads, hd, lane);
    for (int tile = 0; tile < tiles; tile++) {
        const int k0 = w.begin + tile * DMMA_KEYS, s = tile & 1;
        if (tile + 1 < tiles) stage(s ^ 1, k0 + DMMA_KEYS);
        asm volatile("cp.async.commit_group;\n" ::);  // possibly empty: one group per iteration
        asm volatile("cp.async.wait_group 1;\n" ::);   // all but the newest group, so this tile, have landed
        __syncthreads();
        const int first = k0 + 16 * warp;  // this warp's 16 keys: key `first` is in range (begin >= w.first)
        if (first < w.end) {
            const T* keys = staged + (s * 2 * DMMA_KEYS + 16 * warp) * DMMA_ROW;
            mma_decode_keys(a, keys, keys + DMMA_KEYS * DMMA_ROW, DMMA_ROW, 0, 0, 0, first, w.begin, w.end, qScale, hd,
                            lane);
        }
        __syncthreads();  // this stage is consumed before the next iteration refills it
    }
    asm volatile("cp.async.wait_group 0;\n" ::);
}

// decode_attention_bulk's tiles: see the top of the file. Shared memory: `stages` stages of [DMMA_KEYS][hd] keys then
// as many values, in the cache's swizzled order, then a barrier per stage. Leaves every copy complete.
template <typename T>
__device__ __forceinline__ void mma_decode_bulk_tiles(MmaDecodeWarp& a, unsigned char* smem, const DecodeWork& w,
                                                      const T* __restrict__ q, const T* __restrict__ kCache,
                                                      const T* __restrict__ vCache, int tiles, int heads, int kvHeads,
                                                      int hd, int blockSize, int stages, float qScale) {
    const int stageElems = 2 * DMMA_KEYS * hd;
    T* const staged = reinterpret_cast<T*>(smem);  // stage s: keys at s * stageElems, values DMMA_KEYS * hd further
    uint64_t* const full = reinterpret_cast<uint64_t*>(smem + (size_t)stages * stageElems * sizeof(T));
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (threadIdx.x == 0) barriers_init(full, stages);
    __syncthreads();
    // Tile `tile` into its stage (tile % stages), started by warp tile % DMMA_WARPS.
    auto stage = [&](int tile) {
        const int k0 = w.begin + tile * DMMA_KEYS, s = tile % stages;
        T* keys = staged + s * stageElems;
        bulk_copy_kv_rows(kCache, vCache, w.table, w.kvHead, keys, keys + DMMA_KEYS * hd, full + s, k0, min(k0 + DMMA_KEYS, w.end),
                          kvHeads, hd, blockSize, lane);
    };
    for (int tile = warp; tile < min(stages, tiles); tile += DMMA_WARPS) stage(tile);  // every stage is free
    a = mma_decode_start(q, w, heads, hd, lane);  // the query's loads overlap the first copies

    // The swizzle of the lane's key rows 16w + lane % 8 (and 8 further) and value row 16w + lane % 16 of a tile: with
    // blocks of a multiple of 8 tokens a tile starts at a multiple of 8, and row r lies at offset r (mod 8) of its
    // block, the same for every tile; otherwise it is worked out per tile.
    const bool eightAligned = blockSize % 8 == 0;
    const int rowK = 16 * warp + (lane & 7), rowV = 16 * warp + (lane & 15);
    for (int tile = 0, s = 0, parity = 0; tile < tiles; tile++) {
        const int k0 = w.begin + tile * DMMA_KEYS;
        if (tile > 0) {
            __syncthreads();  // every warp is done with tile - 1, whose stage tile + stages - 1 fills
            const int next = tile + stages - 1;
            if (next < tiles && warp == next % DMMA_WARPS) stage(next);
        }
        barrier_wait(full + s, parity);
        const int first = k0 + 16 * warp;  // this warp's 16 keys, of which one at least must be in [w.first, w.end)
        if (first < w.end && first + 16 > w.first) {
            T* keys = staged + s * stageElems + 16 * warp * hd;
            T* values = keys + DMMA_KEYS * hd;
            // Rows at and past the end hold no copy, but what shared memory held (any bits): zeros, for p = 0 to weigh.
            const int filled = w.end - first;
            if (filled < 16) {
                uint4* rest = reinterpret_cast<uint4*>(values + filled * hd);
                for (int i = lane; i < (16 - filled) * hd * (int)sizeof(T) / 16; i += 32) rest[i] = make_uint4(0, 0, 0, 0);
                __syncwarp();
            }
            const int swizzleK0 = kv_swizzle<T>(eightAligned ? rowK : (k0 + rowK) % blockSize, hd);
            const int swizzleK1 = kv_swizzle<T>(eightAligned ? rowK : (k0 + rowK + 8) % blockSize, hd);
            const int swizzleV = kv_swizzle<T>(eightAligned ? rowV : (k0 + rowV) % blockSize, hd);
            mma_decode_keys(a, keys, values, hd, swizzleK0, swizzleK1, swizzleV, first, w.first, w.end, qScale, hd,
                            lane);
        }
        if (++s == stages) {
            s = 0;
            parity ^= 1;
        }
    }
}

// decode_attention_mma (BULK false) and decode_attention_bulk (BULK true, `stages` deep): see the top of the file. The
// tile area is reused after the last tile for the warps' merge. HD: the head dimension as a constant (the bulk kernel's
// entry points, one per head dimension it takes), so that the per-k-step guards and the staged rows' addresses fold
// (as in prefill_attention_bulk); 0 where it is the runtime `hd` (decode_attention_mma).
template <typename T, bool BULK, int HD>
__device__ __forceinline__ void decode_attention_tensor_cores(
        const T* __restrict__ q, const T* __restrict__ kCache, const T* __restrict__ vCache,
        const int* __restrict__ blockTables, int tableStride, const int* __restrict__ decodeRows,
        const int* __restrict__ rowChunk, const int* __restrict__ positions, float* __restrict__ partialOut,
        float* __restrict__ partialMaxSum, T* __restrict__ out, int heads, int kvHeads, int runtimeHd, int blockSize,
        int window, int splits, float scale, int stages) {
    const int hd = HD > 0 ? HD : runtimeHd;
    extern __shared__ __align__(16) unsigned char smem[];
    // With bulk copies, splits of whole cache blocks: every copy is a run of one block's rows.
    const DecodeWork w = decode_work<DMMA_HEADS>(blockTables, tableStride, decodeRows, rowChunk, positions, heads,
                                                 kvHeads, window, splits, BULK ? blockSize : 1);
    const int tiles = w.end > w.begin ? (w.end - w.begin + DMMA_KEYS - 1) / DMMA_KEYS : 0;
    const float qScale = scale * DECODE_LOG2E;
    MmaDecodeWarp a;
    if constexpr (BULK) {
        mma_decode_bulk_tiles(a, smem, w, q, kCache, vCache, tiles, heads, kvHeads, hd, blockSize, stages, qScale);
    } else {
        mma_decode_async_tiles(a, smem, w, q, kCache, vCache, tiles, heads, kvHeads, hd, blockSize, qScale);
    }
    mma_decode_finish(a, smem, w, partialOut, partialMaxSum, out, heads, hd, splits);
}

// Grid (decode rows, heads); threads stride over the head dimension. Reads splits*(hd + 2) floats
// and writes hd elements per block. The first warp reads every split's (max, sum) at once, a lane each (splits <=
// 32, EmberKernels.MAX_DECODE_SPLITS), and leaves each split's weight in shared memory, so no thread walks the splits
// one dependent load at a time; the output then sums the splits' rows, several loads in flight.
constexpr int DECODE_MAX_SPLITS = 32;

template <typename T>
__device__ __forceinline__ void decode_attention_reduce(const float* __restrict__ partialOut,
                                                        const float* __restrict__ partialMaxSum,
                                                        const int* __restrict__ decodeRows, T* __restrict__ out,
                                                        int heads, int hd, int splits) {
    __shared__ float weights[DECODE_MAX_SPLITS];
    __shared__ float inverseSum;
    const int n = blockIdx.x, head = blockIdx.y;
    const size_t part0 = ((size_t)n * heads + head) * splits;
    if (threadIdx.x < 32) {
        const int s = threadIdx.x;
        const float ms = s < splits ? partialMaxSum[(part0 + s) * 2] : -INFINITY;
        const float ls = s < splits ? partialMaxSum[(part0 + s) * 2 + 1] : 0.f;
        const float mMax = warp_max(ms);
        const float w = ms == -INFINITY ? 0.f : exp2f(ms - mMax);
        const float sum = warp_sum(ls * w);
        weights[s] = w;
        if (s == 0) inverseSum = 1.f / sum;
    }
    __syncthreads();
    T* o = out + ((size_t)decodeRows[n] * heads + head) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float v = 0.f;
#pragma unroll 8
        for (int s = 0; s < splits; s++) {
            // Every split's row is loaded with no branch around the load, so that the unrolled splits' loads go out
            // together instead of one round trip after another (a test around them compiled to a branch per split,
            // as it did in the matrix-vector kernel's several-row builds, which gained 8-24% without it); an empty
            // split (ms = -inf, weight 0) wrote no partial row, and the select adds 0 in place of whatever it holds.
            const float partial = partialOut[(part0 + s) * hd + d];
            v = fmaf(weights[s] != 0.f ? partial : 0.f, weights[s], v);
        }
        o[d] = from_float<T>(v * inverseSum);
    }
}

}  // namespace ember

#define DECODE_PARAM_LIST                                                                                  \
    const T* q, const T* kCache, const T* vCache, const int* blockTables, int tableStride, const int* decodeRows,  \
    const int* rowChunk, const int* positions, float* partialOut, float* partialMaxSum, T* out, int heads,         \
    int kvHeads, int hd, int blockSize, int window, int splits, float scale
#define DECODE_ARG_LIST                                                                                    \
    q, kCache, vCache, blockTables, tableStride, decodeRows, rowChunk, positions, partialOut, partialMaxSum, out, \
    heads, kvHeads, hd, blockSize, window, splits, scale
#define DECODE_PARAMS (DECODE_PARAM_LIST)
#define DECODE_ARGS (DECODE_ARG_LIST)
// Entry points per head dimension (up to 128, up to 256) and heads per block (2, 4): the runner picks the
// smallest HG that holds the group, and HG = 4 with several head batches for wider groups. The HG = 2 ones, two
// warps a head, are bounded to as many blocks as shared memory holds, so that registers do not cost any: six
// blocks of 128 threads in 16-bit types at hd <= 128, three in fp32, whose tiles let in no more.
#define DECODE_TWO_PARTS_BOUNDS __launch_bounds__(128, sizeof(T) == 4 ? 3 : 6)
EMBER_INSTANTIATE_BOUNDED(decode_attention_keys_d128_g2, DECODE_TWO_PARTS_BOUNDS, (decode_attention_keys<T, 128, 2, 2>),
                          DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_AS(decode_attention_keys_d128_g4, (decode_attention_keys<T, 128, 4, 1>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_BOUNDED(decode_attention_keys_d256_g2, DECODE_TWO_PARTS_BOUNDS, (decode_attention_keys<T, 256, 2, 2>),
                          DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_AS(decode_attention_keys_d256_g4, (decode_attention_keys<T, 256, 4, 1>), DECODE_PARAMS, DECODE_ARGS)
// The tensor-core kernels take 16-bit operands only (fp32 and other head dimensions use decode_attention_keys).
// decode_attention_mma: three blocks a multiprocessor, as many as its shared memory holds. decode_attention_bulk (sm_90
// and later; on older targets an entry point that traps, never launched there): bounded to three blocks as well,
// which its shared memory allows at two stages (hd 128) and which then costs it no spills.
#define DECODE_MMA_ENTRY(suffix, type)                                                                     \
    namespace ember_##suffix##_mma { using T = type;                                                        \
        extern "C" __global__ void __launch_bounds__(ember::DMMA_THREADS, 3) decode_attention_mma_##suffix   \
        DECODE_PARAMS {                                                                                      \
            ember::allow_next_grid();                                                                        \
            ember::wait_for_previous_grid();                                                                 \
            ember::decode_attention_tensor_cores<T, false, 0>(DECODE_ARG_LIST, 0);                           \
        }                                                                                                    \
        extern "C" __global__ void __launch_bounds__(ember::DMMA_THREADS, 3) decode_attention_bulk_hd128_##suffix \
        (DECODE_PARAM_LIST, int stages) {                                                                    \
            DECODE_BULK_BODY(128)                                                                            \
        }                                                                                                    \
        extern "C" __global__ void __launch_bounds__(ember::DMMA_THREADS, 3) decode_attention_bulk_hd64_##suffix \
        (DECODE_PARAM_LIST, int stages) {                                                                    \
            DECODE_BULK_BODY(64)                                                                             \
        } }
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
#define DECODE_BULK_BODY(HD)                                                                               \
    ember::allow_next_grid();                                                                              \
    ember::wait_for_previous_grid();                                                                       \
    ember::decode_attention_tensor_cores<T, true, HD>(DECODE_ARG_LIST, stages);
#else
#define DECODE_BULK_BODY(HD) __trap();
#endif
DECODE_MMA_ENTRY(bf16, __nv_bfloat16)
DECODE_MMA_ENTRY(f16, __half)
EMBER_INSTANTIATE(decode_attention_reduce,
                  (const float* partialOut, const float* partialMaxSum, const int* decodeRows, T* out, int heads,
                   int hd, int splits),
                  (partialOut, partialMaxSum, decodeRows, out, heads, hd, splits))
