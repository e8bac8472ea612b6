package dev.ember.backend;

/**
 * The memory a backend keeps a KV cache in, as it stood when asked ({@link Backend#kvCacheMemory}): what a share of it
 * leaves for the cache, and how large one cache can be.
 *
 * @param name          what the memory is, for messages: "GPU memory", "the Java heap"
 * @param totalBytes    its size
 * @param freeBytes     how much of it was not in use
 * @param reservedBytes what the model will take of it besides the cache and is not in use yet: on the GPU the weights
 *                      and an upper estimate of the step buffers; 0 where the weights live elsewhere (the CPU maps them
 *                      from their file, outside the heap)
 * @param maxTokens     the most tokens one cache can hold on this backend ({@link Long#MAX_VALUE} for no limit)
 * @param moreRoom      one more way to make room for a cache, for the message when none fits, or null
 */
public record KvCacheMemory(String name, long totalBytes, long freeBytes, long reservedBytes, long maxTokens,
                            String moreRoom) {

    /** Bytes left for the cache when the model may use {@code share} of this memory: the share, less what is in use and reserved. */
    public long budget(double share) {
        return (long) (totalBytes * share) - (totalBytes - freeBytes) - reservedBytes;
    }
}
