// Every layer of a one-row decode step in one launch: the step as one stream of the weights.
//
// At batch 1 a step is a stream of the model's weights (15 GB for the 8B shape) through four products a layer, with
// the norms, the rotary embedding, attention and SwiGLU between them. Launched kernel by kernel, the memory idles at
// every boundary: a product's last blocks drain, the next kernel waits for them, and only then asks for its weights.
// Here one block a multiprocessor stays resident for the whole step. In each block one producer thread streams the
// block's share of every product's weights, layer after layer, through a ring of shared-memory slots by bulk copies,
// and it never waits for the products' inputs: no kernel writes the weights, so it runs ahead across the grid-wide
// barriers that separate the phases, and the memory keeps streaming while the other warps wait at a barrier or
// attend. Eight consumer warps take each slot as it lands. Per layer (x is the fp32 residual stream):
//   A  q/k/v = rmsnorm(x) · w_qkv                 each block: its share of the rows; its consumers norm x first
//   B  attention of the one query, rotary embedding and the K/V cache write included, split over (KV head, split)
//      blocks (the keys and values of a split's first positions copied ahead by the producer once the layer before has
//      attended); the rotary (cos, sin) pairs computed once a step; partial
//      results (m, l, o) per split, merged into the attention row by the last split of each KV head to finish
//   C  x += attention · w_o                       each block copies the attention row first
//   D  h = swiglu(rmsnorm(x) · w_gate, rmsnorm(x) · w_up)   a block streams matching gate and up rows
//   E  x += h · w_down
// A grid-wide barrier ends each phase (an arrival counter that only grows: each block adds one and waits for the
// counter to reach the next multiple of the grid). Launched cooperatively, so every block is resident.
//
// Bytes: every weight once (sum over layers of (qd + 2 kvd) h + h qd + 2 h ff + ff h, times sizeof(T)), the KV cache
// once (2 kvHeads hd sizeof(T) a position a layer), and from L2 per block and phase the product's input; FLOPs 2 a
// weight. Arithmetic as the kernel-by-kernel path's (rmsnorm's, qkv_rope's, swiglu's, rounded to T where that path
// rounds), summed in other orders: results agree to rounding, not bit for bit.
//
// Code: every phase runs once a layer, so all of the kernel's machine code is fetched again each layer wherever it
// outgrows the instruction cache. Loops that run once or twice a phase are kept rolled (`#pragma unroll 1`), where
// the compiler's unrolled copies bought nothing but length (layer_stream_hd128_bf16: 164 KB of code without that, 140
// KB with it).
#include "common.cuh"
#include "tensor_cores.cuh"

#include <type_traits>

namespace ember {

// One layer's weights and cache, as the runner lays them out in device memory (LayerStream.java writes them).
template <typename T>
struct StreamLayer {
    const T* qkv;            // [qd + 2 kvd][h]
    const float* attnNorm;   // [h]
    const float* qkvBias;    // [qd + 2 kvd] or null
    const float* qNorm;      // [hd] or null
    const float* kNorm;      // [hd] or null
    T* keys;                 // the paged cache of this layer
    T* values;
    const T* o;              // [h][qd]
    const float* ffnNorm;    // [h]
    const T* gateUp;         // [2 ff][h]: gate rows, then up rows
    const T* down;           // [h][ff]
};

// Warps that compute; one more produces. Nine warps put three on one of a multiprocessor's four sub-partitions, whose
// 16K registers cap a thread at 168 (ptxas spills 16 bytes at head dimension 128; the kernel would take about 250).
constexpr int STREAM_CONSUMERS = 8;
constexpr int STREAM_THREADS = 32 * (STREAM_CONSUMERS + 1);
constexpr int STREAM_SLOT = 32768;           // bytes a ring slot
constexpr int STREAM_MAX_SPLITS = 16;        // attention splits of a KV head at most
constexpr int STREAM_MAX_GROUP = 32;         // query heads a KV head at most (EmberKernels.MAX_GROUP)
constexpr int STREAM_SPLIT_POSITIONS = 16;   // positions a split, until the splits run out
constexpr int STREAM_KV_ROWS = 32;           // positions of a split whose keys and values are copied ahead
constexpr int STREAM_MAX_BLOCK_ROWS = 256;   // rows of q/k/v, o or down a block takes at most
constexpr int STREAM_PARTS = 1024;           // a window's parts of its rows' sums (consume)
constexpr float STREAM_LOG2E = 1.4426950408889634f;
constexpr int STREAM_STAMPS = 17;            // trace stamps a layer and block (LayerStream.STAMPS)

// How a product's rows go through the ring: R whole rows a chunk (a power of two, R * rowBytes <= STREAM_SLOT), or,
// for rows longer than a slot, one of P pieces of a row a chunk.
struct Chunking {
    int rows, pieces, pieceVectors;
};

template <typename T>
__device__ __forceinline__ Chunking chunking(int k) {
    const int rowBytes = k * (int)sizeof(T), vectors = k * (int)sizeof(T) / 16;
    Chunking c{1, 1, vectors};
    if (rowBytes <= STREAM_SLOT) {
        while (c.rows * 2 * rowBytes <= STREAM_SLOT && c.rows < 64) c.rows *= 2;
    } else {
        c.pieces = (rowBytes + STREAM_SLOT - 1) / STREAM_SLOT;
        c.pieceVectors = (vectors + c.pieces - 1) / c.pieces;
    }
    return c;
}

// The rows [begin, end) of an n-row product that block b of g takes.
__device__ __forceinline__ int2 block_rows(int n, int b, int g) {
    return make_int2((int)((long long)n * b / g), (int)((long long)n * (b + 1) / g));
}

// The GPU's nanosecond clock.
__device__ __forceinline__ unsigned long long global_time() {
    unsigned long long now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    return now;
}

// Every wait in the launch is for work of the same launch, all of it resident, so none lasts long unless the step
// cannot finish (a defect): past STREAM_WAIT_LIMIT_NS the launch is aborted, and the process reports a failed launch
// instead of hanging.
constexpr unsigned long long STREAM_WAIT_LIMIT_NS = 10'000'000'000ull;

__device__ __forceinline__ void give_up_after(unsigned long long start) {
    if (global_time() - start > STREAM_WAIT_LIMIT_NS) __trap();
}

// barrier_wait, bounded.
__device__ __forceinline__ void stream_wait(uint64_t* barrier, unsigned parity) {
    if (barrier_try_wait(barrier, parity)) return;
    const unsigned long long start = global_time();
    while (!barrier_try_wait(barrier, parity)) give_up_after(start);
}

// A barrier of the consumer warps alone (the producer never joins it).
__device__ __forceinline__ void consumers_sync() {
    asm volatile("bar.sync 1, %0;" :: "n"(32 * STREAM_CONSUMERS) : "memory");
}

// Every block's writes before it are visible to every block after it. One consumer thread a block arrives, on a
// counter that only grows: the launch's first barrier takes a ticket, which says where the launch's barriers start;
// each later one adds without waiting for the sum (a release, then loads until the counter reaches the next multiple of
// the grid), so the last block to arrive lets the others go after one trip to L2 rather than two.
struct GridBarrier {
    unsigned long long* counter;
    unsigned long long target;  // the counter's value when every block has arrived; 0 before the first barrier

