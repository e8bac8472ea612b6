package dev.ember.grammar;

import dev.ember.tokenizer.Tokenizer;

import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A tokenizer's vocabulary as a trie of the tokens' bytes ({@link Tokenizer#tokenBytes}), so that the tokens a grammar
 * allows next are found by walking it once: a byte the grammar cannot read prunes every token that continues it.
 * Nodes are numbered depth first, each followed by its subtree: a node's children run from the next number to its
 * {@code end}, each child's own subtree skipped by its {@code end}. Special tokens stand for no bytes and are not in it;
 * the end-of-sequence tokens are kept apart, allowed where the output may end.
 */
public final class VocabularyTrie {
    private final byte[] label;
    private final int[] end;
    /** The tokens whose bytes end at node n: {@code tokens[tokenStart[n], tokenStart[n + 1])}. */
    private final int[] tokenStart;
    private final int[] tokens;
    private final byte[][] bytesById;
    private final BitSet endOfSequence;
    private final int longest;

    private VocabularyTrie(byte[] label, int[] end, int[] tokenStart, int[] tokens, byte[][] bytesById, BitSet endOfSequence) {
        this.label = label;
        this.end = end;
        this.tokenStart = tokenStart;
        this.tokens = tokens;
        this.bytesById = bytesById;
        this.endOfSequence = endOfSequence;
        int most = 0;
        for (int token : tokens) {
            most = Math.max(most, bytesById[token].length);
        }
        this.longest = most;
    }

    /** The trie of {@code tokenizer}'s vocabulary, with {@code endOfSequence} the tokens that end an output. */
    public static VocabularyTrie of(Tokenizer tokenizer, Set<Integer> endOfSequence) {
        int vocab = tokenizer.vocabSize();
        byte[][] bytes = new byte[vocab][];
        BitSet ends = new BitSet(vocab);
        endOfSequence.stream().filter(id -> id >= 0 && id < vocab).forEach(ends::set);
        int count = 0;
        Integer[] ids = new Integer[vocab];
        for (int id = 0; id < vocab; id++) {
            bytes[id] = tokenizer.tokenBytes(id);
            if (bytes[id] != null && bytes[id].length > 0 && !ends.get(id)) {
                ids[count++] = id;
            }
        }
        Integer[] sorted = Arrays.copyOf(ids, count);
        Arrays.sort(sorted, (a, b) -> Arrays.compareUnsigned(bytes[a], bytes[b]));
        Builder builder = new Builder(bytes, count);
        builder.build(sorted, 0, count, 0, builder.node((byte) 0));
        return builder.finish(bytes, ends);
    }

    /** Builds the numbering from ids sorted by their bytes: a run sharing {@code depth} bytes is one node's subtree. */
    private static final class Builder {
        final byte[][] bytes;
        byte[] label = new byte[1024];
        int[] end = new int[1024];
        int[] tokenStart = new int[1024];
        final int[] tokens;
        int nodes;
        int placed;

        Builder(byte[][] bytes, int tokenCount) {
            this.bytes = bytes;
            this.tokens = new int[tokenCount];
        }

        int node(byte b) {
            if (nodes == label.length) {
                label = Arrays.copyOf(label, nodes * 2);
                end = Arrays.copyOf(end, nodes * 2);
                tokenStart = Arrays.copyOf(tokenStart, nodes * 2);
            }
            label[nodes] = b;
            tokenStart[nodes] = placed;
            return nodes++;
        }

        void build(Integer[] sorted, int from, int to, int depth, int node) {
            int i = from;
            while (i < to && bytes[sorted[i]].length == depth) {  // shorter sorts first: the tokens ending here
                tokens[placed++] = sorted[i++];
            }
            while (i < to) {
                byte b = bytes[sorted[i]][depth];
                int j = i;
                while (j < to && bytes[sorted[j]][depth] == b) {
                    j++;
                }
                build(sorted, i, j, depth + 1, node(b));
                i = j;
            }
            end[node] = nodes;
        }

        VocabularyTrie finish(byte[][] bytesById, BitSet ends) {
            int[] starts = Arrays.copyOf(tokenStart, nodes + 1);
            starts[nodes] = placed;
            return new VocabularyTrie(Arrays.copyOf(label, nodes), Arrays.copyOf(end, nodes), starts, tokens, bytesById, ends);
        }
    }

    public int vocabSize() {
        return bytesById.length;
    }

    /** The most bytes a token of the trie has. */
    int longestToken() {
        return longest;
    }

    /** The bytes of {@code token}, or null for a special one. */
    byte[] bytes(int token) {
        return bytesById[token];
    }

    boolean isEndOfSequence(int token) {
        return endOfSequence.get(token);
    }

    /** Adds the end-of-sequence tokens to {@code allowed}. */
    void allowEnd(BitSet allowed) {
        allowed.or(endOfSequence);
    }

    /** Adds to {@code allowed} every token whose bytes {@code state} reads whole. */
    void allowed(JsonMachine.State state, BitSet allowed) {
        new Walk(allowed).from(0, state);
    }

    /**
     * One walk of the trie. Most of its nodes meet a state some other node met before (inside a string every letter
     * leads to the same state), so each state's step on a byte is computed once: the states reached are interned (equal
     * states become one object) and each keeps its 256 successors, found by identity.
     */
    private final class Walk {
        /** Where a byte cannot be read. */
        private static final JsonMachine.State DEAD = new JsonMachine.State(java.util.List.of());

        private final BitSet allowed;
        private final Map<JsonMachine.State, JsonMachine.State> interned = new HashMap<>();
        private final Map<JsonMachine.State, JsonMachine.State[]> successors = new IdentityHashMap<>();

        Walk(BitSet allowed) {
            this.allowed = allowed;
        }

        void from(int node, JsonMachine.State state) {
            JsonMachine.State[] next = successors.computeIfAbsent(state, s -> new JsonMachine.State[256]);
            for (int child = node + 1; child < end[node]; child = end[child]) {
                int b = label[child] & 0xff;
                JsonMachine.State reached = next[b];
                if (reached == null) {
                    JsonMachine.State read = state.read(b);
                    reached = read == null ? DEAD : interned.computeIfAbsent(read, r -> r);
                    next[b] = reached;
                }
                if (reached != DEAD) {
                    for (int t = tokenStart[child]; t < tokenStart[child + 1]; t++) {
                        allowed.set(tokens[t]);
                    }
                    from(child, reached);
                }
            }
        }
    }
}
