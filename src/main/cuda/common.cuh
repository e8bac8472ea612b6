// Shared by every Ember kernel: storage types, conversions and block-wide reductions.
//
// Every kernel is a template over its storage type T (float, __nv_bfloat16 or __half); arithmetic is
// always fp32. EMBER_INSTANTIATE gives each one three C entry points, name_f32, name_bf16 and name_f16,
// which is what the Java side looks up with cuModuleGetFunction.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace ember {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
// Round to nearest even, as torch does when it casts fp32 activations down.
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }

// Programmatic dependent launch (Hopper): a kernel launched with the programmatic-stream-serialization attribute
// (EmberKernels, EMBER_PDL) may be scheduled while the kernel before it in the stream is still running, once every
// block of that kernel has called allow_next_grid (or ended). Every kernel calls it first, so the next kernel's launch
// and the start of its blocks overlap this one; and every kernel waits in wait_for_previous_grid before it touches
// anything the kernels before it write, until they have completed and their memory is visible. Between the two a
// kernel may only read what no kernel writes (the weights: the matrix-vector kernel starts streaming them there).
// Without the attribute, and before sm_90, both cost nothing.
__device__ __forceinline__ void allow_next_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void wait_for_previous_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Asks the line holding p into L2 (no register is written, nothing waits for it).
__device__ __forceinline__ void prefetch_l2(const void* p) {
    asm volatile("prefetch.global.L2 [%0];" :: "l"(p));
}

// A 16-byte load through the read-only path that does not allocate in L1: for data read once (weights, a stream).
__device__ __forceinline__ uint4 load_streaming(const void* p) {
    uint4 v;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

// Sum and max over each aligned run of LANES lanes (a power of two; the whole warp by default), in every lane of it.
template <int LANES = 32>
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = LANES / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <int LANES = 32>
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = LANES / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The paged cache's layout, [block][kvHeads][blockSize][hd]: a block's tokens of one KV head are contiguous
// (blockSize * hd elements, 4 KiB for 16 tokens of hd 128 in bf16), so that attention, which reads one KV head per
// block of threads, streams whole runs; token-major rows would give it hd elements out of every kvHeads * hd.
// PagedKv.offset (Java) computes the same. Element offset of dimension d of KV head kvHead in slot
// slot = block * blockSize + offset:
__device__ __forceinline__ size_t cache_offset(int slot, int blockSize, int kvHeads, int kvHead, int hd, int d) {
    const int block = slot / blockSize, offset = slot - block * blockSize;
    return (((size_t)block * kvHeads + kvHead) * blockSize + offset) * hd + d;
}

// The same for token position p of a sequence whose block table maps p to block table[p / blockSize].
__device__ __forceinline__ size_t paged_offset(const int* __restrict__ table, int p, int blockSize, int kvHeads,
                                               int kvHead, int hd, int d) {
    const int block = table[p / blockSize];
    return (((size_t)block * kvHeads + kvHead) * blockSize + p % blockSize) * hd + d;
}

// Sum over the whole block, returned to every thread. `scratch` holds one float per warp (32 suffice).
// The leading barrier lets callers reuse `scratch` across consecutive reductions.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.f;
    return warp_sum(v);
}

}  // namespace ember

// Three extern "C" entry points per kernel template, one per storage type, with unmangled names: name_f32,
// name_bf16, name_f16. Each lives in a namespace that defines T, so that `params` can name the storage
// type; `callee` is the parenthesised device function to call, e.g. (prefill_attention<T, 128, 32, 32>), after
// `prologue`; `bounds` is empty or a __launch_bounds__(...).
#define EMBER_ENTRY_POINTS(name, bounds, callee, params, args, prologue)                          \
    namespace ember_f32 { using T = float;                                                        \
        extern "C" __global__ void bounds name##_f32 params {                                     \
            using namespace ember; prologue callee args; } }                                      \
    namespace ember_bf16 { using T = __nv_bfloat16;                                               \
        extern "C" __global__ void bounds name##_bf16 params {                                    \
            using namespace ember; prologue callee args; } }                                      \
    namespace ember_f16 { using T = __half;                                                       \
        extern "C" __global__ void bounds name##_f16 params {                                     \
            using namespace ember; prologue callee args; } }

// A kernel that waits for the kernels before it on entry.
#define EMBER_INSTANTIATE_AS(name, callee, params, args) \
    EMBER_ENTRY_POINTS(name, , callee, params, args, allow_next_grid(); wait_for_previous_grid();)

// The same with launch bounds, where the compiler's own register budget would cost blocks per multiprocessor.
#define EMBER_INSTANTIATE_BOUNDED(name, bounds, callee, params, args) \
    EMBER_ENTRY_POINTS(name, bounds, callee, params, args, allow_next_grid(); wait_for_previous_grid();)

// A kernel that starts on what no kernel writes and calls wait_for_previous_grid itself before the rest.
#define EMBER_INSTANTIATE_EARLY(name, callee, params, args) \
    EMBER_ENTRY_POINTS(name, , callee, params, args, allow_next_grid();)

// The common case: the entry points call the template of the same name.
#define EMBER_INSTANTIATE(name, params, args) EMBER_INSTANTIATE_AS(name, (name<T>), params, args)
