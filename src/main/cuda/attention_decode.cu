// Decode attention: one new query token per sequence against its whole paged KV cache, with the
// context split across thread blocks (split-K) so that a few long sequences still fill the GPU.
//
// decode_attention: block (n, kvHead * headBatches + b, split) handles decode row decodeRows[n], up to HG of
// the G = heads/kvHeads query heads that share kvHead (batch b of them; all G when G <= HG, so that every
// key and value is read from memory once for the whole group), and the split's contiguous share of the
// context. 128 threads whatever G is: the block streams the cache, and its width must not depend on the
// model's grouping.
//
// The cache streams through shared memory in its storage type, TK tokens per tile, STAGES tiles deep: cp.async
// copies the next tile (16 bytes per copy, straight from global to shared memory, zero-filled past the split's
// end) while the block computes on this one. Each tile takes three phases, one barrier apart:
//   scores  half-warp h (of 8) takes tokens h, h+8, ...; lane c of the half-warp holds the 16-byte slice(s)
//           c, c+16, ... of the HG queries in registers (fp32, pre-scaled by scale*log2 e), multiplies them
//           with the same slice of the key, and the 16 lanes sum their HG partial dot products with a
//           reduce-scatter (HG/2 + HG/4 + ... + the rest shuffles, instead of 4 per head);
//   softmax warp g takes head g: the tile's max, the new running max, p = 2^(s - m) in place of the scores,
//           the rescaling factor 2^(m_old - m_new) for the accumulators, and each lane's share of the sum;
//   values  thread (h, c) rescales, then adds p * v over its tokens into its slices of the HG outputs (fp32).
// At the end the 8 half-warps' partial outputs are summed through shared memory, and the block writes the
// unnormalised partial result per head: o (hd floats), m and l.
// decode_attention_reduce then merges the splits: M = max m_s, L = sum l_s 2^(m_s - M),
// out = sum o_s 2^(m_s - M) / L.
//
// Cost per decode row and KV head: 2*ctx*hd*sizeof(T) bytes of cache read once (per head batch: G <= HG
// for every supported model but the widest groups), 4*G*ctx*hd FLOPs, plus splits*G*(hd + 2)*4 bytes of
// partials written and read back. For the 8B shape at batch 64 (576-token contexts) that is 151 MB and
// 0.6 GFLOP per layer: ~4 FLOPs per byte, far under the fp32 rate per byte of bandwidth, so the kernel
// is bound by how fast it streams the cache.
#include "common.cuh"

namespace ember {

constexpr float DECODE_LOG2E = 1.4426950408889634f;
constexpr int DECODE_THREADS = 128;   // 4 warps, 8 half-warps
constexpr int DECODE_STAGES = 2;      // tiles in shared memory: one computed on, one in flight
constexpr int DECODE_TILE_BYTES = 16384;  // of keys (and as much of values) per tile at the widest head dimension

// The tile geometry for storage type T and head dimensions up to MAXHD. EmberKernels.decodeAttention
// computes the same sizes.
template <typename T, int MAXHD> struct DecodeTile {
    static constexpr int E = 16 / sizeof(T);                          // elements per 16-byte slice
    static constexpr int TK = DECODE_TILE_BYTES / (MAXHD * sizeof(T));  // tokens per tile: 64, 32 or 16
    static constexpr int SLICES = (MAXHD + E - 1) / E;                // most 16-byte slices per row
    static constexpr int PER_LANE = (SLICES + 15) / 16;               // slices per lane of a half-warp
    static_assert(TK % 8 == 0, "each half-warp takes the same number of tokens per tile");
};

__device__ __forceinline__ void copy_async_16(void* shared, const void* global, bool valid) {
    const unsigned to = (unsigned)__cvta_generic_to_shared(shared);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(to), "l"(global), "r"(valid ? 16 : 0));
}

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

