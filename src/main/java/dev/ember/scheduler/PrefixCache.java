package dev.ember.scheduler;

import dev.ember.kvcache.BlockAllocator;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;

/**
 * A radix tree over full KV blocks: each node is one block of {@code blockSize} tokens whose keys and
 * values are already computed, under the node of the block before it. A new request walks the tree with
 * its prompt and reuses every block it matches instead of recomputing it.
 *
 * <p>The tree holds one allocator reference to each cached block, so a block stays resident after the
 * sequences that made it finish; blocks no sequence uses are evicted least recently used first, leaves
 * before their parents, when the allocator runs dry. Not thread-safe: the scheduler thread owns it.
 */
public final class PrefixCache {

    private static final class Node {
        final Node parent;
        final BlockKey key;
        final int block;
        final Map<BlockKey, Node> children = new HashMap<>();
        long lastUsed;

        Node(Node parent, BlockKey key, int block) {
            this.parent = parent;
            this.key = key;
            this.block = block;
        }
    }

    /** The tokens of one block, compared by content. */
    private record BlockKey(int[] tokens) {
        @Override
        public boolean equals(Object o) {
            return o instanceof BlockKey k && Arrays.equals(tokens, k.tokens);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(tokens);
        }
    }

    private final BlockAllocator allocator;
    private final int blockSize;
    private final Node root = new Node(null, null, -1);
    /**
     * The nodes without children, the only ones eviction can take: a scheduler short of blocks asks at every step,
     * and walking these beats walking the whole tree (a running prompt is a chain of many blocks and one leaf).
     */
    private final Set<Node> leaves = new HashSet<>();
    private long clock;
    private int cachedBlocks;
    private long lookups;
    private long lookupTokens;
    private long hitTokens;

    public PrefixCache(BlockAllocator allocator) {
        this.allocator = allocator;
        this.blockSize = allocator.blockSize();
    }

    /**
     * The cached blocks that hold a prefix of {@code tokens}, at most {@code maxTokens} tokens' worth, in
     * order. The caller takes its own reference to each (see {@link BlockAllocator#retain}).
     */
    public int[] match(int[] tokens, int maxTokens) {
        List<Node> nodes = walk(tokens, maxTokens);
        long now = ++clock;
        for (Node node : nodes) {
            node.lastUsed = now;
        }
        lookups++;
        lookupTokens += tokens.length;
        hitTokens += (long) nodes.size() * blockSize;
        return nodes.stream().mapToInt(node -> node.block).toArray();
    }

    /**
     * How many blocks {@link #match} would give now, without counting as a lookup or a use: for a scheduler deciding
     * whether a prompt should wait for more of its prefix to be cached.
     */
    public int matchableBlocks(int[] tokens, int maxTokens) {
        return walk(tokens, maxTokens).size();
    }

    /** The nodes of the cached blocks that hold a prefix of {@code tokens}, at most {@code maxTokens} tokens' worth. */
    private List<Node> walk(int[] tokens, int maxTokens) {
        List<Node> nodes = new ArrayList<>();
        Node node = root;
        for (int start = 0; start + blockSize <= Math.min(tokens.length, maxTokens); start += blockSize) {
            node = node.children.get(new BlockKey(Arrays.copyOfRange(tokens, start, start + blockSize)));
            if (node == null) {
                break;
            }
            nodes.add(node);
        }
        return nodes;
    }

    /**
     * Records that {@code blocks[i]} holds tokens {@code [i * blockSize, (i + 1) * blockSize)} of {@code tokens},
     * for every full block. Blocks already cached under the same content are left as they are.
     */
    public void insert(int[] tokens, int[] blocks) {
        Node node = root;
        long now = ++clock;
        int full = Math.min(blocks.length, tokens.length / blockSize);
        for (int i = 0; i < full; i++) {
            BlockKey key = new BlockKey(Arrays.copyOfRange(tokens, i * blockSize, (i + 1) * blockSize));
            Node child = node.children.get(key);
            if (child == null) {
                allocator.retain(blocks[i]);
                child = new Node(node, key, blocks[i]);
                node.children.put(key, child);
                leaves.remove(node);
                leaves.add(child);
                cachedBlocks++;
            }
            child.lastUsed = now;
            node = child;
        }
    }

    /**
     * Frees cached blocks that no sequence holds, least recently used leaves first, until the allocator has
     * {@code wanted} free blocks or nothing more can go. Returns the number of blocks evicted.
     */
    public int evict(int wanted) {
        if (allocator.freeBlocks() >= wanted) {
            return 0;
        }
        PriorityQueue<Node> evictable = new PriorityQueue<>((a, b) -> Long.compare(a.lastUsed, b.lastUsed));
        for (Node leaf : leaves) {
            if (allocator.refCount(leaf.block) == 1) {  // held by the tree alone
                evictable.add(leaf);
            }
        }
        int evicted = 0;
        while (allocator.freeBlocks() < wanted && !evictable.isEmpty()) {
            Node leaf = evictable.poll();
            leaf.parent.children.remove(leaf.key);
            leaves.remove(leaf);
            allocator.release(leaf.block);
            cachedBlocks--;
            evicted++;
            Node parent = leaf.parent;
            if (parent != root && parent.children.isEmpty()) {
                leaves.add(parent);
                if (allocator.refCount(parent.block) == 1) {
                    evictable.add(parent);
                }
            }
        }
        return evicted;
    }

    /** Blocks the tree holds a reference to. */
    public int cachedBlocks() {
        return cachedBlocks;
    }

    /** Share of looked-up prompt tokens served from the cache since creation. */
    public double hitRate() {
        return lookupTokens == 0 ? 0 : (double) hitTokens / lookupTokens;
    }

    public long lookups() {
        return lookups;
    }

    /** Drops every cached block no sequence holds (used on shutdown and in tests). */
    public void clear() {
        evict(Integer.MAX_VALUE);
    }
}