    __device__ void arrive_and_wait() {
        consumers_sync();
        if (threadIdx.x == 0) {
            if (target == 0) {
                __threadfence();
                const unsigned long long ticket = atomicAdd(counter, 1ull);
                target = (ticket / gridDim.x + 1) * gridDim.x;
            } else {
                target += gridDim.x;
                asm volatile("red.release.gpu.global.add.u64 [%0], 1;" :: "l"(counter) : "memory");
            }
            const unsigned long long start = global_time();
            unsigned long long seen;
            for (;;) {
                asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(seen) : "l"(counter) : "memory");
                if (seen >= target) break;
                give_up_after(start);
            }
        }
        consumers_sync();
    }
};

// The ring as the producer and the consumers both walk it: the s-th chunk of the step goes to slot s % slots.
struct Ring {
    unsigned char* slots;
    uint64_t* full;
    uint64_t* empty;
    int count;
};

// The producer's walk over the block's chunks of the step, in the order the consumers take them: per layer q/k/v, o,
// gate/up (the chunks of R gate rows each followed by the same rows of up, ff rows further) and down.
template <typename T>
struct ChunkWalk {
    static constexpr int PRODUCTS = 4;
    const StreamLayer<T>* layers;
    int numLayers, hidden, qkvRows, qd, ff;
    int layer = 0, product = -1, row = 0, end = 0, half = 0, piece = 0, n = 0, k = 0;
    bool paired = false;
    const T* w = nullptr;
    Chunking c{1, 1, 0};

    // The next chunk's source and bytes, and where it lies in the step (layer * PRODUCTS + product); false past the
    // last layer.
    __device__ bool next(const T*& from, unsigned& bytes, int& at) {
        while (row >= end) {
            if (layer == numLayers) return false;
            if (++product == PRODUCTS) {
                product = 0;
                if (++layer == numLayers) return false;
            }
            const StreamLayer<T>& L = layers[layer];
            switch (product) {
                case 0: w = L.qkv; n = qkvRows; k = hidden; break;
                case 1: w = L.o; n = hidden; k = qd; break;
                case 2: w = L.gateUp; n = ff; k = hidden; break;
                default: w = L.down; n = hidden; k = ff; break;
            }
            paired = product == 2;
            c = chunking<T>(k);
            const int2 rows = block_rows(n, blockIdx.x, gridDim.x);
            row = rows.x;
            end = rows.y;
            half = piece = 0;
        }
        const int count = min(c.rows, end - row);
        const int v0 = piece * c.pieceVectors, v1 = min(k * (int)sizeof(T) / 16, v0 + c.pieceVectors);
        bytes = c.pieces == 1 ? (unsigned)(count * k * sizeof(T)) : (unsigned)((v1 - v0) * 16);
        from = w + ((size_t)(row + half * n) * k) + (size_t)v0 * (16 / sizeof(T));
        at = layer * PRODUCTS + product;
        if (++piece == c.pieces) {
            piece = 0;
            if (++half == (paired ? 2 : 1)) {
                half = 0;
                row += c.rows;
            }
        }
        return true;
    }
};

// A lane's part of the dot product of weight vectors [from, to) (16-byte words of a chunk in shared memory, each lane's
// 32 apart) with the staged input's, in four sums: two words at once, each word's products in two chains
// (dot16_chains), so that with two consumer warps a scheduler four chains of four dependent FMAs hide one another where
// one word's eight would wait on each other.
template <typename T>
__device__ __forceinline__ float dot_run(const uint4* w, const uint4* x, int from, int to) {
    float2 a0 = make_float2(0.f, 0.f), a1 = make_float2(0.f, 0.f);
    int v = from;
    for (; v + 32 < to; v += 64) {
        a0 = dot16_chains<T>(w[v], x[v], a0);
        a1 = dot16_chains<T>(w[v + 32], x[v + 32], a1);
    }
    if (v < to) a0 = dot16_chains<T>(w[v], x[v], a0);
    return (a0.x + a0.y) + (a1.x + a1.y);
}

