package dev.ember.engine;

/** What a streaming request's consumer receives from the engine thread, in order: tokens, then one {@link Done}. */
public sealed interface RequestEvent {

    /**
     * One generated token and the text it completes: often empty, while a character or a possible stop string is
     * held back. The text of all tokens, concatenated, is a prefix of the final output's text.
     */
    record Token(int id, String text) implements RequestEvent {
    }

    /** The request ended; no event follows. */
    record Done(RequestOutcome outcome) implements RequestEvent {
    }
}
