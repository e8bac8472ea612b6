package dev.ember.engine;

import dev.ember.scheduler.FinishReason;

/**
 * The outcome of one generation.
 *
 * @param text            the generated text, stop strings excluded
 * @param promptTokens    the prompt's token ids, as fed to the model
 * @param tokens          the generated token ids (a final end-of-sequence token included)
 * @param prefillNanos    from the start of the prefill to the first generated token (time to first token)
 * @param decodeNanos     from the first generated token to the last
 */
public record GenerationResult(String text, int[] promptTokens, int[] tokens, FinishReason finishReason,
                               long prefillNanos, long decodeNanos) {

    public double ttftMillis() {
        return prefillNanos / 1e6;
    }

    /** Tokens per second after the first one; NaN when fewer than two tokens were generated. */
    public double decodeTokensPerSecond() {
        return tokens.length < 2 || decodeNanos == 0 ? Double.NaN : (tokens.length - 1) / (decodeNanos / 1e9);
    }
}