// A product's sums on their way, in shared memory (one for the launch: every product's consume uses it in turn).
struct ProductScratch {
    // With fewer rows a chunk than warps, each row's warps share its vectors: each keeps its part of the row's sum over
    // the row's pieces and leaves it here, and the parts are added once a window of rows, not after every chunk (a
    // barrier of the eight warps a chunk would pace the stream by its slowest warp).
    float parts[STREAM_PARTS];
    // STORE and ADD keep each finished row's sum here and write the block's rows together at the end: an add into the
    // residual one row at a time would put a round trip through L2 (long while the memory streams) in every chunk.
    float sums[STREAM_MAX_BLOCK_ROWS];
};

// What a product does with a row's finished sum.
enum class Sink { STORE, ADD, GATE };

// The consumers' side of one product against the staged input xs (k values of T in shared memory): the block's rows,
// chunk by chunk as they land, each row's sum in a fixed order (deterministic). STORE: out[row] = sum (fp32); ADD:
// out[row] += sum (fp32, the residual); GATE (paired): the gate row's sum and the up row's make
// h[row] = swiglu(gate, up), each rounded to T first as the gate/up product's output is.
template <typename T, Sink SINK>
__device__ void consume(const Ring& ring, ProductScratch& scratch, unsigned& s, const T* xs, int n, int k, float* out,
                        T* h) {
    float* parts = scratch.parts;
    float* sums = scratch.sums;
    constexpr int HALVES = SINK == Sink::GATE ? 2 : 1;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const Chunking c = chunking<T>(k);
    const int2 rows = block_rows(n, blockIdx.x, gridDim.x);
    const int vectors = k * (int)sizeof(T) / 16;
    const uint4* xv = reinterpret_cast<const uint4*>(xs);
    const int rowWarps = c.rows >= STREAM_CONSUMERS ? 1 : STREAM_CONSUMERS / c.rows;
    const int part = warp % rowWarps;
    // Rows a window: a multiple of the chunk's rows whose parts fit the array (at least one chunk's: STREAM_PARTS holds
    // HALVES * STREAM_CONSUMERS).
    const int window = max(c.rows, STREAM_PARTS / (HALVES * rowWarps) / c.rows * c.rows);
    for (int first = rows.x; first < rows.y; first += window) {
        const int last = min(rows.y, first + window);
        float running = 0.f;  // this warp's part of its row's sum over the row's pieces
        for (int row = first; row < last; row += c.rows) {
            const int count = min(c.rows, last - row);
            for (int half = 0; half < HALVES; half++) {
                for (int p = 0; p < c.pieces; p++, s++) {
                    const int slot = s % ring.count;
                    stream_wait(&ring.full[slot], (s / ring.count) & 1);
                    const uint4* chunk = reinterpret_cast<const uint4*>(ring.slots + (size_t)slot * STREAM_SLOT);
                    const int v0 = p * c.pieceVectors, v1 = min(vectors, v0 + c.pieceVectors), length = v1 - v0;
                    // A warp takes its part of every (STREAM_CONSUMERS / rowWarps)-th row. More than one row a warp
                    // only where a chunk has more rows than warps, and then a row is one piece, so `running` never
                    // spans two rows (chunking).
                    const int from = length * part / rowWarps, to = length * (part + 1) / rowWarps;
                    for (int r = warp / rowWarps; r < count; r += STREAM_CONSUMERS / rowWarps) {
                        running += warp_sum(dot_run<T>(chunk + (size_t)r * length, xv + v0, from + lane, to));
                        if (p == c.pieces - 1) {
                            if (lane == 0) parts[(half * rowWarps + part) * window + row + r - first] = running;
                            running = 0.f;
                        }
                    }
                    __syncwarp();
                    if (lane == 0) barrier_arrive(&ring.empty[slot]);
                }
            }
        }
        consumers_sync();
        // The window's rows: each row's parts added in the order of its vectors.
        for (int i = threadIdx.x; i < last - first; i += 32 * STREAM_CONSUMERS) {
            float total[HALVES];
            for (int half = 0; half < HALVES; half++) {
                total[half] = 0.f;
                for (int q = 0; q < rowWarps; q++) total[half] += parts[(half * rowWarps + q) * window + i];
            }
            if constexpr (SINK == Sink::GATE) {
                h[first + i] = from_float<T>(swiglu(to_float(from_float<T>(total[0])), to_float(from_float<T>(total[1]))));
            } else {
                sums[first + i - rows.x] = total[0];
            }
        }
        consumers_sync();  // the parts are free for the next window
    }
    if constexpr (SINK != Sink::GATE) {
#pragma unroll 1
        for (int r = threadIdx.x; r < rows.y - rows.x; r += 32 * STREAM_CONSUMERS) {
            out[rows.x + r] = SINK == Sink::ADD ? __ldcg(out + rows.x + r) + sums[r] : sums[r];
        }
    }
}

// xs = rmsnorm(x) * weight, rounded to T: rmsnorm's arithmetic (fp32 sum of squares, rsqrt(mean + eps)). Right after a
// barrier every block waits for this, so its loads go out together and x is read once: the first HELD float4 a thread
// stay in registers (hidden sizes to 4096), the rest are read again.
template <typename T>
__device__ void stage_norm(const float* x, const float* weight, float eps, T* xs, int k) {
    constexpr int THREADS = 32 * STREAM_CONSUMERS, HELD = 4;
    __shared__ float scratch[STREAM_CONSUMERS];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, vectors = k / 4;
    const float4* xv = reinterpret_cast<const float4*>(x);
    const float4* wv = reinterpret_cast<const float4*>(weight);
    float4 v[HELD], w[HELD];
#pragma unroll
    for (int i = 0; i < HELD; i++) {
        const int j = threadIdx.x + i * THREADS;
        if (j < vectors) {
            v[i] = __ldcg(xv + j);
            w[i] = wv[j];
        }
    }
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < HELD; i++) {
        if (threadIdx.x + i * THREADS < vectors) sum += v[i].x * v[i].x + v[i].y * v[i].y + v[i].z * v[i].z + v[i].w * v[i].w;
    }
