package dev.ember.engine;

import dev.ember.sampling.ScoredToken;
import dev.ember.sampling.TokenLogprobs;

import java.util.List;

/**
 * What a streaming request's consumer receives from the engine thread, in order: the prompt's scores when the request
 * asked for them, tokens, then one {@link Done}.
 */
public sealed interface RequestEvent {

    /**
     * The prompt's tokens from the second on, each scored from the tokens before it
     * ({@link dev.ember.sampling.SamplingParams#promptLogprobs()}), ahead of the first generated token.
     */
    record PromptScores(List<ScoredToken> scores) implements RequestEvent {
        public PromptScores {
            scores = List.copyOf(scores);
        }
    }

    /**
     * One generated token and the text it completes: often empty, while a character or a possible stop string is
     * held back. The text of all tokens, concatenated, is a prefix of the final output's text. {@code logprobs} when
     * the request asked for them ({@link dev.ember.sampling.SamplingParams#logprobs()}), null otherwise.
     */
    record Token(int id, String text, TokenLogprobs logprobs) implements RequestEvent {
    }

    /** The request ended; no event follows. */
    record Done(RequestOutcome outcome) implements RequestEvent {
    }
}
