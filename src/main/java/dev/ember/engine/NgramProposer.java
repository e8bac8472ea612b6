package dev.ember.engine;

import dev.ember.scheduler.Sequence;
import dev.ember.trace.Trace;

import java.util.Arrays;
import java.util.List;

/**
 * Prompt lookup (n-gram) drafting, no model at all: the longest suffix of the sequence, of {@code maxN} tokens down
 * to {@code minN}, that occurred earlier in it proposes the tokens that followed its latest earlier occurrence. Text
 * that quotes or repeats its prompt (summaries, code edits, retrieval answers) drafts itself.
 */
public final class NgramProposer implements Proposer {
    private final int minN;
    private final int maxN;

    public NgramProposer(int minN, int maxN) {
        if (minN < 1 || maxN < minN) {
            throw new IllegalArgumentException("n-gram lengths " + minN + ".." + maxN);
        }
        this.minN = minN;
        this.maxN = maxN;
    }

    @Override
    public void propose(List<Sequence> sequences, int gamma, Trace trace) {  // a lookup: the engine's propose span is all of it
        for (Sequence s : sequences) {
            int room = Math.min(gamma, s.lengthLimit() - s.length() - 1);
            if (room > 0) {
                int[] draft = lookup(s.tokens(), room);
                // Cut where the target may not draw the token there (a stop token before min_tokens): it would be rejected.
                int drawable = 0;
                while (drawable < draft.length && s.sampler().mayDraw(draft[drawable], s.generatedCount() + drawable)) {
                    drawable++;
                }
                if (drawable > 0) {
                    s.propose(Arrays.copyOf(draft, drawable), null);
                }
            }
        }
    }

    /** Up to {@code room} tokens that followed the latest earlier occurrence of the longest matching suffix of {@code tokens}. */
    int[] lookup(int[] tokens, int room) {
        int length = tokens.length;
        for (int n = Math.min(maxN, length - 1); n >= minN; n--) {
            for (int start = length - n - 1; start >= 0; start--) {
                if (matches(tokens, start, length - n, n)) {
                    int from = start + n;
                    int count = Math.min(room, length - from);
                    int[] draft = new int[count];
                    System.arraycopy(tokens, from, draft, 0, count);
                    return draft;
                }
            }
        }
        return new int[0];
    }

    private static boolean matches(int[] tokens, int a, int b, int n) {
        for (int i = 0; i < n; i++) {
            if (tokens[a + i] != tokens[b + i]) {
                return false;
            }
        }
        return true;
    }

    @Override
    public String describe() {
        return "n-gram prompt lookup (" + minN + ".." + maxN + " tokens)";
    }
}