// Starts copying the keys and values of tokens [t0, t0 + TK) of one KV head into a stage (rows of
// `slices` 16-byte slices; tokens at or past `end` as zeros). Rows whose hd*sizeof(T) bytes are not a
// multiple of 16 are copied element by element instead, synchronously, with the row's tail zeroed: the
// barrier before the tile's use makes either visible.
// Keys go to rows kStride elements apart (the row's slices * E elements, or more where a kernel pads rows against
// bank conflicts); values are packed. THREADS: the block's threads, which share the copies.
template <typename T, int TK, int THREADS = DECODE_THREADS>
__device__ __forceinline__ void stage_tile(const T* __restrict__ kCache, const T* __restrict__ vCache,
                                           const int* __restrict__ table, T* Ks, T* Vs, int slices, int kStride, int t0,
                                           int end, int kvHeads, int kvHead, int hd, int blockSize) {
    constexpr int E = 16 / sizeof(T);
    if (slices * E == hd) {
        const int shift = __ffs(slices) - 1;
        const bool pow2 = (slices & (slices - 1)) == 0;
        for (int i = threadIdx.x; i < TK * slices; i += THREADS) {
            const int j = pow2 ? i >> shift : i / slices, c = i - j * slices, kp = t0 + j;
            const bool valid = kp < end;
            const size_t at = valid ? paged_offset(table, kp, blockSize, kvHeads, kvHead, hd, c * E) : 0;
            copy_async_16(Ks + j * kStride + c * E, kCache + at, valid);
            copy_async_16(Vs + i * E, vCache + at, valid);
        }
        return;
    }
    const int row = slices * E;
    for (int i = threadIdx.x; i < TK * row; i += THREADS) {
        const int j = i / row, d = i - j * row, kp = t0 + j;
        T k = from_float<T>(0.f), v = from_float<T>(0.f);
        if (kp < end && d < hd) {
            const size_t at = paged_offset(table, kp, blockSize, kvHeads, kvHead, hd, d);
            k = kCache[at];
            v = vCache[at];
        }
        Ks[j * kStride + d] = k;
        Vs[i] = v;
    }
}

// Sums v[0..HG) over the 16 lanes of a half-warp. Reduce-scatter: at each of the first log2(HG) steps a
// lane keeps half of its values and receives its partner's sums of the same half; afterwards v[0] holds
// head `head` and the last steps sum it whole. Returns the head this lane's v[0] stands for; the sum is
// complete in the lanes whose bits below the scatter's are zero.
template <int HG>
__device__ __forceinline__ int half_warp_sum_scatter(float* v, int lane) {
    int head = 0;
    int mask = 8;
#pragma unroll
    for (int width = HG / 2; width >= 1; width /= 2, mask >>= 1) {
        const bool upper = lane & mask;
#pragma unroll
        for (int i = 0; i < width; i++) {
            const float send = upper ? v[i] : v[i + width];
            const float keep = upper ? v[i + width] : v[i];
            v[i] = keep + __shfl_xor_sync(0xffffffffu, send, mask);
        }
        if (upper) head += width;
    }
#pragma unroll
    for (; mask >= 1; mask >>= 1) v[0] += __shfl_xor_sync(0xffffffffu, v[0], mask);
    return head;
}

// What one block of decode_attention(_fused) takes: decode row n's sequence, KV head, its query heads
// [head0, head0 + count) and the split's context range [begin, end).
struct DecodeWork {
    int n, row, kvHead, head0, count, begin, end;
    const int* table;
};

template <int HG>
__device__ __forceinline__ DecodeWork decode_work(const int* __restrict__ blockTables, int tableStride,
                                                  const int* __restrict__ decodeRows, const int* __restrict__ rowChunk,
                                                  const int* __restrict__ positions, int heads, int kvHeads, int window,
                                                  int splits) {
    DecodeWork w;
    const int group = heads / kvHeads, batches = (group + HG - 1) / HG;
    w.n = blockIdx.x;
    w.kvHead = blockIdx.y / batches;
    w.head0 = w.kvHead * group + (blockIdx.y % batches) * HG;
    w.count = min(HG, w.kvHead * group + group - w.head0);
    w.row = decodeRows[w.n];
    const int pos = positions[w.row];
    w.table = blockTables + (size_t)rowChunk[w.row] * tableStride;
    const int first = window > 0 ? max(0, pos - window + 1) : 0;
    const int perSplit = (pos - first + 1 + splits - 1) / splits;
    w.begin = first + blockIdx.z * perSplit;
    w.end = min(pos + 1, w.begin + perSplit);
    return w;
}

// Starts copying the first STAGES - 1 tiles of the block's range, one commit group each (empty past the range).
// A stage holds TK key rows kStride elements apart, then TK packed value rows.
template <typename T, int TK, int STAGES, int THREADS = DECODE_THREADS>
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

