// Decode attention: one new query token per sequence against its whole paged KV cache, with the
// context split across thread blocks (split-K) so that a few long sequences still fill the GPU.
//
// decode_attention: block (n, kvHead, split) handles decode row decodeRows[n], the G = heads/kvHeads
// query heads that share kvHead (one warp each, so every key and value is read from memory once for
// the whole group), and the split's contiguous share of the context. Keys and values are staged in
// shared memory TK = 32 tokens at a time, one token per lane when scoring: lane j computes the whole dot
// product of its warp's query with key j (16-byte shared loads, no shuffles), the warp takes one max per
// tile, and each lane then accumulates the output dimensions lane, lane+32, ... over the tile's tokens.
// The running max is warp-wide; each lane keeps its own share of the running sum, summed at the end.
// The block writes an unnormalised partial result per head: o (hd floats), m and l.
// decode_attention_reduce then merges the splits: M = max m_s, L = sum l_s 2^(m_s - M),
// out = sum o_s 2^(m_s - M) / L.
//
// Cost per decode row and KV head: 2*ctx*hd*sizeof(T) bytes of cache read once, 4*G*ctx*hd FLOPs,
// plus splits*G*(hd + 2)*4 bytes of partials written and read back (each counted twice), and the G query
// heads' q read and output written (2*G*hd*sizeof(T)).
#include "common.cuh"

namespace ember {

constexpr float DECODE_LOG2E = 1.4426950408889634f;
constexpr int TK = 32;  // tokens staged per step: one per lane

// Copies the keys and values of tokens [t0, min(t0 + TK, end)) of one KV head into shared memory as fp32,
// keys with rows of kStride floats and values with rows of hd (tokens past `end` as zeros). Rows of
// hd*sizeof(T) bytes, a multiple of 16 for most head sizes (the cache is 256-byte aligned), move as
// 16-byte vectors: one load per 8 bf16 values.
template <typename T>
__device__ __forceinline__ void stage_tile(const T* __restrict__ kCache, const T* __restrict__ vCache,
                                           const int* __restrict__ table, float* Ks, int kStride, float* Vs, int t0,
                                           int end, int kvHeads, int kvHead, int hd, int blockSize) {
    constexpr int PER_VECTOR = 16 / sizeof(T);
    if ((hd * sizeof(T)) % 16 == 0) {
        const int vectorsPerRow = hd / PER_VECTOR;
        for (int i = threadIdx.x; i < TK * vectorsPerRow; i += blockDim.x) {
            const int j = i / vectorsPerRow, d = (i % vectorsPerRow) * PER_VECTOR, kp = t0 + j;
            T k[PER_VECTOR], v[PER_VECTOR];
            if (kp < end) {
                const size_t at = paged_offset(table, kp, blockSize, kvHeads, kvHead, hd, d);
                *reinterpret_cast<uint4*>(k) = *reinterpret_cast<const uint4*>(kCache + at);
                *reinterpret_cast<uint4*>(v) = *reinterpret_cast<const uint4*>(vCache + at);
            } else {
                *reinterpret_cast<uint4*>(k) = make_uint4(0, 0, 0, 0);
                *reinterpret_cast<uint4*>(v) = make_uint4(0, 0, 0, 0);
            }
#pragma unroll
            for (int e = 0; e < PER_VECTOR; e++) {
                Ks[j * kStride + d + e] = to_float(k[e]);
                Vs[j * hd + d + e] = to_float(v[e]);
            }
        }
        return;
    }
    for (int i = threadIdx.x; i < TK * hd; i += blockDim.x) {
        const int j = i / hd, d = i % hd, kp = t0 + j;
        float kv = 0.f, vv = 0.f;
        if (kp < end) {
            const size_t at = paged_offset(table, kp, blockSize, kvHeads, kvHead, hd, d);
            kv = to_float(kCache[at]);
            vv = to_float(vCache[at]);
        }
        Ks[j * kStride + d] = kv;
        Vs[j * hd + d] = vv;
    }
}

// Shared memory, in floats: K [TK][hd + 4] (the padding puts the rows that eight lanes read at once in
// different banks), V [TK][hd], the scaled queries [G][hd] and the tile's probabilities [G][TK].
// EmberKernels.decodeAttention computes the same size.
template <typename T, int MAXHD>
__device__ __forceinline__ void decode_attention(
        const T* __restrict__ q, const T* __restrict__ kCache, const T* __restrict__ vCache,
        const int* __restrict__ blockTables, int tableStride, const int* __restrict__ decodeRows,
        const int* __restrict__ rowChunk, const int* __restrict__ positions, float* __restrict__ partialOut,
        float* __restrict__ partialMaxSum, int heads, int kvHeads, int hd, int blockSize, int window,
        int splits, float scale) {
    constexpr int PER_LANE = MAXHD / 32;
    extern __shared__ __align__(16) float smem[];
    const int group = heads / kvHeads;
    const int kStride = hd + 4;
    float* Ks = smem;
    float* Vs = Ks + TK * kStride;
    float* qs = Vs + TK * hd;
    float* ps = qs + group * hd;

    const int n = blockIdx.x, kvHead = blockIdx.y, split = blockIdx.z;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int head = kvHead * group + warp;
    const int row = decodeRows[n];
    const int pos = positions[row];
    const int* table = blockTables + (size_t)rowChunk[row] * tableStride;
    const int first = window > 0 ? max(0, pos - window + 1) : 0;
    const int perSplit = (pos - first + 1 + splits - 1) / splits;
    const int begin = first + split * perSplit;
    const int end = min(pos + 1, begin + perSplit);

    float* myQ = qs + warp * hd;
    float* myP = ps + warp * TK;
    const T* qh = q + (size_t)row * heads * hd + head * hd;
    for (int d = lane; d < hd; d += 32) myQ[d] = to_float(qh[d]) * scale * DECODE_LOG2E;
    float acc[PER_LANE];
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) acc[i] = 0.f;
    float m = -INFINITY, l = 0.f;

