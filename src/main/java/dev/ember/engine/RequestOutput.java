package dev.ember.engine;

import dev.ember.sampling.ScoredToken;
import dev.ember.sampling.TokenLogprobs;
import dev.ember.scheduler.FinishReason;

import java.util.List;

/**
 * A completed request.
 *
 * @param text               the generated text, special tokens and stop strings left out
 * @param promptTokens       the prompt's token ids
 * @param tokens             the generated token ids; a final end-of-sequence token, or the token that completed a
 *                           stop string, included (as in the {@code completion_tokens} of OpenAI's {@code usage})
 * @param cachedPromptTokens prompt tokens whose keys and values came from the prefix cache
 * @param logprobs           each generated token's log-probabilities, when the request asked for them; empty otherwise
 * @param promptLogprobs     the prompt's tokens from the second on, each scored from the tokens before it, when the
 *                           request asked for prompt logprobs; empty otherwise (the first token has no score)
 * @param stopString         the request's stop string that ended the output, or null
 * @param stopToken          the request's stop token ({@code stop_token_ids}) that ended the output, or -1
 */
public record RequestOutput(String text, int[] promptTokens, int[] tokens, FinishReason finishReason,
                            int cachedPromptTokens, RequestTimings timings, List<TokenLogprobs> logprobs,
                            List<ScoredToken> promptLogprobs, String stopString, int stopToken)
        implements RequestOutcome {

    public RequestOutput {
        promptTokens = promptTokens.clone();
        tokens = tokens.clone();
        logprobs = List.copyOf(logprobs);
        promptLogprobs = List.copyOf(promptLogprobs);
    }

    /** The sum of the generated tokens' log-probabilities (NaN without them): how likely the model found the output. */
    public double cumulativeLogprob() {
        if (logprobs.isEmpty() && tokens.length > 0) {
            return Double.NaN;
        }
        double sum = 0;
        for (TokenLogprobs l : logprobs) {
            sum += l.logprob();
        }
        return sum;
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
