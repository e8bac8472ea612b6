package dev.ember.engine;

import dev.ember.scheduler.Sequence;

/** Receives one request's progress, on the engine thread: keep it short and never block. */
public interface RequestListener {
    RequestListener NONE = new RequestListener() {
    };

    /**
     * A token was generated, and {@code text} is what it released of the request's text (held-back text included when
     * it ended the request: then {@link #onFinish} follows at once).
     */
    default void onToken(Sequence sequence, int token, String text) {
    }

    /** The request ended (its {@link Sequence#finishReason()} says why); its blocks are already released. */
    default void onFinish(Sequence sequence) {
    }

    /**
     * The request failed ({@code message} says why: a row of logits it could not draw from) and was ended; its blocks
     * are already released, and {@link #onFinish} does not follow. The other requests go on.
     */
    default void onError(Sequence sequence, String message) {
    }
}
