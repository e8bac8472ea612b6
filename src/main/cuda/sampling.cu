// Next-token choice on the GPU, from fp32 logits [rows][vocab]; one block of 1024 threads per row.
#include "common.cuh"

namespace ember {

// Maps a float to an unsigned key with the same order (for every non-NaN value), so that thresholds
// can be found by a bitwise binary search.
__device__ __forceinline__ uint32_t order_key(float x) {
    const uint32_t u = __float_as_uint(x);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ int warp_max_int(int v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : -INFINITY;
    return warp_max(v);
}

// Prefix sums of one float per thread: *start = the sum over lower threads, *end = *start + own share.
__device__ __forceinline__ void block_prefix_sum(float v, float* scratch, float* start, float* end) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    float inclusive = v;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const float up = __shfl_up_sync(0xffffffffu, inclusive, o);
        if (lane >= o) inclusive += up;
    }
    float exclusive = __shfl_up_sync(0xffffffffu, inclusive, 1);
    if (lane == 0) exclusive = 0.f;
    __syncthreads();
    if (lane == 31) scratch[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {
        float w = lane < warps ? scratch[lane] : 0.f;
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const float up = __shfl_up_sync(0xffffffffu, w, o);
            if (lane >= o) w += up;
        }
        if (lane < warps) scratch[lane] = w;  // inclusive prefix over warps
    }
    __syncthreads();
    const float offset = warp > 0 ? scratch[warp - 1] : 0.f;
    *start = offset + exclusive;
    *end = offset + inclusive;
}

}  // namespace ember

using namespace ember;

namespace ember {

__device__ __forceinline__ void keep_larger(float v, int i, float& best, int& index) {
    if (v > best || (v == best && i < index)) { best = v; index = i; }
}

// Calls visit(value, index) for each element of x[0, vocab) that this thread owns. One block reads a whole row
// (vocab*4 bytes), so what bounds a pass is how many loads each thread has in flight: 16-byte loads, four at a time,
// between a head and a tail of single floats where the row does not start or end on 16 bytes. A thread owns the same
// elements on every call, which token_logprobs relies on.
template <typename Visit>
__device__ __forceinline__ void for_each_own(const float* __restrict__ x, int vocab, Visit visit) {
    const int head = min(vocab, (int)((16 - ((uintptr_t)x & 15)) & 15) / 4);
    if ((int)threadIdx.x < head) visit(x[threadIdx.x], (int)threadIdx.x);
    const float4* quads = reinterpret_cast<const float4*>(x + head);
    const int count = (vocab - head) / 4;
    constexpr int IN_FLIGHT = 4;
    int q = threadIdx.x;
    for (; q + (IN_FLIGHT - 1) * (int)blockDim.x < count; q += IN_FLIGHT * blockDim.x) {
        float4 f[IN_FLIGHT];
#pragma unroll
        for (int u = 0; u < IN_FLIGHT; u++) f[u] = __ldg(quads + q + u * blockDim.x);
#pragma unroll
        for (int u = 0; u < IN_FLIGHT; u++) {
            const int i = head + 4 * (q + u * blockDim.x);
            visit(f[u].x, i);
            visit(f[u].y, i + 1);
            visit(f[u].z, i + 2);
            visit(f[u].w, i + 3);
        }
    }
    for (; q < count; q += blockDim.x) {
        const float4 f = __ldg(quads + q);
        const int i = head + 4 * q;
        visit(f.x, i);
        visit(f.y, i + 1);
        visit(f.z, i + 2);
        visit(f.w, i + 3);
    }
    for (int i = head + 4 * count + threadIdx.x; i < vocab; i += blockDim.x) visit(x[i], i);
}

// The block's largest (best, index) by keep_larger, returned to every thread; index INT_MAX when no thread has one
// (nothing left to pick, or only NaN). `values` and `indices` hold one entry per warp (32 suffice); the leading barrier lets consecutive calls
// reuse them.
__device__ __forceinline__ void block_argmax(float& best, int& index, float* values, int* indices) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        keep_larger(__shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, index, o), best, index);
    }
    __syncthreads();
    if (lane == 0) { values[warp] = best; indices[warp] = index; }
    __syncthreads();
    best = lane < warps ? values[lane] : -INFINITY;
    index = lane < warps ? indices[lane] : INT_MAX;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        keep_larger(__shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, index, o), best, index);
    }
}

