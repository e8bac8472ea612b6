package dev.ember.backend.cuda;

/**
 * Where one layer's paged KV cache and the step's block tables are on the device. Keys and values are each
 * {@code [numBlocks][kvHeads][blockSize][headDim]} ({@link #offset}); {@code blockTables} holds one row of
 * {@code tableStride} block ids per chunk of the step.
 */
public record PagedKv(long keys, long values, long blockTables, int tableStride) {
    /**
     * The element offset of KV head {@code kvHead}'s first dimension in cache slot {@code slot} (= block * blockSize +
     * offset), as the kernels lay the cache out (cache_offset in common.cuh): a block's tokens of one KV head are
     * contiguous, so that attention, which reads one KV head per block of threads, streams whole runs of them.
     */
    public static long offset(int slot, int blockSize, int kvHeads, int kvHead, int headDim) {
        int block = slot / blockSize, inBlock = slot % blockSize;
        return (((long) block * kvHeads + kvHead) * blockSize + inBlock) * headDim;
    }
}