#pragma unroll 1
    for (int j = threadIdx.x + HELD * THREADS; j < vectors; j += THREADS) {
        const float4 u = __ldcg(xv + j);
        sum += u.x * u.x + u.y * u.y + u.z * u.z + u.w * u.w;
    }
    sum = warp_sum(sum);
    if (lane == 0) scratch[warp] = sum;
    consumers_sync();
    const float inv = rsqrtf(warp_sum(lane < STREAM_CONSUMERS ? scratch[lane] : 0.f) / k + eps);
    auto put = [&](int j, float4 u, float4 g) {
        T* o = xs + 4 * j;
        o[0] = from_float<T>(u.x * inv * g.x);
        o[1] = from_float<T>(u.y * inv * g.y);
        o[2] = from_float<T>(u.z * inv * g.z);
        o[3] = from_float<T>(u.w * inv * g.w);
    };
#pragma unroll
    for (int i = 0; i < HELD; i++) {
        const int j = threadIdx.x + i * THREADS;
        if (j < vectors) put(j, v[i], w[i]);
    }
#pragma unroll 1
    for (int j = threadIdx.x + HELD * THREADS; j < vectors; j += THREADS) put(j, __ldcg(xv + j), wv[j]);
    consumers_sync();
}

// xs = the k values of T at `from` (written by other blocks in this launch: read through L2), eight 16-byte loads a
// thread in flight at once.
template <typename T>
__device__ void stage_copy(const T* from, T* xs, int k) {
    constexpr int THREADS = 32 * STREAM_CONSUMERS, BATCH = 8;
    const uint4* v = reinterpret_cast<const uint4*>(from);
    const int vectors = k * (int)sizeof(T) / 16;
#pragma unroll 1
    for (int j0 = threadIdx.x; j0 < vectors; j0 += BATCH * THREADS) {
        uint4 u[BATCH];
#pragma unroll
        for (int i = 0; i < BATCH; i++) {
            if (j0 + i * THREADS < vectors) u[i] = __ldcg(v + j0 + i * THREADS);
        }
#pragma unroll
        for (int i = 0; i < BATCH; i++) {
            if (j0 + i * THREADS < vectors) reinterpret_cast<uint4*>(xs)[j0 + i * THREADS] = u[i];
        }
    }
    consumers_sync();
}

// The attention work of this block in phase B: KV head and split, and the split's positions [begin, end); none where
// the block has no split. A KV head's splits: one per STREAM_SPLIT_POSITIONS positions, as many as the grid has blocks
// for, STREAM_MAX_SPLITS at most. `held`: the first positions of the split, up to STREAM_KV_ROWS and before the
// position being decoded (not yet in the cache), whose keys and values the producer copies into shared memory before
// phase B, as soon as the layer before has attended.
struct Split {
    int splits, kvHead, split, begin, end, held;
    bool attends;
};

__device__ __forceinline__ Split split_of(int position, int kvHeads) {
    Split w;
    const int context = position + 1;
    const int most = max(1, min(STREAM_MAX_SPLITS, (int)gridDim.x / kvHeads));
    w.splits = max(1, min(most, (context + STREAM_SPLIT_POSITIONS - 1) / STREAM_SPLIT_POSITIONS));
    w.attends = (int)blockIdx.x < kvHeads * w.splits;
    w.kvHead = blockIdx.x / w.splits;
    w.split = blockIdx.x % w.splits;
    const int perSplit = (context + w.splits - 1) / w.splits;
    w.begin = w.split * perSplit;
    w.end = min(context, w.begin + perSplit);
    w.held = w.attends ? max(0, min(min(w.end, position), w.begin + STREAM_KV_ROWS) - w.begin) : 0;
    return w;
}

// The producer's copy of a split's held keys and values into shared memory (keys, then values, each [held][hd] in the
// cache's row layout, swizzle included), a bulk copy per run of positions within a cache block.
template <typename T>
__device__ void produce_kv(const Split& w, const T* keys, const T* values, const int* table, T* kv, uint64_t* full,
                           int kvHeads, int hd, int blockSize) {
    const unsigned rowBytes = hd * sizeof(T);
    barrier_expect_bytes(full, 2 * w.held * rowBytes);
    for (int p = w.begin; p < w.begin + w.held;) {
        const int b = p / blockSize, to = min(w.begin + w.held, (b + 1) * blockSize);
        const KvRow row = kv_row<T>(table[b], p - b * blockSize, blockSize, kvHeads, w.kvHead, hd);
        bulk_copy(kv + (size_t)(p - w.begin) * hd, keys + row.at, (to - p) * rowBytes, full);
        bulk_copy(kv + (size_t)(STREAM_KV_ROWS + p - w.begin) * hd, values + row.at, (to - p) * rowBytes, full);
        p = to;
    }
}

// One head vector of the q/k/v row (EPL = hd / 32 elements a lane: lane i holds elements [i EPL, (i + 1) EPL)), with
// qkv_rope's arithmetic: bias (head_load), then q/k norm and the rotary embedding (HF's rotate-half pairs (i, i + hd/2),
// which lie 16 lanes apart), rounded to T (head_finish). Split in two so that a warp's loads of all its head vectors go
// out together.
template <int EPL>
__device__ __forceinline__ void head_load(const float* qkv, const float* bias, int column, float (&x)[EPL]) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int e = 0; e < EPL; e++) x[e] = __ldcg(qkv + column + lane * EPL + e) + (bias ? bias[column + lane * EPL + e] : 0.f);
}

