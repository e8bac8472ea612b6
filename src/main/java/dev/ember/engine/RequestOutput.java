package dev.ember.engine;

import dev.ember.scheduler.FinishReason;

/**
 * A completed request.
 *
 * @param text               the generated text, special tokens and stop strings left out
 * @param promptTokens       the prompt's token ids
 * @param tokens             the generated token ids; a final end-of-sequence token, or the token that completed a
 *                           stop string, included (as in the {@code completion_tokens} of OpenAI's {@code usage})
 * @param cachedPromptTokens prompt tokens whose keys and values came from the prefix cache
 */
public record RequestOutput(String text, int[] promptTokens, int[] tokens, FinishReason finishReason,
                            int cachedPromptTokens, RequestTimings timings) implements RequestOutcome {

    public RequestOutput {
        promptTokens = promptTokens.clone();
        tokens = tokens.clone();
    }

    @Override
    public int[] promptTokens() {
        return promptTokens.clone();
    }

    @Override
    public int[] tokens() {
        return tokens.clone();
    }

    public int promptTokenCount() {
        return promptTokens.length;
    }

    public int generatedTokenCount() {
        return tokens.length;
    }
}
