// The bias of a linear layer whose product leaves it out: the attention's output projection (attention_bias in Llama
// and Qwen3) and gate, up and down (mlp_bias in Llama). The q/k/v bias is added in qkv_rope instead.
#include "common.cuh"

namespace ember {

constexpr int BIAS_THREADS = 256;

// x[r][c] = x[r][c] + bias[c] for r < rows, c < cols, added in fp32 and rounded once to T (x is the fp32 delta of o
// and down, or the fused gate/up product in the storage type). Moves rows*cols*2*sizeof(T) + cols*4 bytes, one FLOP
// per element: a model without these biases never runs it.
// Grid: (ceil(cols / BIAS_THREADS), min(rows, 65535)); a thread keeps its column's bias in a register and walks the
// rows of its y (rows past 65535 loop), so each row's access is coalesced along c.
template <typename T>
__device__ __forceinline__ void add_bias(T* __restrict__ x, const float* __restrict__ bias, int rows, int cols) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    const float b = bias[c];
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        T* p = x + (size_t)r * cols + c;
        *p = from_float<T>(to_float(*p) + b);
    }
}

}  // namespace ember

EMBER_INSTANTIATE(add_bias, (T* x, const float* bias, int rows, int cols), (x, bias, rows, cols))