// This lane's slices of the block's queries, scaled so that scores come out in log2 units; the accumulators zeroed.
template <typename T, int HG, int PER_LANE, int E>
__device__ __forceinline__ void load_queries(const T* __restrict__ q, const DecodeWork& w, int heads, int hd,
                                             float scale, int hl, float (&qr)[HG][PER_LANE][E],
                                             float (&acc)[HG][PER_LANE][E]) {
#pragma unroll
    for (int g = 0; g < HG; g++) {
#pragma unroll
        for (int k = 0; k < PER_LANE; k++) {
#pragma unroll
            for (int e = 0; e < E; e++) {
                const int d = (hl + 16 * k) * E + e;
                qr[g][k][e] = g < w.count && d < hd
                        ? to_float(q[((size_t)w.row * heads + w.head0 + g) * hd + d]) * scale * DECODE_LOG2E : 0.f;
                acc[g][k][e] = 0.f;
            }
        }
    }
}

// This lane's share of token j's score for each of the HG heads: its slices of the key times those of the queries.
template <typename T, int HG, int PER_LANE, int E>
__device__ __forceinline__ void partial_scores(const T* Ks, int j, int rowElems, int slices, int hl,
                                               const float (&qr)[HG][PER_LANE][E], float (&dot)[HG]) {
#pragma unroll
    for (int g = 0; g < HG; g++) dot[g] = 0.f;
#pragma unroll
    for (int k = 0; k < PER_LANE; k++) {
        const int c = hl + 16 * k;
        if (c < slices) {
            float kv[E];
            load_slice(Ks + j * rowElems + c * E, kv);
#pragma unroll
            for (int g = 0; g < HG; g++) {
#pragma unroll
                for (int e = 0; e < E; e++) dot[g] += qr[g][k][e] * kv[e];
            }
        }
    }
}

// acc[g] += p[g] * v_j over this lane's slices of token j's value.
template <typename T, int HG, int PER_LANE, int E>
__device__ __forceinline__ void accumulate_values(const T* Vs, int j, int rowElems, int slices, int hl,
                                                  const float (&p)[HG], float (&acc)[HG][PER_LANE][E]) {
#pragma unroll
    for (int k = 0; k < PER_LANE; k++) {
        const int c = hl + 16 * k;
        if (c < slices) {
            float vv[E];
            load_slice(Vs + j * rowElems + c * E, vv);
#pragma unroll
            for (int g = 0; g < HG; g++) {
#pragma unroll
                for (int e = 0; e < E; e++) acc[g][k][e] += p[g] * vv[e];
            }
        }
    }
}

// Waits for tile t, then starts copying tile t + STAGES - 1 into the stage every thread is done with; returns tile
// t's stage (keys, then values TK * rowElems further).
template <typename T, int TK, int STAGES, int THREADS = DECODE_THREADS>
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

// Writes half-warp `half`'s partial outputs into red[half][HG][rowElems] (shared memory), for the block's final sum.
template <int HG, int PER_LANE, int E>
__device__ __forceinline__ void store_half_warp_outputs(float* red, const float (&acc)[HG][PER_LANE][E], int half,
                                                        int hl, int slices, int rowElems) {
#pragma unroll
    for (int g = 0; g < HG; g++) {
#pragma unroll
        for (int k = 0; k < PER_LANE; k++) {
            const int c = hl + 16 * k;
            if (c < slices) {
                float* to = red + (half * HG + g) * rowElems + c * E;
#pragma unroll
                for (int e = 0; e < E; e += 4)
                    *reinterpret_cast<float4*>(to + e) = make_float4(acc[g][k][e], acc[g][k][e + 1], acc[g][k][e + 2],
                                                                     acc[g][k][e + 3]);
            }
        }
    }
}

