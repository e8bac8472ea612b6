package dev.ember.bench.client;

/**
 * What every request of a client benchmark asks for beside its prompt and length.
 *
 * @param n           choices a request (OpenAI's {@code n}); each streams its own tokens and {@code usage} counts them all
 * @param logprobs    top log-probabilities asked for each token ({@code logprobs} of completions, {@code top_logprobs}
 *                    of chat), and checked in every answer; {@link #NO_LOGPROBS} for none
 * @param ignoreEos   vLLM's {@code ignore_eos}: generate {@code max_tokens} whatever the model says
 * @param temperature the sampling temperature sent
 */
public record RequestSettings(int n, int logprobs, boolean ignoreEos, double temperature) {
    public static final int NO_LOGPROBS = -1;

    public RequestSettings {
        if (n < 1) {
            throw new IllegalArgumentException("n must be at least 1, not " + n);
        }
        if (logprobs < NO_LOGPROBS) {
            throw new IllegalArgumentException("logprobs must be at least 0, not " + logprobs);
        }
    }

    public boolean wantsLogprobs() {
        return logprobs != NO_LOGPROBS;
    }
}
