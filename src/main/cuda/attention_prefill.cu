// Prefill attention, flash-attention style: causal, grouped-query, reading keys and values from the
// paged cache through each sequence's block table (so a chunk attends to its earlier chunks too).
//
// One block computes BQ query rows of one chunk for one query head. It walks the keys in tiles of BK:
// each tile is staged in shared memory, scored against the resident queries, and folded into the
// output with an online softmax (running max m and sum l per row), so no score matrix larger than
// BQ x BK ever exists. 128 threads: four per query row; thread `sub` of a row scores keys sub, sub+4, ...
// and owns output dimensions sub, sub+4, ... (interleaved, so the four threads hit different banks).
//
// Cost for a chunk of n new tokens after c cached ones, per head: about 4*n*(c + n/2)*hd FLOPs; keys
// and values are read once per query tile: 2*(n/BQ)*(c + n)*hd*sizeof(T) bytes, plus q and out once.
#include "common.cuh"

namespace ember {

constexpr float LOG2E = 1.4426950408889634f;

// Shared memory, in floats: Q [BQ][hd+1], K and V [BK][hd+1], P [BQ][BK+1]. The +1 pads rows so that
// lanes reading one column of different rows fall in different banks. EmberKernels.prefillAttention
// computes the same size.
template <typename T, int MAXHD, int BQ, int BK>
__device__ __forceinline__ void prefill_attention(
        const T* __restrict__ q, const T* __restrict__ kCache, const T* __restrict__ vCache,
        const int* __restrict__ blockTables, int tableStride, const int* __restrict__ prefillChunks,
        const int* __restrict__ chunkRowStart, const int* __restrict__ chunkLength,
        const int* __restrict__ chunkStartPosition, T* __restrict__ out, int heads, int kvHeads, int hd,
        int blockSize, int window, float scale) {
    static_assert(BQ * 4 == 128, "four threads per query row, 128 threads");
    extern __shared__ float smem[];
    const int stride = hd + 1;
    float* Qs = smem;
    float* Ks = Qs + BQ * stride;
    float* Vs = Ks + BK * stride;
    float* P = Vs + BK * stride;

    const int chunk = prefillChunks[blockIdx.z];
    const int length = chunkLength[chunk];
    // Grid (heads, query tiles, chunks), tiles in reverse: blocks start in the order of their index, x fastest, so
    // every head's last tile (the one with the most keys) starts first, and the short ones fill the tail.
    const int tile = (gridDim.y - 1 - blockIdx.y) * BQ;
    if (tile >= length) return;  // uniform: the grid is sized for the longest chunk
    const int head = blockIdx.x, kvHead = head / (heads / kvHeads);
    const int qd = heads * hd;
    const int firstRow = chunkRowStart[chunk] + tile;
    const int rows = min(BQ, length - tile);
    const int firstPos = chunkStartPosition[chunk] + tile, lastPos = firstPos + rows - 1;
    const int* table = blockTables + (size_t)chunk * tableStride;
    const int tid = threadIdx.x, r = tid >> 2, sub = tid & 3;
    const bool rowValid = r < rows;
    const int myPos = firstPos + r;
    const float qScale = scale * LOG2E;  // scores in log2 units, so the softmax uses exp2f

    for (int i = tid; i < BQ * hd; i += blockDim.x) {
        const int rr = i / hd, d = i % hd;
        Qs[rr * stride + d] = rr < rows ? to_float(q[(size_t)(firstRow + rr) * qd + head * hd + d]) * qScale : 0.f;
    }

    float m = -INFINITY, l = 0.f;
    float acc[MAXHD / 4];
#pragma unroll
    for (int i = 0; i < MAXHD / 4; i++) acc[i] = 0.f;

    const int keyBegin = window > 0 ? max(0, firstPos - window + 1) : 0;
    for (int k0 = keyBegin; k0 <= lastPos; k0 += BK) {
        __syncthreads();  // the previous tile is consumed (and, the first time, Q is stored)
        for (int i = tid; i < BK * hd; i += blockDim.x) {
            const int j = i / hd, d = i % hd, kp = k0 + j;
            float kv = 0.f, vv = 0.f;
            if (kp <= lastPos) {  // later table entries may not exist yet
                const size_t at = paged_offset<T>(table, kp, blockSize, kvHeads, kvHead, hd, d);
                kv = to_float(kCache[at]);
                vv = to_float(vCache[at]);
            }
            Ks[j * stride + d] = kv;
            Vs[j * stride + d] = vv;
        }
        __syncthreads();

        float s[BK / 4];
#pragma unroll
        for (int jj = 0; jj < BK / 4; jj++) s[jj] = 0.f;
        for (int d = 0; d < hd; d++) {
            const float qv = Qs[r * stride + d];
#pragma unroll
            for (int jj = 0; jj < BK / 4; jj++) s[jj] += qv * Ks[(sub + 4 * jj) * stride + d];
        }
        float tileMax = -INFINITY;
#pragma unroll
        for (int jj = 0; jj < BK / 4; jj++) {
            const int kp = k0 + sub + 4 * jj;
            const bool visible = rowValid && kp <= myPos && (window <= 0 || kp > myPos - window);
            s[jj] = visible ? s[jj] : -INFINITY;
            tileMax = fmaxf(tileMax, s[jj]);
        }
        tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 1));
        tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 2));
        const float mNew = fmaxf(m, tileMax);
        // A row that has seen no visible key yet keeps m = -inf and contributes nothing.
        const float alpha = mNew == -INFINITY ? 1.f : exp2f(m - mNew);
        float rowSum = 0.f;