// Greedy choice: the index of the largest of x[0, vocab), the lowest index on ties (NaN never wins),
// written by thread 0 to *out. One pass over the row (vocab*4 bytes).
__device__ void argmax_row(const float* __restrict__ x, int vocab, int* __restrict__ out) {
    __shared__ float bestValues[32];
    __shared__ int bestIndices[32];
    float best = -INFINITY;
    int index = INT_MAX;
    for_each_own(x, vocab, [&](float v, int i) { keep_larger(v, i, best, index); });
    block_argmax(best, index, bestValues, bestIndices);
    // A row of only NaN has no winner; report index 0 rather than an invalid token.
    if (threadIdx.x == 0) *out = index == INT_MAX ? 0 : index;
}

}  // namespace ember

// Greedy choice for every row: out[r] = argmax of row r. Reads rows*vocab*4 bytes.
extern "C" __global__ void argmax_f32(const float* __restrict__ logits, int* __restrict__ out, int vocab) {
    ember::allow_next_grid();
    ember::wait_for_previous_grid();
    argmax_row(logits + (size_t)blockIdx.x * vocab, vocab, out + blockIdx.x);
}

// Temperature, top-k and top-p (nucleus) sampling, applied in that order as HF transformers does:
//   w_i     = exp((x_i - max x) / temperature[r])
//   top-k   keeps logits >= the k-th largest (ties at the boundary kept; topK <= 0 keeps all)
//   top-p   keeps the smallest set of the largest kept w whose mass reaches topP[r] * (kept mass)
//   token   = the first index (in vocabulary order) whose running kept mass exceeds uniform[r] * total,
// which draws exactly from the renormalised kept distribution given uniform[r] in [0, 1).
// With neither top-k nor top-p (temperature alone, the common case: sample_row_temperature) one pass reads the row
// (vocab*4 bytes, one exp per element) and a second reads the 2 KB piece where the mass crosses the draw. With top-k
// or top-p both thresholds are found by a 32-step bitwise search over order_key, each step one pass over the row, so
// no sort is needed: up to 66 passes of vocab*4 bytes (mostly from L2) and 2 exps per element per weight pass.
// Launch with 1024 threads.
namespace ember {

// Each thread's contiguous segment of the row, so that a prefix sum over threads orders the mass by token index.
struct Segment {
    int begin, end;
};

__device__ __forceinline__ Segment own_segment(int vocab) {
    const int length = (vocab + blockDim.x - 1) / blockDim.x;
    const int begin = min(vocab, (int)threadIdx.x * length);
    return {begin, min(vocab, begin + length)};
}

// Temperature alone, in pieces of PIECE consecutive tokens: in a piece lane L of a warp owns the four tokens at
// 128u + 4L for u < 4 (16-byte loads where the row starts on 16 bytes; a warp's loads cover whole lines, so the pass
// streams at the memory's rate, where per-thread segments of the row would leave each load a line of its own). Warp w
// takes pieces w, w + 32, ...; a piece's max m and mass s = sum exp((x - m) / temperature) go to shared memory. The
// pieces' masses, rescaled to the row's max, are summed in token order across the block; the piece where that sum
// passes uniform * total is read again by one warp, which scans it in token order. Pieces beyond MAX_PIECES (rows of
// more than 512K tokens) do not fit shared memory: such rows take the top-k path's passes instead.
constexpr int PIECE = 512, MAX_PIECES = 1024;

// The four tokens lane `lane` owns in slice u of piece `piece`: -inf past the row's end.
__device__ __forceinline__ float4 piece_slice(const float* __restrict__ x, int vocab, bool quads, int piece, int u, int lane) {
    const int i = piece * PIECE + u * 128 + lane * 4;
    if (quads && i + 3 < vocab) return __ldg(reinterpret_cast<const float4*>(x + i));
    return make_float4(i < vocab ? x[i] : -INFINITY, i + 1 < vocab ? x[i + 1] : -INFINITY,
                       i + 2 < vocab ? x[i + 2] : -INFINITY, i + 3 < vocab ? x[i + 3] : -INFINITY);
}

__device__ __forceinline__ float weight(float v, float max, float invTemperature) {
    return v > -INFINITY ? expf((v - max) * invTemperature) : 0.f;  // a masked (-inf) token weighs nothing
}

__device__ void sample_row_temperature(const float* __restrict__ x, int vocab, float invTemperature, float u,
                                       int* __restrict__ out) {
    __shared__ float pieceMax[MAX_PIECES], pieceMass[MAX_PIECES], scratch[32];
    __shared__ int owner, lastOwner;
    __shared__ float before;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const int pieces = (vocab + PIECE - 1) / PIECE;
    const bool quads = (vocab & 3) == 0 && ((uintptr_t)x & 15) == 0;
    for (int piece = warp; piece < pieces; piece += warps) {
        float4 f[4];
#pragma unroll
        for (int s = 0; s < 4; s++) f[s] = piece_slice(x, vocab, quads, piece, s, lane);
        float m = -INFINITY;
#pragma unroll
        for (int s = 0; s < 4; s++) m = fmaxf(m, fmaxf(fmaxf(f[s].x, f[s].y), fmaxf(f[s].z, f[s].w)));
        m = warp_max(m);
        float mass = 0.f;
#pragma unroll
        for (int s = 0; s < 4; s++) {
            mass += weight(f[s].x, m, invTemperature) + weight(f[s].y, m, invTemperature)
                  + weight(f[s].z, m, invTemperature) + weight(f[s].w, m, invTemperature);
        }
        mass = warp_sum(mass);
        if (lane == 0) {
            pieceMax[piece] = m;
            pieceMass[piece] = mass;
        }
    }
    __syncthreads();
    // One piece a thread (pieces <= MAX_PIECES = blockDim.x): its mass at the row's max, summed in token order.
    const int piece = threadIdx.x;
    const float localMax = piece < pieces ? pieceMax[piece] : -INFINITY;
    const float maxLogit = block_max(localMax, scratch);
    const float w = localMax > -INFINITY ? pieceMass[piece] * expf((localMax - maxLogit) * invTemperature) : 0.f;
    float start, end;
    block_prefix_sum(w, scratch, &start, &end);
    __shared__ float total;
    if (threadIdx.x == blockDim.x - 1) total = end;
    if (threadIdx.x == 0) { owner = INT_MAX; lastOwner = -1; }
    __syncthreads();
    float target = u * total;
    // The first piece whose running mass passes the target holds the draw. Should rounding leave the target at or
    // past every piece's end, the last token with any weight is drawn.
    if (w > 0.f && end > target) atomicMin(&owner, piece);
    if (w > 0.f) atomicMax(&lastOwner, piece);
    __syncthreads();
    if (piece == owner) before = start;
    __syncthreads();
    if (warp != 0) return;
    const bool found = owner != INT_MAX;
    const int chosenPiece = found ? owner : lastOwner;
    if (chosenPiece < 0) {  // nothing has weight (every token masked, or NaN): the last token, as the passes would
        if (lane == 0) *out = vocab - 1;
        return;
    }
    if (!found) target = INFINITY;
    float running = found ? before : 0.f;
    int lastWeighed = -1;
    for (int s = 0; s < 4; s++) {
        const float4 f = piece_slice(x, vocab, quads, chosenPiece, s, lane);
        const float e[4] = {weight(f.x, maxLogit, invTemperature), weight(f.y, maxLogit, invTemperature),
                            weight(f.z, maxLogit, invTemperature), weight(f.w, maxLogit, invTemperature)};
        const float own = e[0] + e[1] + e[2] + e[3];
        float inclusive = own;
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const float up = __shfl_up_sync(0xffffffffu, inclusive, o);
            if (lane >= o) inclusive += up;
        }
        const int first = chosenPiece * PIECE + s * 128 + lane * 4;
        int ownLast = -1;
#pragma unroll
        for (int c = 0; c < 4; c++) {
            if (e[c] > 0.f) ownLast = first + c;
        }
        lastWeighed = max(lastWeighed, warp_max_int(ownLast));
        const unsigned crossing = __ballot_sync(0xffffffffu, own > 0.f && running + inclusive > target);
        if (crossing != 0) {
            if (lane == __ffs(crossing) - 1) {
                float at = running + inclusive - own;
                int chosen = ownLast;
                for (int c = 0; c < 4; c++) {
                    at += e[c];
                    if (e[c] > 0.f && at > target) { chosen = first + c; break; }
                }
                *out = chosen;
            }
            return;
        }
        running += __shfl_sync(0xffffffffu, inclusive, 31);
    }
    if (lane == 0) *out = lastWeighed;
}

