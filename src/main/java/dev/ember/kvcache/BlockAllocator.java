package dev.ember.kvcache;

/**
 * Hands out KV-cache block ids from a fixed pool. Blocks are reference-counted so that sequences can
 * share a prefix; a block returns to the free list when its last reference is dropped. The pool's block size is
 * the one place the rest of the engine reads it from: tables come from {@link #newTable()}.
 * Not thread-safe: one scheduler thread owns it.
 */
public final class BlockAllocator {
    private final int blockSize;
    private final int[] freeStack;
    private final int[] refCounts;
    private int freeCount;

    /** A pool of the cache {@code spec} describes. */
    public BlockAllocator(KvCacheSpec spec) {
        this(spec.numBlocks(), spec.blockSize());
    }

    public BlockAllocator(int numBlocks, int blockSize) {
        if (blockSize <= 0) {
            throw new IllegalArgumentException("block size " + blockSize);
        }
        this.blockSize = blockSize;
        freeStack = new int[numBlocks];
        refCounts = new int[numBlocks];
        // Hand out low ids first, which keeps a short sequence's blocks together in memory.
        for (int i = 0; i < numBlocks; i++) {
            freeStack[i] = numBlocks - 1 - i;
        }
        freeCount = numBlocks;
    }

    /** Token slots in one block. */
    public int blockSize() {
        return blockSize;
    }

    /** An empty block table over this pool's blocks. */
    public BlockTable newTable() {
        return new BlockTable(blockSize);
    }

    public int capacity() {
        return refCounts.length;
    }

    public int freeBlocks() {
        return freeCount;
    }

    public int usedBlocks() {
        return capacity() - freeCount;
    }

    /** A fresh block with one reference, or -1 when the pool is empty. */
    public int allocate() {
        if (freeCount == 0) {
            return -1;
        }
        int block = freeStack[--freeCount];
        refCounts[block] = 1;
        return block;
    }

    /** One more holder of {@code block} (a sequence that shares a cached prefix). */
    public void retain(int block) {
        if (refCounts[block] <= 0) {
            throw new IllegalStateException("retain of free block " + block);
        }
        refCounts[block]++;
    }

    /** Drops one reference; the block is free again when none remain. */
    public void release(int block) {
        if (refCounts[block] <= 0) {
            throw new IllegalStateException("double free of block " + block);
        }
        if (--refCounts[block] == 0) {
            freeStack[freeCount++] = block;
        }
    }

    public int refCount(int block) {
        return refCounts[block];
    }
}
