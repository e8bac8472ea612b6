package dev.ember.backend.cuda;

import dev.ember.model.ModelConfig;

/**
 * The geometry the attention kernels need: query and KV head counts (grouped-query attention when they
 * differ), head dimension, the paged cache's block size, Mistral's sliding window (0 for none), and the factor of q·k
 * ({@link ModelConfig#attentionScale}).
 */
public record AttentionShape(int heads, int kvHeads, int headDim, int blockSize, int window, float scale) {

    public AttentionShape {
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0) {
            throw new IllegalArgumentException("heads (" + heads + ") must be a positive multiple of kvHeads (" + kvHeads + ")");
        }
    }

    /** The shape with the plain factor of q·k, 1/sqrt(headDim). */
    public AttentionShape(int heads, int kvHeads, int headDim, int blockSize, int window) {
        this(heads, kvHeads, headDim, blockSize, window, (float) (1.0 / Math.sqrt(headDim)));
    }

    /** The shape of {@code config}'s attention over a cache of {@code blockSize}-token blocks. */
    public static AttentionShape of(ModelConfig config, int blockSize) {
        return new AttentionShape(config.numHeads(), config.numKvHeads(), config.headDim(), blockSize,
                config.slidingWindow(), config.attentionScale());
    }

    public int group() {
        return heads / kvHeads;
    }
}