// Shared memory: STAGES stages of K and V tiles [TK][slices*E] in T (at the end reused for the 8 half-warps'
// partial outputs, [8][HG][slices*E] floats), then the tile's scores/probabilities [HG][TK] and the
// rescaling factors [HG], fp32.
template <typename T, int MAXHD, int HG>
__device__ __forceinline__ void decode_attention(
        const T* __restrict__ q, const T* __restrict__ kCache, const T* __restrict__ vCache,
        const int* __restrict__ blockTables, int tableStride, const int* __restrict__ decodeRows,
        const int* __restrict__ rowChunk, const int* __restrict__ positions, float* __restrict__ partialOut,
        float* __restrict__ partialMaxSum, int heads, int kvHeads, int hd, int blockSize, int window,
        int splits, float scale) {
    using Tile = DecodeTile<T, MAXHD>;
    constexpr int E = Tile::E, TK = Tile::TK, PER_LANE = Tile::PER_LANE;
    extern __shared__ __align__(16) unsigned char smem[];
    const int slices = (hd + E - 1) / E, rowElems = slices * E;
    const int stageElems = 2 * TK * rowElems;
    const int tileBytes = DECODE_STAGES * stageElems * (int)sizeof(T);
    const int reduceBytes = 8 * HG * rowElems * (int)sizeof(float);
    T* tiles = reinterpret_cast<T*>(smem);
    float* ps = reinterpret_cast<float*>(smem + max(tileBytes, reduceBytes));
    float* alphas = ps + HG * TK;

    const DecodeWork w = decode_work<HG>(blockTables, tableStride, decodeRows, rowChunk, positions, heads, kvHeads,
                                         window, splits);
    const int n = w.n, head0 = w.head0, count = w.count, begin = w.begin, end = w.end, split = blockIdx.z;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int half = threadIdx.x >> 4, hl = threadIdx.x & 15;
    const int tilesToDo = end > begin ? (end - begin + TK - 1) / TK : 0;
    stage_first_tiles<T, TK, DECODE_STAGES>(kCache, vCache, w, tiles, stageElems, rowElems, slices, tilesToDo, kvHeads,
                                            hd, blockSize);
    float qr[HG][PER_LANE][E];
    float acc[HG][PER_LANE][E];
    load_queries<T, HG, PER_LANE, E>(q, w, heads, hd, scale, hl, qr, acc);
    float m = -INFINITY, l = 0.f;  // of head `warp`, kept by that warp (each lane its share of l)

    for (int t = 0; t < tilesToDo; t++) {
        const int t0 = begin + t * TK;
        // Tile t is in; every thread is done with tile t - 1 and its probabilities.
        const T* Ks = next_tile<T, TK, DECODE_STAGES>(kCache, vCache, w, tiles, t, stageElems, rowElems, slices, tilesToDo,
                                                      kvHeads, hd, blockSize);
        const T* Vs = Ks + TK * rowElems;

        for (int j = half; j < TK; j += 8) {
            float dot[HG];
            partial_scores<T, HG, PER_LANE, E>(Ks, j, rowElems, slices, hl, qr, dot);
            const int g = half_warp_sum_scatter<HG>(dot, hl);
            if ((hl & (16 / HG - 1)) == 0 && g < count) ps[g * TK + j] = t0 + j < end ? dot[0] : -INFINITY;
        }
        __syncthreads();

        if (warp < count) {
            float* p = ps + warp * TK;
            float tileMax = -INFINITY;
            for (int j = lane; j < TK; j += 32) tileMax = fmaxf(tileMax, p[j]);
            const float mNew = fmaxf(m, warp_max(tileMax));  // finite: the tile's first token is in range
            const float alpha = exp2f(m - mNew);             // exp2f(-inf) = 0 on the first tile
            float sum = 0.f;
            for (int j = lane; j < TK; j += 32) {
                const float e = exp2f(p[j] - mNew);
                p[j] = e;
                sum += e;
            }
            l = l * alpha + sum;
            m = mNew;
            if (lane == 0) alphas[warp] = alpha;
        }
        __syncthreads();

#pragma unroll
        for (int g = 0; g < HG; g++) {
            const float alpha = g < count ? alphas[g] : 0.f;
#pragma unroll
            for (int k = 0; k < PER_LANE; k++) {
#pragma unroll
                for (int e = 0; e < E; e++) acc[g][k][e] *= alpha;
            }
        }
        for (int j = half; j < TK; j += 8) {
            float pj[HG];
#pragma unroll
            for (int g = 0; g < HG; g++) pj[g] = ps[g * TK + j];
            accumulate_values<T, HG, PER_LANE, E>(Vs, j, rowElems, slices, hl, pj, acc);
        }
    }

    // Sum the 8 half-warps' partial outputs through the (now idle) tile memory.
    asm volatile("cp.async.wait_group 0;\n" ::);
    __syncthreads();
    float* red = reinterpret_cast<float*>(smem);
    store_half_warp_outputs<HG, PER_LANE, E>(red, acc, half, hl, slices, rowElems);
    __syncthreads();
    // An empty split (short context) writes o = 0, m = -inf, l = 0, which the reduction weighs as zero.
    for (int i = threadIdx.x; i < count * hd; i += DECODE_THREADS) {
        const int g = i / hd, d = i - g * hd;
        float o = 0.f;
#pragma unroll
        for (int h = 0; h < 8; h++) o += red[(h * HG + g) * rowElems + d];
        partialOut[(((size_t)n * heads + head0 + g) * splits + split) * hd + d] = o;
    }
    if (warp < count) {
        l = warp_sum(l);
        if (lane == 0) {
            const size_t part = ((size_t)n * heads + head0 + warp) * splits + split;
            partialMaxSum[part * 2] = m;
            partialMaxSum[part * 2 + 1] = l;
        }
    }
}