// rotary: the step's (cos, sin) of each rotary pair, the same for every head and layer (shared memory, set up once).
template <typename T, int EPL>
__device__ __forceinline__ void head_finish(float (&x)[EPL], const float* norm, const float2* rotary, bool rotate,
                                            float eps) {
    const int lane = threadIdx.x & 31, hd = 32 * EPL;
    if (norm) {
        float squares = 0.f;
#pragma unroll
        for (int e = 0; e < EPL; e++) squares += x[e] * x[e];
        const float inv = rsqrtf(warp_sum(squares) / hd + eps);
#pragma unroll
        for (int e = 0; e < EPL; e++) x[e] = x[e] * inv * norm[lane * EPL + e];
    }
    if (rotate) {
        const bool first = lane < 16;
#pragma unroll
        for (int e = 0; e < EPL; e++) {
            const float other = __shfl_xor_sync(0xffffffffu, x[e], 16);
            const float2 cs = rotary[(lane & 15) * EPL + e];
            // first half: x0 c - x1 s; second half: x1 c + x0 s (x is x1 there, other is x0)
            x[e] = first ? x[e] * cs.x - other * cs.y : x[e] * cs.x + other * cs.y;
        }
    }
#pragma unroll
    for (int e = 0; e < EPL; e++) x[e] = to_float(from_float<T>(x[e]));
}

// EPL values of T at p, widened: from global memory through L2 (written by other blocks of this launch), or from
// shared memory (the held keys and values).
template <typename T, int EPL, bool SHARED = false>
__device__ __forceinline__ void load_row_part(const T* p, float (&v)[EPL]) {
    constexpr int BYTES = EPL * sizeof(T);
    using Word = std::conditional_t<BYTES == 16, uint4, std::conditional_t<BYTES == 8, uint2, unsigned>>;
    const Word u = SHARED ? *reinterpret_cast<const Word*>(p) : __ldcg(reinterpret_cast<const Word*>(p));
    const T* t = reinterpret_cast<const T*>(&u);
#pragma unroll
    for (int e = 0; e < EPL; e++) v[e] = to_float(t[e]);
}

