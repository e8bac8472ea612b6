package dev.ember.sampling;

import java.util.Arrays;

/**
 * HF's {@code RepetitionPenaltyLogitsProcessor} (from the CTRL paper): every token id seen so far, in the
 * prompt or the output, has its logit pushed toward "less likely", once however often it was seen:
 * {@code logit < 0 ? logit * penalty : logit / penalty}.
 */
final class RepetitionPenalty {
    private final float penalty;
    /** One bit per vocabulary id: seen or not. A bitset rather than a boolean[] keeps a sequence's cost at V/8 bytes. */
    private final long[] seen;
    /** The distinct seen ids in first-seen order, so that applying the penalty costs O(distinct), not O(vocab). */
    private int[] seenIds = new int[64];
    private int seenCount;

    RepetitionPenalty(float penalty, int vocabSize) {
        this.penalty = penalty;
        this.seen = new long[(vocabSize + 63) >>> 6];
    }

    void observe(int tokenId) {
        long bit = 1L << tokenId;
        int word = tokenId >>> 6;
        if ((seen[word] & bit) != 0) {
            return;
        }
        seen[word] |= bit;
        if (seenCount == seenIds.length) {
            seenIds = Arrays.copyOf(seenIds, seenCount * 2);
        }
        seenIds[seenCount++] = tokenId;
    }

    /** Penalises the seen ids of the row at {@code offset}, in place. */
    void apply(float[] logits, int offset) {
        for (int i = 0; i < seenCount; i++) {
            int at = offset + seenIds[i];
            float logit = logits[at];
            logits[at] = logit < 0 ? logit * penalty : logit / penalty;
        }
    }
}