#pragma unroll
        for (int jj = 0; jj < BK / 4; jj++) {
            const float p = s[jj] == -INFINITY ? 0.f : exp2f(s[jj] - mNew);
            P[r * (BK + 1) + sub + 4 * jj] = p;
            rowSum += p;
        }
        rowSum += __shfl_xor_sync(0xffffffffu, rowSum, 1);
        rowSum += __shfl_xor_sync(0xffffffffu, rowSum, 2);
        l = l * alpha + rowSum;
        m = mNew;
        __syncwarp();  // a row's four threads, all in one warp, now read each other's P
#pragma unroll
        for (int i = 0; i < MAXHD / 4; i++) acc[i] *= alpha;
        for (int j = 0; j < BK; j++) {
            const float p = P[r * (BK + 1) + j];
#pragma unroll
            for (int i = 0; i < MAXHD / 4; i++) {
                const int d = sub + 4 * i;
                if (d < hd) acc[i] += p * Vs[j * stride + d];
            }
        }
    }
    if (!rowValid) return;
    const float inv = l > 0.f ? 1.f / l : 0.f;
    T* o = out + (size_t)(firstRow + r) * qd + head * hd;
#pragma unroll
    for (int i = 0; i < MAXHD / 4; i++) {
        const int d = sub + 4 * i;
        if (d < hd) o[d] = from_float<T>(acc[i] * inv);
    }
}

}  // namespace ember

#define PREFILL_PARAMS                                                                                     \
    (const T* q, const T* kCache, const T* vCache, const int* blockTables, int tableStride,               \
     const int* prefillChunks, const int* chunkRowStart, const int* chunkLength, const int* chunkStartPosition, \
     T* out, int heads, int kvHeads, int hd, int blockSize, int window, float scale)
#define PREFILL_ARGS                                                                                       \
    (q, kCache, vCache, blockTables, tableStride, prefillChunks, chunkRowStart, chunkLength, chunkStartPosition, \
     out, heads, kvHeads, hd, blockSize, window, scale)
// Head dimensions up to 128 take 32-key tiles; up to 256, 16-key tiles, to stay within shared memory.
EMBER_INSTANTIATE_AS(prefill_attention_d128, (prefill_attention<T, 128, 32, 32>), PREFILL_PARAMS, PREFILL_ARGS)
EMBER_INSTANTIATE_AS(prefill_attention_d256, (prefill_attention<T, 256, 32, 16>), PREFILL_PARAMS, PREFILL_ARGS)
