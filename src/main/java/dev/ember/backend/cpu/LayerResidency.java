package dev.ember.backend.cpu;

/**
 * Where the CPU runner finds a decoder layer's weights: held for its life ({@link ResidentLayers}), or copied into a
 * window just before the layer computes and released after ({@link StreamedLayers}). The runner asks for each half
 * of a layer in order and says when it is done with it.
 */
sealed interface LayerResidency extends AutoCloseable permits ResidentLayers, StreamedLayers {
    /** The attention half of a layer, in the form the CPU kernels read; the biases and q/k norms null where absent. */
    record Attention(float[] attnNorm, WeightMatrix wq, WeightMatrix wk, WeightMatrix wv, WeightMatrix wo,
                     float[] bq, float[] bk, float[] bv, float[] bo, float[] qNorm, float[] kNorm) {
    }

    /** The MLP half of a layer; the biases null where absent. */
    record Mlp(float[] ffnNorm, WeightMatrix wGate, WeightMatrix wUp, WeightMatrix wDown, float[] bGate, float[] bUp,
               float[] bDown) {
    }

    Attention attention(int layer);

    default void attentionDone(int layer) {
        // nothing to release where the weights are resident
    }

    Mlp mlp(int layer);

    default void mlpDone(int layer) {
    }

    @Override
    default void close() {
    }
}
