// Next-token choice on the GPU, from fp32 logits [rows][vocab]; one block of 1024 threads per row.
#include "common.cuh"

namespace ember {

// Maps a float to an unsigned key with the same order (for every non-NaN value), so that thresholds
// can be found by a bitwise binary search.
__device__ __forceinline__ uint32_t order_key(float x) {
    const uint32_t u = __float_as_uint(x);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
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
// Both thresholds are found by a 32-step bitwise search over order_key, each step one pass over the
// row, so no sort is needed: up to 66 passes of vocab*4 bytes (mostly from L2) and 2 exps per element
// per weight pass. With neither top-k nor top-p (temperature alone, the common case) one pass reads the row
// (vocab*4 bytes, one exp per element): each thread keeps its segment's running max and the mass under it, rescaled
// when the max grows, and the block rescales every segment to the row's max; the owner of the crossing then reads
// its own segment again (vocab*4 / 1024 bytes). Launch with 1024 threads.
namespace ember {

// Each thread's contiguous segment of the row, so that a prefix sum over threads orders the mass by token index: a
// multiple of four elements where the row is 16-byte aligned and its length a multiple of four, so a segment is read
// in 16-byte loads.
struct Segment {
    int begin, end;
    bool quads;
};

__device__ __forceinline__ Segment own_segment(const float* x, int vocab) {
    const bool quads = (vocab & 3) == 0 && ((uintptr_t)x & 15) == 0;
    int length = (vocab + blockDim.x - 1) / blockDim.x;
    if (quads) length = (length + 3) & ~3;
    const int begin = min(vocab, (int)threadIdx.x * length);
    return {begin, min(vocab, begin + length), quads};
}

// The running max m of a segment's logits and the mass s = sum exp((x - m) * invTemperature) under it, in one pass.
__device__ __forceinline__ void running_mass(float v, float invTemperature, float& m, float& s) {
    if (v > m) {
        s = s * expf((m - v) * invTemperature) + 1.f;  // exp(-inf) = 0 on the first element
        m = v;
    } else if (m > -INFINITY) {  // a masked (-inf) logit before any finite one adds nothing
        s += expf((v - m) * invTemperature);
    }
}

__device__ __forceinline__ void running_mass(float4 f, float invTemperature, float& m, float& s) {
    running_mass(f.x, invTemperature, m, s);
    running_mass(f.y, invTemperature, m, s);
    running_mass(f.z, invTemperature, m, s);
    running_mass(f.w, invTemperature, m, s);
}

__device__ __forceinline__ void segment_mass(const float* __restrict__ x, Segment seg, float invTemperature,
                                             float& m, float& s) {
    m = -INFINITY;
    s = 0.f;
    if (seg.quads) {
        const float4* q = reinterpret_cast<const float4*>(x + seg.begin);
        const int count = (seg.end - seg.begin) / 4;
        constexpr int IN_FLIGHT = 4;
        int i = 0;
        for (; i + IN_FLIGHT <= count; i += IN_FLIGHT) {
            float4 f[IN_FLIGHT];
#pragma unroll
            for (int u = 0; u < IN_FLIGHT; u++) f[u] = __ldg(q + i + u);
#pragma unroll
            for (int u = 0; u < IN_FLIGHT; u++) running_mass(f[u], invTemperature, m, s);
        }
        for (; i < count; i++) running_mass(__ldg(q + i), invTemperature, m, s);
    } else {
        for (int i = seg.begin; i < seg.end; i++) running_mass(x[i], invTemperature, m, s);
    }
}

__device__ void sample_row(const float* __restrict__ x, int vocab, float temperature, int k, float p, float u,
                           int* __restrict__ out) {
    __shared__ float scratch[32];
    const float invTemperature = 1.f / temperature;
    const Segment seg = own_segment(x, vocab);
    const bool truncated = (k > 0 && k < vocab) || p < 1.f;

    float maxLogit, local = 0.f;
    int lastKept = -1;
    if (!truncated) {  // every token kept: the max and each segment's mass in one pass
        float segmentMax;
        segment_mass(x, seg, invTemperature, segmentMax, local);
        maxLogit = block_max(segmentMax, scratch);
        local = segmentMax > -INFINITY ? local * expf((segmentMax - maxLogit) * invTemperature) : 0.f;
        lastKept = seg.begin < seg.end ? seg.end - 1 : -1;
    } else {
        float localMax = -INFINITY;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x) localMax = fmaxf(localMax, x[i]);
        maxLogit = block_max(localMax, scratch);
    }

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
    if (truncated) {
        for (int i = seg.begin; i < seg.end; i++) {
            if (order_key(x[i]) >= threshold) {
                local += expf((x[i] - maxLogit) * invTemperature);
                lastKept = i;
            }
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