__device__ void sample_row(const float* __restrict__ x, int vocab, float temperature, int k, float p, float u,
                           int* __restrict__ out) {
    const float invTemperature = 1.f / temperature;
    const bool truncated = (k > 0 && k < vocab) || p < 1.f;
    if (!truncated && (vocab + PIECE - 1) / PIECE <= min(MAX_PIECES, (int)blockDim.x)) {
        sample_row_temperature(x, vocab, invTemperature, u, out);
        return;
    }
    __shared__ float scratch[32];
    const Segment seg = own_segment(vocab);
    float localMax = -INFINITY;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) localMax = fmaxf(localMax, x[i]);
    const float maxLogit = block_max(localMax, scratch);

    uint32_t kThreshold = 0;  // every key is >= 0: keep all
    if (k > 0 && k < vocab) {
        for (int bit = 31; bit >= 0; bit--) {
            const uint32_t candidate = kThreshold | (1u << bit);
            float count = 0.f;  // counts stay below 2^24, exact in fp32
            for (int i = threadIdx.x; i < vocab; i += blockDim.x) count += order_key(x[i]) >= candidate ? 1.f : 0.f;
            if (block_sum(count, scratch) >= (float)k) kThreshold = candidate;
        }
    }

    uint32_t threshold = kThreshold;
    if (p < 1.f) {
        float kept = 0.f;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x)
            if (order_key(x[i]) >= kThreshold) kept += expf((x[i] - maxLogit) * invTemperature);
        const float target = p * block_sum(kept, scratch);
        uint32_t pThreshold = 0;
        for (int bit = 31; bit >= 0; bit--) {
            const uint32_t candidate = pThreshold | (1u << bit);
            const uint32_t effective = max(candidate, kThreshold);
            float mass = 0.f;
            for (int i = threadIdx.x; i < vocab; i += blockDim.x)
                if (order_key(x[i]) >= effective) mass += expf((x[i] - maxLogit) * invTemperature);
            if (block_sum(mass, scratch) >= target) pThreshold = candidate;
        }
        threshold = max(pThreshold, kThreshold);
    }

    // Each thread owns a contiguous segment of the vocabulary (own_segment), so a prefix sum over threads orders the
    // kept mass by token index.
    float local = 0.f;
    int lastKept = -1;
    for (int i = seg.begin; i < seg.end; i++) {
        if (order_key(x[i]) >= threshold) {
            local += expf((x[i] - maxLogit) * invTemperature);
            lastKept = i;
        }
    }
    float start, end;
    block_prefix_sum(local, scratch, &start, &end);
    __shared__ float total;
    __shared__ int owner, lastOwner;
    if (threadIdx.x == blockDim.x - 1) total = end;
    if (threadIdx.x == 0) { owner = INT_MAX; lastOwner = -1; }
    __syncthreads();
    const float target = u * total;
    // The first thread whose running mass passes the target picks within its segment. Should rounding
    // leave the target at or past every thread's end, the last thread with a kept token picks its last one.
    if (lastKept >= 0 && end > target) atomicMin(&owner, (int)threadIdx.x);
    if (lastKept >= 0) atomicMax(&lastOwner, (int)threadIdx.x);
    __syncthreads();
    const bool found = owner != INT_MAX;
    if ((int)threadIdx.x == (found ? owner : lastOwner)) {
        float running = start;
        int chosen = lastKept;
        for (int i = seg.begin; i < seg.end && found; i++) {
            if (order_key(x[i]) >= threshold) {
                running += expf((x[i] - maxLogit) * invTemperature);
                if (running > target) { chosen = i; break; }
            }
        }
        *out = chosen;
    }
}

}  // namespace ember

