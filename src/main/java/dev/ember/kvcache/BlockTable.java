package dev.ember.kvcache;

import dev.ember.EmberException;

import java.util.Arrays;

/**
 * One sequence's view of the paged cache: the block ids that hold its token slots, in order.
 * Token {@code t} lives in block {@code block(t / blockSize)} at slot {@code t % blockSize}.
 */
public final class BlockTable {
    private final int blockSize;
    private int[] blocks = new int[8];
    private int blockCount;

    public BlockTable(int blockSize) {
        this.blockSize = blockSize;
    }

    public int blockSize() {
        return blockSize;
    }

    public int blockCount() {
        return blockCount;
    }

    public int block(int index) {
        return blocks[index];
    }

    /** Token slots this table can hold without growing. */
    public int capacity() {
        return blockCount * blockSize;
    }

    /**
     * Grows the table until it holds {@code tokens} slots. Returns false, having taken nothing,
     * when the allocator has too few free blocks.
     */
    public boolean reserve(int tokens, BlockAllocator allocator) {
        int needed = (tokens + blockSize - 1) / blockSize - blockCount;
        if (needed <= 0) {
            return true;
        }
        if (needed > allocator.freeBlocks()) {
            return false;
        }
        for (int i = 0; i < needed; i++) {
            append(allocator.allocate());
        }
        return true;
    }

    /**
     * As {@link #reserve}, for a caller that cannot wait for blocks to free up (one request, a benchmark): fails,
     * having taken nothing, with a message saying how many token slots were needed and how many were free.
     */
    public void reserveOrFail(int tokens, BlockAllocator allocator) {
        if (!reserve(tokens, allocator)) {
            throw new EmberException("KV cache too small: " + tokens + " token slots needed, "
                    + (long) allocator.freeBlocks() * blockSize + " free");
        }
    }

    /** Appends an already-held block (for example a shared prefix block). */
    public void append(int block) {
        if (blockCount == blocks.length) {
            blocks = Arrays.copyOf(blocks, blocks.length * 2);
        }
        blocks[blockCount++] = block;
    }

    /**
     * Keeps the blocks that hold the first {@code tokens} slots and returns the rest to the allocator: what a sequence
     * does when positions it computed ahead (a rejected speculation) turn out not to be its own.
     */
    public void truncate(int tokens, BlockAllocator allocator) {
        int keep = (tokens + blockSize - 1) / blockSize;
        while (blockCount > keep) {
            allocator.release(blocks[--blockCount]);
        }
    }

    /** Returns every block to the allocator and empties the table. */
    public void release(BlockAllocator allocator) {
        for (int i = 0; i < blockCount; i++) {
            allocator.release(blocks[i]);
        }
        blockCount = 0;
    }

    /**
     * A copy that holds the same block ids and owns none of them: what a step queued now reads later, whatever
     * happens to this table meanwhile.
     */
    public BlockTable snapshot() {
        BlockTable copy = new BlockTable(blockSize);
        copy.blocks = Arrays.copyOf(blocks, Math.max(1, blockCount));
        copy.blockCount = blockCount;
        return copy;
    }

    /** The block ids, copied: for backends that upload the table to a device. */
    public int[] toArray() {
        return Arrays.copyOf(blocks, blockCount);
    }
}
