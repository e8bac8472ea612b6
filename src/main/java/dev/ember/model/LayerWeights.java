package dev.ember.model;

import java.util.function.UnaryOperator;

/**
 * The weights of one decoder layer. Linear weights are {@code [out, in]}. Optional parts are null where the
 * architecture has none ({@link Biases}): the q/k/v biases (Qwen2, or {@code attention_bias}), the o bias
 * ({@code attention_bias} in Llama and Qwen3), the gate/up/down biases ({@code mlp_bias} in Llama) and the per-head
 * q/k norms (Qwen3).
 */
public record LayerWeights(
        Tensor attnNorm,
        Tensor wq, Tensor wk, Tensor wv, Tensor wo,
        Tensor bq, Tensor bk, Tensor bv, Tensor bo,
        Tensor qNorm, Tensor kNorm,
        Tensor ffnNorm,
        Tensor wGate, Tensor wUp, Tensor wDown,
        Tensor bGate, Tensor bUp, Tensor bDown) {

    /** This layer with {@code f} applied to each of its tensors; absent ones stay null. */
    public LayerWeights map(UnaryOperator<Tensor> f) {
        UnaryOperator<Tensor> g = t -> t == null ? null : f.apply(t);
        return new LayerWeights(g.apply(attnNorm), g.apply(wq), g.apply(wk), g.apply(wv), g.apply(wo), g.apply(bq),
                g.apply(bk), g.apply(bv), g.apply(bo), g.apply(qNorm), g.apply(kNorm), g.apply(ffnNorm), g.apply(wGate),
                g.apply(wUp), g.apply(wDown), g.apply(bGate), g.apply(bUp), g.apply(bDown));
    }
}
