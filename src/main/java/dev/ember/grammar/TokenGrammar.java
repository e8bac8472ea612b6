package dev.ember.grammar;

import dev.ember.sampling.OutputGrammar;

import java.util.BitSet;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * An {@link OutputGrammar} of a {@link JsonMachine}, its masks found by walking a {@link VocabularyTrie}. The mask of a
 * state is kept once found (states compare by value): the steps inside one string, or between the same keys, meet the
 * same few states again, so most steps read a mask rather than walk the vocabulary.
 */
public final class TokenGrammar implements OutputGrammar {
    /**
     * The masks kept per grammar before they are dropped and found anew: a mask is a bit per token (19 KB for Qwen's
     * vocabulary), so this and {@code Grammars}' count of grammars bound what a server's grammars hold to about 300 MB.
     */
    private static final int MAX_MASKS = 512;

    private final VocabularyTrie trie;
    private final JsonMachine.State start;
    private final String description;
    private final Map<JsonMachine.State, BitSet> masks = new ConcurrentHashMap<>();

    private TokenGrammar(VocabularyTrie trie, JsonMachine.State start, String description) {
        this.trie = trie;
        this.start = start;
        this.description = description;
    }

    /** A JSON value of {@code shape}, alone (whitespace before it allowed, nothing after it). */
    public static TokenGrammar json(JsonShape shape, VocabularyTrie trie, String description) {
        return new TokenGrammar(trie, JsonMachine.State.value(shape), description);
    }

    /** Exactly {@code before}, a JSON value of {@code shape}, then exactly {@code after} (either may be empty). */
    static TokenGrammar between(String before, JsonShape shape, String after, VocabularyTrie trie, String description) {
        return new TokenGrammar(trie, JsonMachine.State.between(before, shape, after), description);
    }

    /** {@code before}, one to {@code most} values of {@code shape} between {@code separator}s, then {@code after}. */
    static TokenGrammar repeated(String before, JsonShape shape, String separator, String after, int most, VocabularyTrie trie,
                                 String description) {
        return new TokenGrammar(trie, JsonMachine.State.repeated(before, shape, separator, after, most), description);
    }

    /** A text {@code regex} matches whole (vLLM's guided_regex). */
    static TokenGrammar pattern(Regex regex, VocabularyTrie trie) {
        return new TokenGrammar(trie, JsonMachine.State.pattern(regex), "the regular expression " + regex.source());
    }

    /** A text of a GBNF grammar's root rule (llama.cpp's grammar, vLLM's guided_grammar). */
    static TokenGrammar grammar(Gbnf grammar, VocabularyTrie trie) {
        return new TokenGrammar(trie, JsonMachine.State.grammar(grammar), "the grammar given");
    }

    /** Exactly one of {@code choices}, byte for byte. */
    public static TokenGrammar choice(java.util.List<String> choices, VocabularyTrie trie) {
        return new TokenGrammar(trie, JsonMachine.State.text(new JsonShape.Choice(choices)), "one of " + choices.size() + " choices");
    }

    @Override
    public Matcher start() {
        return new TrieMatcher();
    }

    @Override
    public String describe() {
        return description;
    }

    private BitSet mask(JsonMachine.State reached) {
        JsonMachine.State state = reached.representative(trie.longestToken());
        BitSet mask = masks.get(state);
        if (mask == null) {
            mask = new BitSet(trie.vocabSize());
            trie.allowed(state, mask);
            if (state.accepting()) {
                trie.allowEnd(mask);
            }
            if (masks.size() >= MAX_MASKS) {
                masks.clear();
            }
            masks.put(state, mask);
        }
        return mask;
    }

    /** A sequence's state in the machine: null once it ended, or once a token left the grammar. */
    private final class TrieMatcher implements Matcher {
        private JsonMachine.State state = start;

        @Override
        public void allowedTokens(BitSet allowed) {
            allowed.clear();
            if (state != null) {
                allowed.or(mask(state));
            }
            if (allowed.isEmpty()) {
                trie.allowEnd(allowed);
            }
        }

        @Override
        public void accept(int token) {
            if (state == null || trie.isEndOfSequence(token)) {
                state = null;
                return;
            }
            byte[] bytes = trie.bytes(token);
            JsonMachine.State next = bytes == null ? null : state;
            for (int i = 0; next != null && i < bytes.length; i++) {
                next = next.read(bytes[i] & 0xff);
            }
            state = next;
        }
    }
}
