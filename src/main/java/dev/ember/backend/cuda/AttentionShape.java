package dev.ember.backend.cuda;

/**
 * The geometry the attention kernels need: query and KV head counts (grouped-query attention when they
 * differ), head dimension, the paged cache's block size, and Mistral's sliding window (0 for none).
 */
public record AttentionShape(int heads, int kvHeads, int headDim, int blockSize, int window) {

    public AttentionShape {
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0) {
            throw new IllegalArgumentException("heads (" + heads + ") must be a positive multiple of kvHeads (" + kvHeads + ")");
        }
    }

    public int group() {
        return heads / kvHeads;
    }

    public float scale() {
        return (float) (1.0 / Math.sqrt(headDim));
    }
}