// decode_attention_fused: the same blocks, inputs and partial results as decode_attention, with the three phases
// of a tile fused into one pass and one barrier per tile. Each half-warp keeps its own online softmax (a running
// max m and sum l per head, exact: rescaled whenever a score beats m) over its tokens h, h+8, ...; a token's scores
// are summed across the half-warp by a butterfly, so every lane holds them, takes p = 2^(s - m) and adds p * v into
// its slices at once. No block-wide softmax phase (where only `count` warps worked) and no score tile in shared
// memory; smaller tiles, three deep, leave room for four blocks per multiprocessor. At the end the 8 half-warps'
// (m, l, o) are merged through shared memory: M = max m_h, o = sum o_h 2^(m_h - M), L = sum l_h 2^(m_h - M).
// Bytes and FLOPs as decode_attention (plus ~4*HG shuffles and HG exp2 per token and lane).
constexpr int FUSED_STAGES = 3;
constexpr int FUSED_TILE_BYTES = 8192;  // of keys (and as much of values) per tile at the widest head dimension

template <typename T, int MAXHD> struct FusedTile {
    static constexpr int E = 16 / sizeof(T);
    static constexpr int TK = FUSED_TILE_BYTES / (MAXHD * sizeof(T));  // tokens per tile: 32, 16 or 8
    static constexpr int SLICES = (MAXHD + E - 1) / E;
    static constexpr int PER_LANE = (SLICES + 15) / 16;
    static_assert(TK % 8 == 0, "every half-warp takes the same number of tokens per tile (the butterfly needs both halves)");
};

