// The memory system's read ceiling: kernels that only read (the matrix-vector products over weights, decode
// attention over the KV cache) can stream faster than a copy, which also writes. Ember measures this rate once per
// GPU and compares those kernels with it.
#include "common.cuh"

// Reads n 16-byte words once, four loads in flight per thread, grid-stride; folds them into a value that is written
// only if it equals a constant no real input produces, so the loads cannot be removed.
// Bytes: 16 n read, nothing written in practice. FLOPs: none.
extern "C" __global__ void read_stream(const uint4* __restrict__ in, long long n, uint4* __restrict__ sink) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    uint4 acc = make_uint4(0u, 0u, 0u, 0u);
    for (; i + 3 * stride < n; i += 4 * stride) {
        const uint4 a = __ldcs(in + i), b = __ldcs(in + i + stride), c = __ldcs(in + i + 2 * stride), d = __ldcs(in + i + 3 * stride);
        acc.x ^= a.x ^ b.x ^ c.x ^ d.x;
        acc.y ^= a.y ^ b.y ^ c.y ^ d.y;
        acc.z ^= a.z ^ b.z ^ c.z ^ d.z;
        acc.w ^= a.w ^ b.w ^ c.w ^ d.w;
    }
    for (; i < n; i += stride) {
        const uint4 a = __ldcs(in + i);
        acc.x ^= a.x; acc.y ^= a.y; acc.z ^= a.z; acc.w ^= a.w;
    }
    if ((acc.x & acc.y & acc.z & acc.w) == 0xffffffffu) {
        sink[blockIdx.x] = acc;
    }
}
