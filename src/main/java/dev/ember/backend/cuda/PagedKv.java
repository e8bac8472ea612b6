package dev.ember.backend.cuda;

/**
 * Where one layer's paged KV cache and the step's block tables are on the device. Keys and values are each
 * {@code [numBlocks][kvHeads][blockSize][headDim]} ({@link #offset}); {@code blockTables} holds one row of
 * {@code tableStride} block ids per chunk of the step.
 */
public record PagedKv(long keys, long values, long blockTables, int tableStride) {
    /**
     * The element offset of dimension {@code d} of KV head {@code kvHead} in cache slot {@code slot} (= block *
     * blockSize + offset), elements of {@code elementBytes} bytes, as the kernels lay the cache out (kv_row in
     * common.cuh): a block's tokens of one KV head are contiguous, so that attention, which reads one KV head per block
     * of threads, streams whole runs of them; within a row of a whole number of 128-byte lines ({@link #swizzled}) the
     * 16-byte chunks are swizzled, chunk c of the token at offset o of its block stored at chunk c ^ (o % 8).
     */
    public static long offset(int slot, int blockSize, int kvHeads, int kvHead, int headDim, int elementBytes, int d) {
        int block = slot / blockSize, inBlock = slot % blockSize;
        long row = (((long) block * kvHeads + kvHead) * blockSize + inBlock) * headDim;
        int swizzle = swizzled(headDim, elementBytes) ? (inBlock & 7) * (16 / elementBytes) : 0;
        return row + (d ^ swizzle);
    }

    /** Whether rows of {@code headDim} elements are stored with their 16-byte chunks swizzled (kv_swizzled). */
    public static boolean swizzled(int headDim, int elementBytes) {
        return headDim * elementBytes % 128 == 0;
    }
}
