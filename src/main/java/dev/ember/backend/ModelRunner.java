package dev.ember.backend;

import dev.ember.kvcache.BlockAllocator;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.ModelConfig;

/**
 * Runs a loaded model. One call to {@link #forward} is one engine step: any mix of prefill chunks and
 * single-token decodes for many sequences, each writing its keys and values into the paged cache
 * through its block table, and producing next-token logits for the last token of each chunk.
 */
public interface ModelRunner extends AutoCloseable {

    ModelConfig config();

    KvCacheSpec kvSpec();

    /** The allocator over this runner's KV blocks; block ids index the runner's cache storage. */
    BlockAllocator blockAllocator();

    /**
     * Runs {@code batch}. For chunk {@code i}, writes the {@code vocabSize} logits of its last token
     * into {@code logits[i * vocabSize, (i + 1) * vocabSize)}. Each chunk's block table must already
     * hold slots for {@code startPosition + tokens.length} tokens.
     */
    void forward(ForwardBatch batch, float[] logits);

    /** The device this runner computes on, for summaries and benchmark headers. */
    String deviceName();

    @Override
    void close();
}
