package dev.ember.backend.cuda;

import java.util.function.ToLongFunction;

/**
 * Where {@link CudaModelRunner#enqueueStep} finds a decoder layer's weights, as device addresses: resident for the
 * runner's life ({@link ResidentLayers}: a step reads the same addresses every time, so it can be a captured graph), or
 * a slot of the streaming window ({@link StreamedLayers}: the compute waits on the device for the group's copy, and
 * what follows its last kernel releases the slot to the copies). Each half of a layer is asked for in order, then
 * said done.
 */
sealed interface LayerResidency extends AutoCloseable permits ResidentLayers, StreamedLayers {
    /** The attention half's addresses; 0 for the parts the architecture lacks (biases, q/k norms). */
    record Attention(long attnNorm, long qkv, long qkvBias, long qNorm, long kNorm, long o, long oBias) {
    }

    /** The MLP half's addresses; 0 for the biases where the architecture has none. */
    record Mlp(long ffnNorm, long gateUp, long down, long gateUpBias, long downBias) {
    }

    /** Layer {@code layer}'s attention half, ready for the kernels queued on the compute stream after this call. */
    Attention attention(int layer);

    /** The kernels queued on the compute stream so far are all that read layer {@code layer}'s attention half. */
    default void attentionDone(int layer) {
        // nothing to release where the weights are resident
    }

    Mlp mlp(int layer);

    default void mlpDone(int layer) {
    }

    /** Whether the addresses change from step to step (so that steps cannot be replayed from graphs). */
    boolean streams();

    /**
     * Every address a matrix of the attention half may have, for timing a product's candidates over weights that
     * come from memory (every layer's when resident, every window slot's when streamed).
     */
    long[] attentionAddresses(ToLongFunction<Attention> matrix);

    long[] mlpAddresses(ToLongFunction<Mlp> matrix);

    @Override
    default void close() {
    }
}
