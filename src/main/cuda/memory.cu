// The memory system's read ceiling: kernels that only read (the matrix-vector products over weights, decode
// attention over the KV cache) can stream faster than a copy, which also writes. Ember measures this rate once per
// GPU and compares those kernels with it.
#include "common.cuh"

// Reads n 16-byte words once, eight loads in flight per thread through the read-only path, grid-stride; folds them
// into a value that is written only if it equals a constant no real input produces, so the loads cannot be removed.
// Bytes: 16 n read, nothing written in practice. FLOPs: none.
extern "C" __global__ void read_stream(const uint4* __restrict__ in, long long n, uint4* __restrict__ sink) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    uint4 acc = make_uint4(0u, 0u, 0u, 0u);
    constexpr int IN_FLIGHT = 8;
    for (; i + (IN_FLIGHT - 1) * stride < n; i += IN_FLIGHT * stride) {
        uint4 v[IN_FLIGHT];
#pragma unroll
        for (int k = 0; k < IN_FLIGHT; k++) {
            v[k] = __ldg(in + i + k * stride);
        }
#pragma unroll
        for (int k = 0; k < IN_FLIGHT; k++) {
            acc.x ^= v[k].x; acc.y ^= v[k].y; acc.z ^= v[k].z; acc.w ^= v[k].w;
        }
    }
    for (; i < n; i += stride) {
        const uint4 a = __ldg(in + i);
        acc.x ^= a.x; acc.y ^= a.y; acc.z ^= a.z; acc.w ^= a.w;
    }
    if ((acc.x & acc.y & acc.z & acc.w) == 0xffffffffu) {
        sink[blockIdx.x] = acc;
    }
}
