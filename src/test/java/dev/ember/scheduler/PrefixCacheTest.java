package dev.ember.scheduler;

import dev.ember.kvcache.BlockAllocator;
import dev.ember.kvcache.BlockTable;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class PrefixCacheTest {
    private static final int BS = 4;

    private static int[] tokens(long seed, int n) {
        return new SplittableRandom(seed).ints(n, 0, 1000).toArray();
    }

    /** A sequence that computed {@code tokens} into fresh blocks, inserted them, and finished. */
    private static int[] computeAndFinish(PrefixCache cache, BlockAllocator alloc, int[] tokens) {
        BlockTable table = new BlockTable(BS);
        assertTrue(table.reserve(tokens.length, alloc));
        int[] blocks = table.toArray();
        cache.insert(tokens, blocks);
        table.release(alloc);
        return blocks;
    }

    @Test
    void matchesWholeBlocksOfACommonPrefixOnly() {
        BlockAllocator alloc = new BlockAllocator(32, BS);
        PrefixCache cache = new PrefixCache(alloc);
        int[] a = tokens(1, 10);
        int[] blocks = computeAndFinish(cache, alloc, a);
        assertEquals(2, cache.cachedBlocks(), "only the two full blocks are cached");
        int[] b = a.clone();
        b[6] = (b[6] + 1) % 1000;
        assertArrayEquals(new int[]{blocks[0]}, cache.match(b, b.length), "diverges inside the second block");
        assertArrayEquals(new int[]{blocks[0], blocks[1]}, cache.match(a, a.length));
        assertArrayEquals(new int[]{blocks[0]}, cache.match(a, 7), "limited to 7 tokens: one block");
        assertEquals(0, cache.match(tokens(2, 10), 10).length);
    }

    @Test
    void evictsLeastRecentlyUsedUnheldLeavesFirst() {
        BlockAllocator alloc = new BlockAllocator(6, BS);
        PrefixCache cache = new PrefixCache(alloc);
        int[] old = tokens(3, 8);
        int[] recent = tokens(4, 8);
        int[] oldBlocks = computeAndFinish(cache, alloc, old);
        computeAndFinish(cache, alloc, recent);
        assertEquals(2, alloc.freeBlocks());
        cache.match(recent, 8);
        // A live sequence holds the old prefix's first block: it may not be evicted.
        alloc.retain(oldBlocks[0]);
        assertEquals(1, cache.evict(3));
        assertEquals(1, cache.match(old, 8).length, "old leaf evicted, its held parent kept");
        assertEquals(2, cache.match(recent, 8).length, "recent prefix untouched");
        alloc.release(oldBlocks[0]);
        cache.clear();
        assertEquals(6, alloc.freeBlocks(), "every block returns to the pool");
        assertEquals(0, cache.cachedBlocks());
    }

    /**
     * Eviction walks only the tree's leaves: a shared prefix with two branches loses a branch's leaf without becoming a
     * leaf itself, becomes one when its last child goes, and is then evicted in its turn; blocks held by a sequence
     * stay whatever their place.
     */
    @Test
    void branchesLeaveTheirSharedPrefixOnlyWhenTheLastOneGoes() {
        BlockAllocator alloc = new BlockAllocator(16, BS);
        PrefixCache cache = new PrefixCache(alloc);
        int[] prefix = tokens(5, 4);
        int[] left = concat(prefix, tokens(6, 4)), right = concat(prefix, tokens(7, 4));
        computeAndFinish(cache, alloc, left);
        BlockTable rightTable = new BlockTable(BS);
        rightTable.append(cache.match(right, 4)[0]);
        alloc.retain(rightTable.block(0));
        assertTrue(rightTable.reserve(8, alloc));
        cache.insert(right, rightTable.toArray());
        rightTable.release(alloc);
        assertEquals(3, cache.cachedBlocks(), "one shared block and two branches");

        cache.match(right, 8);  // the right branch is the more recent
        assertEquals(1, cache.evict(alloc.freeBlocks() + 1));
        assertEquals(1, cache.match(left, 8).length, "the older branch's leaf went; the shared block stays");
        assertEquals(2, cache.match(right, 8).length);

        int held = cache.match(right, 8)[1];
        alloc.retain(held);  // a running sequence holds the right leaf: nothing else is a leaf
        assertEquals(0, cache.evict(alloc.capacity()));
        alloc.release(held);
        assertEquals(2, cache.evict(alloc.capacity()), "the right leaf, then the prefix it leaves childless");
        assertEquals(0, cache.cachedBlocks());
        assertEquals(alloc.capacity(), alloc.freeBlocks());
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