// Phase B for block (kvHead, split): the split's positions of the one query against the KV head, for each of its query
// heads. Warp w takes query head w % G of the group and every groups-th position of the split (groups = 8 / G warps a
// head); the warps of a head merge in shared memory, and the block writes the split's (m, l, o) of each head, o
// unnormalised, scores in log2 units; the last of the KV head's splits to finish (a counter a KV head) merges them into
// the attention output, rounded to T, so that phase C's blocks each copy 2 qd bytes. Keys and values come from shared memory
// where the producer copied them ahead (the split's first STREAM_KV_ROWS positions), else from the cache; the
// position being decoded is made here from q/k/v, as qkv_rope makes it, and the split that holds it writes it to the
// cache. For the trace, stamp(4) once the position's q/k/v are loaded, stamp(5) once the held keys and values are there
// and stamp(6) once the split's results are written.
template <typename T, int EPL, typename Stamp>
__device__ void attend(Stamp stamp, const StreamLayer<T>& L, const Split& w, const T* kvHeld, uint64_t* kvFull,
                       uint64_t* kvEmpty, unsigned kvParity, const float* qkv, const float2* rotary, int position, int slot,
                       const int* table, float* partials, float* stats, int* arrivals, T* out, int heads, int kvHeads,
                       int blockSize, float scale, float eps, float* merge) {
    __shared__ float ms[STREAM_MAX_SPLITS * STREAM_MAX_GROUP], ls[STREAM_MAX_SPLITS * STREAM_MAX_GROUP];
    __shared__ float inverse[STREAM_MAX_GROUP];
    __shared__ int last;
    constexpr int THREADS = 32 * STREAM_CONSUMERS;
    if (!w.attends) {
        stamp(4);
        stamp(5);
        stamp(6);
        return;
    }
    const int hd = 32 * EPL, group = heads / kvHeads, qd = heads * hd, kvd = kvHeads * hd;
    const int kvHead = w.kvHead, split = w.split, begin = w.begin, end = w.end;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int groups = max(1, STREAM_CONSUMERS / group), perRound = STREAM_CONSUMERS / groups;
    // Every load that waited for phase A at once: this warp's query head of the first round, the key and the value.
    float k[EPL], v[EPL], q[EPL];
    head_load<EPL>(qkv, L.qkvBias, qd + kvHead * hd, k);
    head_load<EPL>(qkv, L.qkvBias, qd + kvd + kvHead * hd, v);
    head_load<EPL>(qkv, L.qkvBias, (kvHead * group + min(warp % perRound, group - 1)) * hd, q);
    head_finish<T, EPL>(k, L.kNorm, rotary, true, eps);
    head_finish<T, EPL>(v, nullptr, rotary, false, eps);
    stamp(4);
    if (warp == 0 && begin <= position && position < end) {
        const KvRow at = cache_row<T>(slot, blockSize, kvHeads, kvHead, hd);
#pragma unroll
        for (int e = 0; e < EPL; e++) {
            L.keys[kv_element(at, lane * EPL + e)] = from_float<T>(k[e]);
            L.values[kv_element(at, lane * EPL + e)] = from_float<T>(v[e]);
        }
    }
    if (w.held > 0) stream_wait(kvFull, kvParity);
    stamp(5);
#pragma unroll 1
    for (int h0 = 0; h0 < group; h0 += perRound) {
        const int inRound = min(perRound, group - h0);
        const int headInRound = warp % inRound, g = warp / inRound;
        const bool active = warp < inRound * groups;
        const int head = kvHead * group + h0 + headInRound;
        float acc[EPL];
        float m = -INFINITY, l = 0.f;
#pragma unroll
        for (int e = 0; e < EPL; e++) acc[e] = 0.f;
        if (h0 > 0) head_load<EPL>(qkv, L.qkvBias, head * hd, q);  // groups wider than eight heads
        if (active) {
            head_finish<T, EPL>(q, L.qNorm, rotary, true, eps);
#pragma unroll
            for (int e = 0; e < EPL; e++) q[e] *= scale * STREAM_LOG2E;
            constexpr int BATCH = EPL >= 8 ? 2 : 16 / EPL;  // positions whose loads are in flight together
            for (int p0 = begin + g; p0 < end; p0 += BATCH * groups) {
                float kb[BATCH][EPL], vb[BATCH][EPL];
#pragma unroll
                for (int i = 0; i < BATCH; i++) {
                    const int p = p0 + i * groups;
                    if (p < begin + w.held) {
                        const int at = (p - begin) * hd + ((lane * EPL) ^ kv_swizzle<T>(p % blockSize, hd));
                        load_row_part<T, EPL, true>(kvHeld + at, kb[i]);
                        load_row_part<T, EPL, true>(kvHeld + STREAM_KV_ROWS * hd + at, vb[i]);
                    } else if (p < end && p != position) {
                        const int b = p / blockSize;
                        const KvRow row = kv_row<T>(table[b], p - b * blockSize, blockSize, kvHeads, kvHead, hd);
                        load_row_part<T, EPL>(L.keys + kv_element(row, lane * EPL), kb[i]);
                        load_row_part<T, EPL>(L.values + kv_element(row, lane * EPL), vb[i]);
                    } else {
#pragma unroll
                        for (int e = 0; e < EPL; e++) { kb[i][e] = k[e]; vb[i][e] = v[e]; }
                    }
                }
#pragma unroll
                for (int i = 0; i < BATCH; i++) {
                    if (p0 + i * groups < end) {
                        float dot = 0.f;
#pragma unroll
                        for (int e = 0; e < EPL; e++) dot = fmaf(q[e], kb[i][e], dot);
                        const float score = warp_sum(dot);
                        const float mNew = fmaxf(m, score);
                        const float correction = exp2f(m - mNew), weight = exp2f(score - mNew);
                        l = l * correction + weight;
#pragma unroll
                        for (int e = 0; e < EPL; e++) acc[e] = fmaf(acc[e], correction, weight * vb[i][e]);
                        m = mNew;
                    }
                }
            }
        }
        // The groups of each head merge: group g's (m, l, acc) into shared memory, then group 0 of the head adds.
        float* mine = merge + (size_t)warp * (hd + 2);
        if (active) {
#pragma unroll
            for (int e = 0; e < EPL; e++) mine[lane * EPL + e] = acc[e];
            if (lane == 0) {
                mine[hd] = m;
                mine[hd + 1] = l;
            }
        }
        consumers_sync();
        if (active && g == 0) {
            float M = -INFINITY;
#pragma unroll 1
            for (int j = 0; j < groups; j++) M = fmaxf(M, merge[(size_t)(j * inRound + headInRound) * (hd + 2) + hd]);
            float total = 0.f, sum[EPL];
#pragma unroll
            for (int e = 0; e < EPL; e++) sum[e] = 0.f;
#pragma unroll 1
            for (int j = 0; j < groups; j++) {
                const float* theirs = merge + (size_t)(j * inRound + headInRound) * (hd + 2);
                const float wj = theirs[hd] == -INFINITY ? 0.f : exp2f(theirs[hd] - M);
                total += wj * theirs[hd + 1];
#pragma unroll
                for (int e = 0; e < EPL; e++) sum[e] += wj * theirs[lane * EPL + e];
            }
            float* o = partials + ((size_t)split * heads + head) * hd;
#pragma unroll
            for (int e = 0; e < EPL; e++) o[lane * EPL + e] = sum[e];
            if (lane == 0) {
                stats[((size_t)split * heads + head) * 2] = M;
                stats[((size_t)split * heads + head) * 2 + 1] = total;
            }
        }
        consumers_sync();
    }
    stamp(6);
    // The last of the KV head's splits to get here merges them: o = sum_s 2^(m_s - M) o_s / sum_s 2^(m_s - M) l_s. The
    // count is taken with acquire-release after the block's barrier: it publishes the block's partial sums and, in the
    // last block, makes the other splits' visible, with no fence of its own.
    if (threadIdx.x == 0) {
        if (w.held > 0) barrier_arrive(kvEmpty);  // the producer may copy the next layer's
        int arrived;
        asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], 1;" : "=r"(arrived) : "l"(arrivals + kvHead) : "memory");
        last = arrived == w.splits - 1;
        if (last) arrivals[kvHead] = 0;  // ready for the next layer (the phases are a grid barrier apart)
    }
    consumers_sync();
    if (!last) return;
    // A thread's first value of the attention row has its partial sums asked for with the statistics, before the
    // barriers that turn the statistics into weights: one round trip fewer (asking for a second value's as well, as
    // the 8B shape's 512 values on 256 threads would want, spills 172 bytes at head dimension 128).
    const int splits = w.splits, head0 = kvHead * group, values = group * hd;
    auto load_parts = [&](int j, float (&part)[STREAM_MAX_SPLITS]) {
        const int hh = j / hd;
        const float* from = partials + (size_t)(head0 + hh) * hd + (j - hh * hd);
#pragma unroll
        for (int sp = 0; sp < STREAM_MAX_SPLITS; sp++) part[sp] = sp < splits ? __ldcg(from + (size_t)sp * qd) : 0.f;
    };
    float first[STREAM_MAX_SPLITS];
    const int j0 = threadIdx.x;
    if (j0 < values) load_parts(j0, first);
