package dev.ember.model;

/**
 * The weights of one decoder layer. Linear weights are {@code [out, in]}. Optional parts are null
 * where the architecture has none: q/k/v biases (Qwen2, or {@code attention_bias}) and the per-head
 * q/k norms (Qwen3).
 */
public record LayerWeights(
        Tensor attnNorm,
        Tensor wq, Tensor wk, Tensor wv, Tensor wo,
        Tensor bq, Tensor bk, Tensor bv,
        Tensor qNorm, Tensor kNorm,
        Tensor ffnNorm,
        Tensor wGate, Tensor wUp, Tensor wDown) {
}
