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
        BlockAllocator alloc = new BlockAllocator(32);
        PrefixCache cache = new PrefixCache(alloc, BS);
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
        BlockAllocator alloc = new BlockAllocator(6);
        PrefixCache cache = new PrefixCache(alloc, BS);
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
}