#pragma unroll 1
    for (int i = threadIdx.x; i < group * splits; i += THREADS) {
        const int hh = i / splits, sp = i - hh * splits;
        const float2 ml = __ldcg(reinterpret_cast<const float2*>(stats + ((size_t)sp * heads + head0 + hh) * 2));
        ms[i] = ml.x;
        ls[i] = ml.y;
    }
    consumers_sync();
#pragma unroll 1
    for (int hh = threadIdx.x; hh < group; hh += THREADS) {
        float M = -INFINITY, total = 0.f;
        for (int sp = 0; sp < splits; sp++) M = fmaxf(M, ms[hh * splits + sp]);
        for (int sp = 0; sp < splits; sp++) {
            const float m = ms[hh * splits + sp], wsp = m == -INFINITY ? 0.f : exp2f(m - M);
            ms[hh * splits + sp] = wsp;
            total += wsp * ls[hh * splits + sp];
        }
        inverse[hh] = 1.f / total;
    }
    consumers_sync();
    auto write = [&](int j, const float (&part)[STREAM_MAX_SPLITS]) {
        const int hh = j / hd;
        float sum = 0.f;
#pragma unroll
        for (int sp = 0; sp < STREAM_MAX_SPLITS; sp++) {
            if (sp < splits) sum += ms[hh * splits + sp] * part[sp];
        }
        out[(size_t)head0 * hd + j] = from_float<T>(sum * inverse[hh]);
    };
    if (j0 < values) write(j0, first);
#pragma unroll 1
    for (int j = j0 + THREADS; j < values; j += THREADS) {
        load_parts(j, first);
        write(j, first);
    }
}

template <typename T, int EPL>
__device__ void layer_stream(const StreamLayer<T>* __restrict__ layers, int numLayers, float* x, float* qkv, T* h,
                             float* partials, float* stats, int* arrivals, T* attention,
                             const float* __restrict__ invFreq,
                             const int* __restrict__ positions, const int* __restrict__ slots,
                             const int* __restrict__ blockTables, int tableStride, const int* __restrict__ rowChunk,
                             unsigned long long* counter, int hidden, int heads, int kvHeads, int ff, int blockSize,
                             float eps, float scale, int ringSlots, int stagingBytes, int inFlight,
                             unsigned long long* trace) {
    extern __shared__ __align__(128) unsigned char smem[];
    __shared__ uint64_t full[8], empty[8], kvFull, kvEmpty;
    __shared__ float2 rotary[16 * EPL];  // hd / 2 pairs
    const int hd = 32 * EPL, qd = heads * hd, kvd = kvHeads * hd, qkvRows = qd + 2 * kvd;
    Ring ring{smem, full, empty, ringSlots};
    T* xs = reinterpret_cast<T*>(smem + (size_t)ringSlots * STREAM_SLOT);  // a product's input, or attention's merge
    T* kvHeld = reinterpret_cast<T*>(smem + (size_t)ringSlots * STREAM_SLOT + stagingBytes);
    const int position = positions[0], slot = slots[0];
    const int* table = blockTables + (size_t)rowChunk[0] * tableStride;
    const Split split = split_of(position, kvHeads);
    if (threadIdx.x == 0) {
        barriers_init(full, ringSlots);
        barriers_init(empty, ringSlots, STREAM_CONSUMERS);  // each consumer warp releases a slot it is done with
        barriers_init(&kvFull, 1);
        barriers_init(&kvEmpty, 1);
    }
    __syncthreads();
    unsigned s = 0;
    if (threadIdx.x >> 5 == STREAM_CONSUMERS) {
        // The producer: weights only, so it starts before the kernels before this one are done.
        // Each chunk goes into the next slot once it is free, and once no more than `inFlight` chunks are still on their
        // way: past the few that keep the memory streaming, copies in flight only lengthen the queues that every
        // dependent load of the consumers (the barriers, attention's reads) waits in, while landed ones wait in the ring
        // for the stalls at the barriers.
        if ((threadIdx.x & 31) == 0) {
            ChunkWalk<T> copies{layers, numLayers, hidden, qkvRows, qd, ff};
            const T* from;
            unsigned bytes;
            int at, kvLayer = 0;
            // A split's held keys and values of a layer go into the one held buffer once attention has read the
            // layer's before from it (kvEmpty): as soon as the producer finds that so between two chunks, so that they
            // land long before the layer's attention, and at the latest before the layer's o chunks (`until`: the
            // chunk's place in the step), where it waits for it. The cache they are copied from was written by the
            // steps before this one.
            auto copy_held = [&](int until) {
                for (; split.held > 0 && kvLayer < numLayers; kvLayer++) {
                    if (kvLayer > 0) {
                        const unsigned parity = (kvLayer - 1) & 1;
                        if (until > kvLayer * ChunkWalk<T>::PRODUCTS) {
                            stream_wait(&kvEmpty, parity);
                        } else if (!barrier_try_wait<true>(&kvEmpty, parity)) {  // at once
                            return;
                        }
                    }
                    const StreamLayer<T>& K = layers[kvLayer];
                    produce_kv<T>(split, K.keys, K.values, table, kvHeld, &kvFull, kvHeads, hd, blockSize);
                }
            };
            while (copies.next(from, bytes, at)) {
                copy_held(at);
                const int slot = s % ring.count;
                if (s >= (unsigned)ring.count) stream_wait(&ring.empty[slot], (s / ring.count - 1) & 1);
                if (inFlight > 0 && inFlight < ring.count && s >= (unsigned)inFlight) {
                    // Chunk s - inFlight has landed (its slot is not filled again before chunk s + slots - inFlight).
                    const unsigned landed = s - inFlight;
                    stream_wait(&ring.full[landed % ring.count], (landed / ring.count) & 1);
                }
                barrier_expect_bytes(&ring.full[slot], bytes);
                bulk_copy(ring.slots + (size_t)slot * STREAM_SLOT, from, bytes, &ring.full[slot]);
                s++;
            }
            copy_held(numLayers * ChunkWalk<T>::PRODUCTS);  // a block with no rows past the last q/k/v's
        }
        return;
    }
    wait_for_previous_grid();
    // The position's rotary (cos, sin) pairs, once a step (rotary_pair, as qkv_rope's), with no sincosf in
    // every layer's attention and no load of the frequencies behind the stream.
    for (int i = threadIdx.x; i < hd / 2; i += 32 * STREAM_CONSUMERS) {
        rotary[i] = rotary_pair(invFreq, i, (float)position);
    }
    consumers_sync();
    // With a trace buffer, thread 0 of each block stamps the time at each phase's end and each barrier's, STREAM_STAMPS a
    // layer ([layer][block][stamp]): where a step's time goes inside the launch (EMBER_LAYER_STREAM_TRACE=1).
    auto stamp = [&](int l, int i) {
        if (trace != nullptr && threadIdx.x == 0) trace[((size_t)l * gridDim.x + blockIdx.x) * STREAM_STAMPS + i] = global_time();
    };
    // A phase's end: its stamp (`at`), the grid barrier, and the stamp of the next phase's start (the next layer's
    // first stamp follows the last barrier).
    GridBarrier barrier{counter, 0};
    __shared__ ProductScratch scratch;
    auto end_phase = [&](int l, int at) {
        stamp(l, at);
        barrier.arrive_and_wait();
        if (at + 1 < STREAM_STAMPS) stamp(l, at + 1);
    };
    for (int l = 0; l < numLayers; l++) {
        const StreamLayer<T> L = layers[l];
        stamp(l, 0);
        stage_norm<T>(x, L.attnNorm, eps, xs, hidden);
        stamp(l, 1);
        consume<T, Sink::STORE>(ring, scratch, s, xs, qkvRows, hidden, qkv, nullptr);
        end_phase(l, 2);
        attend<T, EPL>([&](int at) { stamp(l, at); }, L, split, kvHeld, &kvFull, &kvEmpty, l & 1, qkv, rotary, position, slot, table, partials, stats,
                       arrivals, attention, heads, kvHeads, blockSize, scale, eps, reinterpret_cast<float*>(xs));
        end_phase(l, 7);
        stage_copy<T>(attention, xs, qd);
        stamp(l, 9);
        consume<T, Sink::ADD>(ring, scratch, s, xs, hidden, qd, x, nullptr);
        end_phase(l, 10);
        stage_norm<T>(x, L.ffnNorm, eps, xs, hidden);
        stamp(l, 12);
        consume<T, Sink::GATE>(ring, scratch, s, xs, ff, hidden, nullptr, h);
        end_phase(l, 13);
        stage_copy<T>(h, xs, ff);
        stamp(l, 15);
        consume<T, Sink::ADD>(ring, scratch, s, xs, hidden, ff, x, nullptr);
        end_phase(l, 16);
    }
}

}  // namespace ember

