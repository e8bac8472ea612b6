package dev.ember.kvcache;

import dev.ember.model.ModelConfig;

/**
 * The geometry of a paged key/value cache: {@code numBlocks} blocks of {@code blockSize} token slots,
 * each slot holding one key and one value vector per layer and KV head.
 */
public record KvCacheSpec(int numLayers, int numKvHeads, int headDim, int blockSize, int numBlocks) {

    public static final int DEFAULT_BLOCK_SIZE = 16;

    public KvCacheSpec {
        if (blockSize <= 0 || numBlocks <= 0) {
            throw new IllegalArgumentException("blockSize and numBlocks must be positive");
        }
    }

    /** A cache for {@code config} with room for at least {@code tokens} token slots. */
    public static KvCacheSpec forTokens(ModelConfig config, int tokens, int blockSize) {
        return new KvCacheSpec(config.numLayers(), config.numKvHeads(), config.headDim(), blockSize,
                Math.max(1, (tokens + blockSize - 1) / blockSize));
    }

    public long tokenCapacity() {
        return (long) blockSize * numBlocks;
    }

    /** Elements (not bytes) of K, or of V, for one token in one layer. */
    public int kvDim() {
        return numKvHeads * headDim;
    }

    /** Bytes of K plus V for one token across all layers, at {@code elementBytes} per element. */
    public long bytesPerToken(int elementBytes) {
        return 2L * numLayers * kvDim() * elementBytes;
    }
}
