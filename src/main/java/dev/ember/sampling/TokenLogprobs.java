package dev.ember.sampling;

/**
 * A sampled token's log-probability under the model (the log-softmax of its raw logits, before penalties, bias and
 * temperature, as vLLM reports by default) and the most likely tokens of the same row with theirs, most likely first
 * (equal logits: the lower id first).
 */
public record TokenLogprobs(int token, float logprob, int[] topTokens, float[] topLogprobs) {

    /**
     * @throws IllegalArgumentException if the lengths differ, or a log-probability is NaN (a row of logits holding a
     *                                  NaN has none, and JSON could not carry it), wherever they were computed
     */
    public TokenLogprobs {
        if (topTokens.length != topLogprobs.length) {
            throw new IllegalArgumentException(topTokens.length + " top tokens but " + topLogprobs.length + " log-probabilities");
        }
        boolean nan = Float.isNaN(logprob);
        for (float p : topLogprobs) {
            nan |= Float.isNaN(p);
        }
        if (nan) {
            throw new IllegalArgumentException("a row of logits holding a NaN has no log-probabilities (token " + token + ")");
        }
        topTokens = topTokens.clone();
        topLogprobs = topLogprobs.clone();
    }

    @Override
    public int[] topTokens() {
        return topTokens.clone();
    }

    @Override
    public float[] topLogprobs() {
        return topLogprobs.clone();
    }

    /**
     * Reads them off a row of raw logits: its log-sum-exp, the {@code top} largest logits, and {@code token}'s own. What
     * {@link Sampler#sample} records, and the reference a device's logprobs are checked against.
     *
     * @throws IllegalArgumentException if the row holds no finite logit
     */
    public static TokenLogprobs of(float[] logits, int offset, int vocabSize, int token, int top) {
        float max = Float.NEGATIVE_INFINITY;
        for (int id = 0; id < vocabSize; id++) {
            max = Math.max(max, logits[offset + id]);
        }
        if (!Float.isFinite(max)) {
            throw new IllegalArgumentException("a row of logits with no finite largest value (" + max + ") has no log-probabilities");
        }
        double sum = 0;
        int[] ids = new int[top];
        float[] best = new float[top];
        int found = 0;
        for (int id = 0; id < vocabSize; id++) {
            float logit = logits[offset + id];
            sum += Math.exp(logit - max);
            if (top > 0 && (found < top || logit > best[top - 1])) {
                int at = Math.min(found, top - 1);
                while (at > 0 && best[at - 1] < logit) {  // strictly less: an equal logit of a lower id stays ahead
                    best[at] = best[at - 1];
                    ids[at] = ids[at - 1];
                    at--;
                }
                best[at] = logit;
                ids[at] = id;
                found = Math.min(found + 1, top);
            }
        }
        float logSumExp = (float) (max + Math.log(sum));
        float[] topLogprobs = new float[found];
        for (int i = 0; i < found; i++) {
            topLogprobs[i] = best[i] - logSumExp;
        }
        return new TokenLogprobs(token, logits[offset + token] - logSumExp, java.util.Arrays.copyOf(ids, found), topLogprobs);
    }
}