extern "C" __global__ void __launch_bounds__(1024, 2) sample_top_k_top_p(const float* __restrict__ logits, const float* __restrict__ temperature,
                                              const int* __restrict__ topK, const float* __restrict__ topP,
                                              const float* __restrict__ uniform, int* __restrict__ out, int vocab) {
    ember::allow_next_grid();
    ember::wait_for_previous_grid();
    const int row = blockIdx.x;
    sample_row(logits + (size_t)row * vocab, vocab, temperature[row], topK[row], topP[row], uniform[row], out + row);
}

// Ints per output row in the step's sampling parameters: {mode, top-k, temperature bits, top-p bits, uniform bits,
// logprobs K, mask index}. StepLayout.SAMPLE_PARAMS (Java) is the same number.
constexpr int SAMPLE_PARAMS = 7;

// Structured output drawn on the device: in each row whose params name a mask (k = params[SAMPLE_PARAMS * row + 6]
// >= 0), the logit of every token that mask k does not allow (bit i % 32 of masks[k * words + i / 32] clear, words =
// 2 * ceil(vocab / 64)) becomes -inf, so that sample_tokens, launched next, draws only what the row's grammar allows,
// as the host's sampler would. Rows with k = -1 are left alone. Per masked row: reads vocab / 8 bytes of mask (from
// L1, a word serving 32 threads), writes 4 bytes per token masked out.
extern "C" __global__ void mask_logits(float* __restrict__ logits, const int* __restrict__ params,
                                       const unsigned* __restrict__ masks, int vocab) {
    ember::allow_next_grid();
    ember::wait_for_previous_grid();
    const int row = blockIdx.y;
    const int k = params[SAMPLE_PARAMS * row + 6];
    if (k < 0) return;
    const unsigned* mask = masks + (size_t)k * (2 * ((vocab + 63) / 64));
    float* x = logits + (size_t)row * vocab;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < vocab; i += gridDim.x * blockDim.x) {
        if (!((__ldg(mask + (i >> 5)) >> (i & 31)) & 1u)) x[i] = -INFINITY;
    }
}

