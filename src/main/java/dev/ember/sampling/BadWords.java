package dev.ember.sampling;

import java.util.BitSet;
import java.util.List;

/**
 * vLLM's {@code bad_words}: token sequences that may not be generated. The last token of a sequence is masked wherever
 * the tokens before it are the output's last ones (a one-token sequence always), so the word can never be completed;
 * the output's tokens are followed as they are drawn. Every token but those stays allowed.
 */
public final class BadWords implements OutputGrammar {
    private final List<int[]> sequences;
    private final int vocabSize;

    /** @param sequences the banned token sequences, each at least one token; {@code vocabSize} the sampler's */
    public BadWords(List<int[]> sequences, int vocabSize) {
        if (sequences.isEmpty() || sequences.stream().anyMatch(s -> s.length == 0)) {
            throw new IllegalArgumentException("bad words: at least one sequence, each of at least one token");
        }
        this.sequences = sequences.stream().map(int[]::clone).toList();
        this.vocabSize = vocabSize;
    }

    @Override
    public Matcher start() {
        int longest = sequences.stream().mapToInt(s -> s.length).max().orElse(1);
        return new Matcher() {
            private final int[] recent = new int[Math.max(1, longest - 1)];
            private int seen;

            @Override
            public void allowedTokens(BitSet allowed) {
                allowed.clear();
                allowed.set(0, vocabSize);
                for (int[] banned : sequences) {
                    if (endsWith(banned, banned.length - 1)) {
                        allowed.clear(banned[banned.length - 1]);
                    }
                }
                if (allowed.isEmpty()) {
                    allowed.set(0, vocabSize);  // a ban of every token is no ban at all
                }
            }

            /** Whether the output's last tokens are the first {@code count} of {@code sequence}. */
            private boolean endsWith(int[] sequence, int count) {
                if (count > Math.min(seen, recent.length)) {
                    return false;
                }
                for (int i = 0; i < count; i++) {
                    if (recent[Math.floorMod(seen - count + i, recent.length)] != sequence[i]) {
                        return false;
                    }
                }
                return true;
            }

            @Override
            public void accept(int token) {
                recent[Math.floorMod(seen, recent.length)] = token;
                seen++;
            }
        };
    }

    @Override
    public String describe() {
        return "bad_words (" + sequences.size() + " token sequences)";
    }
}
