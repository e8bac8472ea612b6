// The memory system's read ceiling: kernels that only read (the matrix-vector products over weights, decode
// attention over the KV cache) can stream faster than a copy, which also writes. Ember measures this rate once per
// GPU, with two access patterns, keeps the faster, and compares those kernels with it.
#include "common.cuh"

// Reads n 16-byte words once, eight loads in flight per thread through the read-only path, grid-stride; folds them
// into a value that is written only if it equals a constant no real input produces, so the loads cannot be removed.
// Bytes: 16 n read, nothing written in practice. FLOPs: none.
extern "C" __global__ void read_stream(const uint4* __restrict__ in, long long n, uint4* __restrict__ sink) {
    ember::allow_next_grid();
    ember::wait_for_previous_grid();
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

// Reads n 16-byte words the way the matrix-vector kernel (gemv.cu) reads a weight matrix: each warp one contiguous
// run of RUN_WORDS words (8 KiB, one row of a 4096-wide bf16 matrix), each lane eight loads in flight that bypass
// L1; one warp per run and no grid stride, so blocks go to multiprocessors as they free up. The grid-stride pattern
// above spreads each step over the whole buffer; this one keeps every warp on a few DRAM pages, which is what lets
// the product stream faster than read_stream on some runs. Bytes: 16 n read, nothing written in practice. FLOPs: none.
constexpr int RUN_WORDS = 512;
extern "C" __global__ void read_runs(const uint4* __restrict__ in, long long n, uint4* __restrict__ sink) {
    ember::allow_next_grid();
    ember::wait_for_previous_grid();
    constexpr int IN_FLIGHT = 8;
    const int lane = threadIdx.x & 31;
    const long long first = ((long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32) * RUN_WORDS;
    if (first >= n) return;
    const long long words = n - first < RUN_WORDS ? n - first : RUN_WORDS;
    const uint4* run = in + first;
    uint4 acc = make_uint4(0u, 0u, 0u, 0u);
    for (int base = 0; base < RUN_WORDS; base += 32 * IN_FLIGHT) {
        uint4 v[IN_FLIGHT];
#pragma unroll
        for (int k = 0; k < IN_FLIGHT; k++) {
            const int at = base + k * 32 + lane;
            v[k] = at < words ? ember::load_streaming(run + at) : make_uint4(0u, 0u, 0u, 0u);
        }
#pragma unroll
        for (int k = 0; k < IN_FLIGHT; k++) {
            acc.x ^= v[k].x; acc.y ^= v[k].y; acc.z ^= v[k].z; acc.w ^= v[k].w;
        }
    }
    if ((acc.x & acc.y & acc.z & acc.w) == 0xffffffffu) {
        sink[blockIdx.x & 3] = acc;
    }
}
