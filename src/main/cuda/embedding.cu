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
// (a verification's last drafted token; the caller made this stream wait for it). tokens[pairs[2i]] =
// sampled[pairs[2i + 1]] for i < count, sampled being the source runner's buffer. One thread per carried token; moves
// 16 bytes each.
extern "C" __global__ void carry_tokens(int* __restrict__ tokens, const int* __restrict__ pairs,
                                        const int* __restrict__ sampled, int count) {
    ember::allow_next_grid();
    ember::wait_for_previous_grid();
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) tokens[pairs[2 * i]] = sampled[pairs[2 * i + 1]];
}
