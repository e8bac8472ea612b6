package dev.ember.engine;

import dev.ember.sampling.TokenLogprobs;

/** What a streaming request's consumer receives from the engine thread, in order: tokens, then one {@link Done}. */
public sealed interface RequestEvent {

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