template <typename T, int MAXHD, int HG>
__device__ __forceinline__ void decode_attention_fused(
        const T* __restrict__ q, const T* __restrict__ kCache, const T* __restrict__ vCache,
        const int* __restrict__ blockTables, int tableStride, const int* __restrict__ decodeRows,
        const int* __restrict__ rowChunk, const int* __restrict__ positions, float* __restrict__ partialOut,
        float* __restrict__ partialMaxSum, int heads, int kvHeads, int hd, int blockSize, int window,
        int splits, float scale) {
    using Tile = FusedTile<T, MAXHD>;
    constexpr int E = Tile::E, TK = Tile::TK, PER_LANE = Tile::PER_LANE;
    extern __shared__ __align__(16) unsigned char smem[];
    const int slices = (hd + E - 1) / E, rowElems = slices * E;
    const int stageElems = 2 * TK * rowElems;
    T* tiles = reinterpret_cast<T*>(smem);

    const DecodeWork w = decode_work<HG>(blockTables, tableStride, decodeRows, rowChunk, positions, heads, kvHeads,
                                         window, splits);
    const int n = w.n, head0 = w.head0, count = w.count, begin = w.begin, end = w.end, split = blockIdx.z;
    const int half = threadIdx.x >> 4, hl = threadIdx.x & 15;
    const int tilesToDo = end > begin ? (end - begin + TK - 1) / TK : 0;
    stage_first_tiles<T, TK, FUSED_STAGES>(kCache, vCache, w, tiles, stageElems, rowElems, slices, tilesToDo, kvHeads,
                                            hd, blockSize);
    float qr[HG][PER_LANE][E];
    float acc[HG][PER_LANE][E];
    load_queries<T, HG, PER_LANE, E>(q, w, heads, hd, scale, hl, qr, acc);
    float m[HG], l[HG];  // this half-warp's, the same in its 16 lanes
#pragma unroll
    for (int g = 0; g < HG; g++) {
        m[g] = -INFINITY;
        l[g] = 0.f;
    }

    for (int t = 0; t < tilesToDo; t++) {
        const int t0 = begin + t * TK;
        const T* Ks = next_tile<T, TK, FUSED_STAGES>(kCache, vCache, w, tiles, t, stageElems, rowElems, slices, tilesToDo,
                                                     kvHeads, hd, blockSize);
        const T* Vs = Ks + TK * rowElems;

        for (int j = half; j < TK; j += 8) {  // the same trip count in both halves of a warp
            float dot[HG];
            partial_scores<T, HG, PER_LANE, E>(Ks, j, rowElems, slices, hl, qr, dot);
#pragma unroll
            for (int g = 0; g < HG; g++) {
#pragma unroll
                for (int mask = 8; mask >= 1; mask >>= 1) dot[g] += __shfl_xor_sync(0xffffffffu, dot[g], mask);
            }
            const bool valid = t0 + j < end;  // zero-filled keys past the split's end take no weight
            float p[HG];
#pragma unroll
            for (int g = 0; g < HG; g++) {
                const float s = valid ? dot[g] : -INFINITY;
                if (s > m[g]) {
                    const float alpha = exp2f(m[g] - s);  // 0 on the first token
                    l[g] *= alpha;
#pragma unroll
                    for (int k = 0; k < PER_LANE; k++) {
#pragma unroll
                        for (int e = 0; e < E; e++) acc[g][k][e] *= alpha;
                    }
                    m[g] = s;
                }
                p[g] = valid ? exp2f(s - m[g]) : 0.f;
                l[g] += p[g];
            }
            accumulate_values<T, HG, PER_LANE, E>(Vs, j, rowElems, slices, hl, p, acc);
        }
    }

    // Merge the 8 half-warps through the (now idle) tile memory: outputs [8][HG][rowElems], then (m, l) [8][HG].
    asm volatile("cp.async.wait_group 0;\n" ::);
    __syncthreads();
    float* red = reinterpret_cast<float*>(smem);
    float* ml = red + 8 * HG * rowElems;
    store_half_warp_outputs<HG, PER_LANE, E>(red, acc, half, hl, slices, rowElems);
#pragma unroll
    for (int g = 0; g < HG; g++) {
        if (hl == 0) {
            ml[(half * HG + g) * 2] = m[g];
            ml[(half * HG + g) * 2 + 1] = l[g];
        }
    }
    __syncthreads();
    // An empty split (short context) writes o = 0, M = -inf, L = 0, which the reduction weighs as zero.
    for (int i = threadIdx.x; i < count * hd; i += DECODE_THREADS) {
        const int g = i / hd, d = i - g * hd;
        float mMax = -INFINITY;
#pragma unroll
        for (int h = 0; h < 8; h++) mMax = fmaxf(mMax, ml[(h * HG + g) * 2]);
        float o = 0.f;
        if (mMax != -INFINITY) {
#pragma unroll
            for (int h = 0; h < 8; h++) {
                const float mh = ml[(h * HG + g) * 2];
                if (mh != -INFINITY) o += red[(h * HG + g) * rowElems + d] * exp2f(mh - mMax);
            }
        }
        partialOut[(((size_t)n * heads + head0 + g) * splits + split) * hd + d] = o;
    }
    if (threadIdx.x < count) {
        const int g = threadIdx.x;
        float mMax = -INFINITY, sum = 0.f;
#pragma unroll
        for (int h = 0; h < 8; h++) mMax = fmaxf(mMax, ml[(h * HG + g) * 2]);
#pragma unroll
        for (int h = 0; h < 8; h++) {
            const float mh = ml[(h * HG + g) * 2];
            if (mh != -INFINITY) sum += ml[(h * HG + g) * 2 + 1] * exp2f(mh - mMax);
        }
        const size_t part = ((size_t)n * heads + head0 + g) * splits + split;
        partialMaxSum[part * 2] = mMax;
        partialMaxSum[part * 2 + 1] = sum;
    }
}

// decode_attention_keys: the same blocks, inputs and partial results again, with a warp per query head (32 * HG
// threads) and no communication between warps but the shared tiles. For each tile of 32 keys:
//   scores  lane j takes key j whole: its dot product with the head's query, read from shared memory as a broadcast
//           (key rows are padded by 16 bytes, so a quarter-warp's 16-byte reads of 8 keys fall on distinct banks);
//   softmax the warp's max and sum over its 32 scores (10 shuffles per tile, not per key), online across tiles;
//   values  lane c takes 4 dimensions (c, c + 32, ... in chunks of 4), and adds p_j v_j over the tile's keys, p_j
//           read as a broadcast.
// One barrier per tile (a tile in, the stage the next copy fills released), tiles three deep (two at head dimensions
// over 128). Bytes and FLOPs as decode_attention; per key and head ~2*hd FMAs and no shuffles.
constexpr int KEYS_TILE = 32;  // keys per tile: one per lane

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

