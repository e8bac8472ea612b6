// Random weights made on the GPU, for benchmarks of model shapes whose real weights are not at hand:
// generating 16 GB on the host and copying it over would take minutes; this takes milliseconds.
#include "common.cuh"

namespace ember {

// splitmix64's finaliser: a bijective mix whose output bits look independent for consecutive inputs.
__device__ __forceinline__ uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// out[i] = center + halfWidth * u_i, u_i uniform in [-1, 1) and a pure function of (seed, i), so the same
// seed gives the same weights whatever the grid. Grid-stride; writes n*sizeof(T) bytes.
template <typename T>
__device__ __forceinline__ void fill_uniform(T* __restrict__ out, long long n, float center, float halfWidth,
                                             unsigned long long seed) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const uint64_t bits = mix64(seed + 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1));
        const float u = (float)(bits >> 40) * (1.0f / 8388608.0f) - 1.0f;  // 24 random bits -> [-1, 1)
        out[i] = from_float<T>(center + halfWidth * u);
    }
}

}  // namespace ember

EMBER_INSTANTIATE(fill_uniform, (T* out, long long n, float center, float halfWidth, unsigned long long seed),
                  (out, n, center, halfWidth, seed))
