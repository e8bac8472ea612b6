package dev.ember.sampling;

/**
 * The vocabulary-sized work arrays of {@link Sampler}: up to 16 bytes a token, 2.4 MB for Qwen's 152k, which a
 * sampler per running sequence would multiply. Samplers driven by one thread can share one scratch,
 * since a sampler uses it only inside {@link Sampler#sample}; it is not thread-safe. Arrays are
 * allocated on first need and grow to the largest vocabulary seen, so steady-state sampling allocates nothing.
 */
public final class SamplingScratch {
    /** Surviving token ids, ascending. */
    int[] pool = new int[0];
    /** Unnormalised probability of {@code pool[i]}, relative to the most likely token (which weighs 1). */
    float[] weights = new float[0];
    /** Rank keys of the nucleus candidates, as a max-heap. */
    long[] rankHeap = new long[0];
    /** The {@code top_k} largest logits so far, as a min-heap. */
    float[] topKHeap = new float[0];
    /** Probability mass per log-weight bucket, locating the nucleus boundary before anything is ordered. */
    final double[] bucketMass = new double[Sampler.NUCLEUS_BUCKETS];

    void reservePool(int size) {
        if (pool.length < size) {
            pool = new int[size];
            weights = new float[size];
        }
    }

    void reserveRankHeap(int size) {
        if (rankHeap.length < size) {
            rankHeap = new long[size];
        }
    }

    void reserveTopKHeap(int size) {
        if (topKHeap.length < size) {
            topKHeap = new float[size];
        }
    }
}