// layer_stream_hdN: one-row decode of every layer, head dimension N (EPL = N / 32 elements a lane). Launched
// cooperatively with one block of STREAM_THREADS a multiprocessor and ringSlots * STREAM_SLOT + the staging area of
// dynamic shared memory (LayerStream.java).
#define LAYER_STREAM_PARAMS (const ember::StreamLayer<T>* __restrict__ layers, int numLayers, float* x, float* qkv, T* h, \
    float* partials, float* stats, int* arrivals, T* attention, const float* __restrict__ invFreq,                      \
    const int* __restrict__ positions,                                                                                  \
    const int* __restrict__ slots, const int* __restrict__ blockTables, int tableStride,                                \
    const int* __restrict__ rowChunk, unsigned long long* counter, int hidden, int heads, int kvHeads, int ff,          \
    int blockSize, float eps, float scale, int ringSlots, int stagingBytes, int inFlight, unsigned long long* trace)
#define LAYER_STREAM_ARGS (layers, numLayers, x, qkv, h, partials, stats, arrivals, attention, invFreq, positions,     \
    slots, blockTables,                                                                                                 \
    tableStride, rowChunk, counter, hidden, heads, kvHeads, ff, blockSize, eps, scale, ringSlots, stagingBytes, inFlight, \
    trace)
#define LAYER_STREAM(HD)                                                                                               \
    EMBER_ENTRY_POINT(layer_stream_hd##HD, _bf16, __nv_bfloat16, __launch_bounds__(ember::STREAM_THREADS, 1),         \
                      (layer_stream<T, HD / 32>), LAYER_STREAM_PARAMS, LAYER_STREAM_ARGS, allow_next_grid();)          \
    EMBER_ENTRY_POINT(layer_stream_hd##HD, _f16, __half, __launch_bounds__(ember::STREAM_THREADS, 1),                 \
                      (layer_stream<T, HD / 32>), LAYER_STREAM_PARAMS, LAYER_STREAM_ARGS, allow_next_grid();)
LAYER_STREAM(64)
LAYER_STREAM(128)
LAYER_STREAM(256)