    for (int t0 = begin; t0 < end; t0 += TK) {
        __syncthreads();  // the previous tile is consumed (and, the first time, the queries are stored)
        stage_tile(kCache, vCache, table, Ks, kStride, Vs, t0, end, kvHeads, kvHead, hd, blockSize);
        __syncthreads();
        float s = -INFINITY;
        if (t0 + lane < end) {
            const float* key = Ks + lane * kStride;
            float dot = 0.f;
            if ((hd & 3) == 0) {
                for (int d = 0; d < hd; d += 4) {
                    const float4 k4 = *reinterpret_cast<const float4*>(key + d);
                    const float4 q4 = *reinterpret_cast<const float4*>(myQ + d);
                    dot += k4.x * q4.x + k4.y * q4.y + k4.z * q4.z + k4.w * q4.w;
                }
            } else {
                for (int d = 0; d < hd; d++) dot += key[d] * myQ[d];
            }
            s = dot;
        }
        const float mNew = fmaxf(m, warp_max(s));  // finite: lane 0's token is always in range
        const float alpha = exp2f(m - mNew);       // exp2f(-inf) = 0 on the first tile
        const float p = exp2f(s - mNew);
        l = l * alpha + p;
        m = mNew;
        myP[lane] = p;
        __syncwarp();
        const int tokens = min(TK, end - t0);
#pragma unroll
        for (int i = 0; i < PER_LANE; i++) acc[i] *= alpha;
        for (int j = 0; j < tokens; j++) {
            const float pj = myP[j];
#pragma unroll
            for (int i = 0; i < PER_LANE; i++) {
                const int d = lane + 32 * i;
                if (d < hd) acc[i] += pj * Vs[j * hd + d];
            }
        }
    }
    l = warp_sum(l);
    // An empty split (short context) writes m = -inf, l = 0, which the reduction weighs as zero.
    const size_t part = ((size_t)n * heads + head) * splits + split;
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) {
        const int d = lane + 32 * i;
        if (d < hd) partialOut[part * hd + d] = acc[i];
    }
    if (lane == 0) {
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
EMBER_INSTANTIATE_AS(decode_attention_d128, (decode_attention<T, 128>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE_AS(decode_attention_d256, (decode_attention<T, 256>), DECODE_PARAMS, DECODE_ARGS)
EMBER_INSTANTIATE(decode_attention_reduce,
                  (const float* partialOut, const float* partialMaxSum, const int* decodeRows, T* out, int heads,
                   int hd, int splits),
                  (partialOut, partialMaxSum, decodeRows, out, heads, hd, splits))