// The engine's per-step choice, one block of 1024 threads per row, each row as its params say (SAMPLE_PARAMS ints,
// from the step's metadata):
//   mode 0: no token here (a prompt chunk that does not end its prompt, or a row sampled on the host): -1;
//   mode 1: greedy, argmax_row; mode 2: sample_row with the row's temperature, top-k, top-p and uniform.
// One launch for any mix of rows, so a decode graph can hold it whatever its sequences ask for.
extern "C" __global__ void __launch_bounds__(1024, 2) sample_tokens(const float* __restrict__ logits, const int* __restrict__ params,
                                         int* __restrict__ out, int vocab) {
    ember::allow_next_grid();
    ember::wait_for_previous_grid();
    const int row = blockIdx.x;
    const int* q = params + SAMPLE_PARAMS * row;
    const int mode = q[0];
    const float* x = logits + (size_t)row * vocab;
    if (mode == 1) {
        argmax_row(x, vocab, out + row);
    } else if (mode == 2) {
        sample_row(x, vocab, __int_as_float(q[2]), q[1], __int_as_float(q[3]), __int_as_float(q[4]), out + row);
    } else if (threadIdx.x == 0) {
        out[row] = -1;
    }
}

namespace ember {

// OpenAI's logprobs of one row, as TokenLogprobs.of (Java) reads them off raw logits: lse = max + log(sum exp(x - max))
// (fp32), *logprob = x[token] - lse, and the k largest logits in the order value descending, id ascending (the lower
// id first among equal values; NaN never picked), ids[r] and lps[r] = x[ids[r]] - lse for r < k, ids[r] = -1 once the
// row has nothing left (k > vocab).
//
// Two passes over the row (2 * vocab*4 bytes): the first finds each thread's largest element and, reduced, the row's
// (the max and the first pick), the second sums the exponentials. Then each further pick is a block argmax over the
// elements after the previous pick in that order (x < prev, or x == prev with a larger id), so no list of picks is
// kept. Only the thread that owned the previous pick looks at its elements again: every other thread's largest element
// is still after that pick (it lost to it) and still its largest among those left, so k - 1 picks read about
// (k - 1) * vocab*4 / 1024 bytes more, not k - 1 more passes. Writes 4 + 8k bytes.
__device__ void token_logprobs_row(const float* __restrict__ x, int vocab, int token, int k, float* __restrict__ logprob,
                                   int* __restrict__ ids, float* __restrict__ lps) {
    __shared__ float values[32];
    __shared__ int indices[32];
    __shared__ float sums[32];
    float own = -INFINITY;  // this thread's largest element after the previous pick, and its id
    int ownIndex = INT_MAX;
    for_each_own(x, vocab, [&](float v, int i) { keep_larger(v, i, own, ownIndex); });
    float pick = own;
    int pickIndex = ownIndex;
    block_argmax(pick, pickIndex, values, indices);
    const float max = pick;
    float sum = 0.f;
    for_each_own(x, vocab, [&](float v, int) { sum += expf(v - max); });
    const float lse = max + logf(block_sum(sum, sums));  // the max's own term makes the sum at least 1
    if (threadIdx.x == 0) *logprob = token >= 0 && token < vocab ? x[token] - lse : NAN;
    for (int r = 0; r < k; r++) {
        if (r > 0) {
            if (ownIndex == pickIndex) {
                const float previous = pick;
                const int previousIndex = pickIndex;
                own = -INFINITY;
                ownIndex = INT_MAX;
                for_each_own(x, vocab, [&](float v, int i) {
                    if (v < previous || (v == previous && i > previousIndex)) keep_larger(v, i, own, ownIndex);
                });
            }
            pick = own;
            pickIndex = ownIndex;
            block_argmax(pick, pickIndex, values, indices);
        }
        if (pickIndex == INT_MAX) {  // the same in every thread: block_argmax returns the block's result to all
            // Nothing left to pick (K beyond the vocabulary, or only NaN left): every remaining slot says so.
            if (threadIdx.x == 0) {
                for (int rest = r; rest < k; rest++) {
                    ids[rest] = -1;
                    lps[rest] = NAN;
                }
            }
            break;
        }
        if (threadIdx.x == 0) {
            ids[r] = pickIndex;
            lps[r] = pick - lse;
        }
    }
}

}  // namespace ember