template <typename T, int MAXHD, int HG>
__device__ __forceinline__ void decode_attention_keys(
        const T* __restrict__ q, const T* __restrict__ kCache, const T* __restrict__ vCache,
        const int* __restrict__ blockTables, int tableStride, const int* __restrict__ decodeRows,
        const int* __restrict__ rowChunk, const int* __restrict__ positions, float* __restrict__ partialOut,
        float* __restrict__ partialMaxSum, int heads, int kvHeads, int hd, int blockSize, int window,
        int splits, float scale) {
    constexpr int E = 16 / sizeof(T), TK = KEYS_TILE, THREADS = 32 * HG;
    constexpr int STAGES = MAXHD <= 128 ? 3 : 2;
    constexpr int CHUNKS = (MAXHD + 127) / 128;  // 4-dimension chunks per lane in the values phase
    extern __shared__ __align__(16) unsigned char smem[];
    const int slices = (hd + E - 1) / E, rowElems = slices * E, kStride = rowElems + E;
    const int stageElems = TK * (kStride + rowElems);
    T* tiles = reinterpret_cast<T*>(smem);
    float* qs = reinterpret_cast<float*>(smem + STAGES * stageElems * (int)sizeof(T));  // [HG][rowElems]
    float* ps = qs + HG * rowElems;                                                      // [HG][TK]

    const DecodeWork w = decode_work<HG>(blockTables, tableStride, decodeRows, rowChunk, positions, heads, kvHeads,
                                         window, splits);
    const int g = threadIdx.x >> 5, lane = threadIdx.x & 31, split = blockIdx.z;
    const int tilesToDo = w.end > w.begin ? (w.end - w.begin + TK - 1) / TK : 0;
    stage_first_tiles<T, TK, STAGES, THREADS>(kCache, vCache, w, tiles, stageElems, kStride, slices, tilesToDo,
                                              kvHeads, hd, blockSize);
    for (int i = threadIdx.x; i < HG * rowElems; i += THREADS) {
        const int h = i / rowElems, d = i - h * rowElems;
        qs[i] = h < w.count && d < hd
                ? to_float(q[((size_t)w.row * heads + w.head0 + h) * hd + d]) * scale * DECODE_LOG2E : 0.f;
    }
    const float* qg = qs + g * rowElems;
    float* pg = ps + g * TK;
    float acc[CHUNKS][4];
#pragma unroll
    for (int k = 0; k < CHUNKS; k++) {
#pragma unroll
        for (int e = 0; e < 4; e++) acc[k][e] = 0.f;
    }
    float m = -INFINITY, l = 0.f;  // the warp's head, the same in every lane

    for (int t = 0; t < tilesToDo; t++) {
        const int t0 = w.begin + t * TK;
        // Tile t is in, the queries are written (first pass), and every warp is done with tile t - 1.
        const T* Ks = next_tile<T, TK, STAGES, THREADS>(kCache, vCache, w, tiles, t, stageElems, kStride, slices,
                                                        tilesToDo, kvHeads, hd, blockSize);
        const T* Vs = Ks + TK * kStride;

        float s = 0.f;
        const T* key = Ks + lane * kStride;
        for (int c = 0; c < slices; c++) {
            float kv[E];
            load_slice(key + c * E, kv);
            const float4* qv = reinterpret_cast<const float4*>(qg + c * E);
#pragma unroll
            for (int e4 = 0; e4 < E / 4; e4++) {
                const float4 q4 = qv[e4];
                s += q4.x * kv[4 * e4] + q4.y * kv[4 * e4 + 1] + q4.z * kv[4 * e4 + 2] + q4.w * kv[4 * e4 + 3];
            }
        }
        const bool valid = t0 + lane < w.end;  // zero-filled keys past the split's end take no weight
        s = valid ? s : -INFINITY;
        const float mNew = fmaxf(m, warp_max(s));  // finite: the tile's first key is in range
        const float alpha = exp2f(m - mNew);       // 0 on the first tile
        const float p = valid ? exp2f(s - mNew) : 0.f;
        l = l * alpha + warp_sum(p);
        m = mNew;
        pg[lane] = p;
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
                for (int j = 0; j < TK; j++) {
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
    if (g >= w.count) return;
    // An empty split (short context) writes o = 0, m = -inf, l = 0, which the reduction weighs as zero.
    float* out = partialOut + (((size_t)w.n * heads + w.head0 + g) * splits + split) * hd;
#pragma unroll
    for (int k = 0; k < CHUNKS; k++) {
        const int d0 = 4 * (lane + 32 * k);
#pragma unroll
        for (int e = 0; e < 4; e++) {
            if (d0 + e < hd) out[d0 + e] = acc[k][e];
        }
    }
    if (lane == 0) {
        const size_t part = ((size_t)w.n * heads + w.head0 + g) * splits + split;
        partialMaxSum[part * 2] = m;
        partialMaxSum[part * 2 + 1] = l;
    }
}

// Grid (decode rows, heads); threads stride over the head dimension. Reads splits*(hd + 2) floats
// and writes hd elements per block.
template <typename T>
__device__ __forceinline__ void decode_attention_reduce(const float* __restrict__ partialOut,
                                                        const float* __restrict__ partialMaxSum,
                                                        const int* __restrict__ decodeRows, T* __restrict__ out,
                                                        int heads, int hd, int splits) {
    const int n = blockIdx.x, head = blockIdx.y;
    const size_t part0 = ((size_t)n * heads + head) * splits;
    float mMax = -INFINITY;
    for (int s = 0; s < splits; s++) mMax = fmaxf(mMax, partialMaxSum[(part0 + s) * 2]);
    float sum = 0.f;
    for (int s = 0; s < splits; s++) {
        const float ms = partialMaxSum[(part0 + s) * 2];
        if (ms != -INFINITY) sum += partialMaxSum[(part0 + s) * 2 + 1] * exp2f(ms - mMax);
    }
    const float inv = 1.f / sum;
    T* o = out + ((size_t)decodeRows[n] * heads + head) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float v = 0.f;
        for (int s = 0; s < splits; s++) {
            const float ms = partialMaxSum[(part0 + s) * 2];
            if (ms != -INFINITY) v += partialOut[(part0 + s) * hd + d] * exp2f(ms - mMax);
        }
        o[d] = from_float<T>(v * inv);
    }
}

}  // namespace ember

