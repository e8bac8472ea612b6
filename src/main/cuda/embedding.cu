// Embedding lookup: the first activations of a step are rows of the token-embedding table.
#include "common.cuh"

namespace ember {

// out[r][:] = table[tokens[r]][:], widened to fp32 (the residual stream is kept in fp32).
// Grid: one block per row. Moves rows*hidden*(sizeof(T) + 4) bytes; no arithmetic.
template <typename T>
__device__ __forceinline__ void embedding_gather(const T* __restrict__ table, const int* __restrict__ tokens,
                                                 float* __restrict__ out, int hidden) {
    const int row = blockIdx.x;
    const T* src = table + (size_t)tokens[row] * hidden;
    float* dst = out + (size_t)row * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = to_float(src[i]);
}

}  // namespace ember

EMBER_INSTANTIATE(embedding_gather,
                  (const T* table, const int* tokens, float* out, int hidden),
                  (table, tokens, out, hidden))

// The tokens a step takes from a step submitted before it, which the engine schedules before those tokens reach the
// host: the step before on the same stream (overlapped scheduling), or a draft model's last step on another stream
// (a verification's last drafted token; the caller made this stream wait for it). carry = {count, the source's
// sampled-token buffer as its low and high 32 bits, then count pairs (row, output)}: tokens[row] = sampled[output].
// Read from the step's metadata rather than taken as arguments, so that a captured graph replays it for any source and
// count (none: count 0). One block, its threads striding over the pairs; moves 16 bytes a carried token.
extern "C" __global__ void carry_tokens(int* __restrict__ tokens, const int* __restrict__ carry) {
    ember::allow_next_grid();
    ember::wait_for_previous_grid();
    const int count = carry[0];
    const int* sampled = reinterpret_cast<const int*>(
        (unsigned long long)(unsigned)carry[1] | ((unsigned long long)(unsigned)carry[2] << 32));
    const int* pairs = carry + 3;
    for (int i = threadIdx.x; i < count; i += blockDim.x) tokens[pairs[2 * i]] = sampled[pairs[2 * i + 1]];
}