// The logprobs of each row's sampled token, after sample_tokens, one block of 1024 threads per row: params as
// sample_tokens reads them, K = params[SAMPLE_PARAMS * row + 5] (-1: none asked, or the row is sampled on the host; the
// row's outputs are left as they are), the chosen token sampled[row]. Writes logprob[row] and, for r < min(K, stride),
// topIds[row * stride + r] and topLogprobs[row * stride + r] (token_logprobs_row). Reads 2 * vocab*4 bytes per asking
// row (the rescans aside), so it is launched only in steps where some row asks. The bounds hold it to 32 registers
// (no spills), so that two blocks fit on a multiprocessor, as with sample_tokens.
extern "C" __global__ void __launch_bounds__(1024, 2) token_logprobs(const float* __restrict__ logits, const int* __restrict__ params,
                                          const int* __restrict__ sampled, float* __restrict__ logprob,
                                          int* __restrict__ topIds, float* __restrict__ topLogprobs, int vocab, int stride) {
    ember::allow_next_grid();
    ember::wait_for_previous_grid();
    const int row = blockIdx.x;
    const int k = params[SAMPLE_PARAMS * row + 5];
    if (k < 0) return;
    token_logprobs_row(logits + (size_t)row * vocab, vocab, sampled[row], min(k, stride), logprob + row,
                       topIds + (size_t)row * stride, topLogprobs + (size_t)row * stride);
}