#define DECODE_PARAMS                                                                                      \
    (const T* q, const T* kCache, const T* vCache, const int* blockTables, int tableStride, const int* decodeRows, \
     const int* rowChunk, const int* positions, float* partialOut, float* partialMaxSum, int heads, int kvHeads,  \
     int hd, int blockSize, int window, int splits, float scale)
#define DECODE_ARGS                                                                                        \
    (q, kCache, vCache, blockTables, tableStride, decodeRows, rowChunk, positions, partialOut, partialMaxSum,     \
     heads, kvHeads, hd, blockSize, window, splits, scale)
// Entry points per head dimension (up to 128, up to 256) and heads per block (2, 4): the runner picks the
// smallest HG that holds the group, and HG = 4 with several head batches for wider groups.
EMBER_INSTANTIATE_AS(decode_attention_d128_g2, (decode_attention<T, 128, 2>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_AS(decode_attention_d128_g4, (decode_attention<T, 128, 4>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_AS(decode_attention_d256_g2, (decode_attention<T, 256, 2>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_AS(decode_attention_d256_g4, (decode_attention<T, 256, 4>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_AS(decode_attention_fused_d128_g2, (decode_attention_fused<T, 128, 2>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_AS(decode_attention_fused_d128_g4, (decode_attention_fused<T, 128, 4>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_AS(decode_attention_fused_d256_g2, (decode_attention_fused<T, 256, 2>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_AS(decode_attention_fused_d256_g4, (decode_attention_fused<T, 256, 4>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_AS(decode_attention_keys_d128_g2, (decode_attention_keys<T, 128, 2>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_AS(decode_attention_keys_d128_g4, (decode_attention_keys<T, 128, 4>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_AS(decode_attention_keys_d256_g2, (decode_attention_keys<T, 256, 2>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_AS(decode_attention_keys_d256_g4, (decode_attention_keys<T, 256, 4>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE(decode_attention_reduce,
                  (const float* partialOut, const float* partialMaxSum, const int* decodeRows, T* out, int heads,
                   int hd, int splits),
                  (partialOut, partialMaxSum, decodeRows, out, heads, hd, splits))
