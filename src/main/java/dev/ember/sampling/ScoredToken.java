package dev.ember.sampling;

/**
 * A prompt token as the model scored it from the tokens before it (vLLM's {@code prompt_logprobs}): its log-probability
 * and the most likely tokens at its place ({@link TokenLogprobs}), and its rank among the row's logits, 1 for the most
 * likely (an equal logit of a lower id counts ahead, as in {@link TokenLogprobs#of}).
 */
public record ScoredToken(TokenLogprobs logprobs, int rank) {

    public ScoredToken {
        if (rank < 1) {
            throw new IllegalArgumentException("rank " + rank + " of token " + logprobs.token() + ": ranks start at 1");
        }
    }

    /** Reads them off a row of raw logits, as {@link TokenLogprobs#of} does, with the token's rank. */
    public static ScoredToken of(float[] logits, int offset, int vocabSize, int token, int top) {
        TokenLogprobs logprobs = TokenLogprobs.of(logits, offset, vocabSize, token, top);
        float own = logits[offset + token];
        int ahead = 0;
        for (int id = 0; id < vocabSize; id++) {
            float logit = logits[offset + id];
            ahead += logit > own || logit == own && id < token ? 1 : 0;
        }
        return new ScoredToken(logprobs, ahead + 1);
    }
}
