package dev.ember.engine;

import dev.ember.scheduler.Sequence;

/** Receives one request's progress, on the engine thread: keep it short and never block. */
public interface RequestListener {
    RequestListener NONE = new RequestListener() {
    };

    /** A token was generated; return true to end the request now (a stop string matched, the client left). */
    default boolean onToken(Sequence sequence, int token) {
        return false;
    }

    /** The request ended; its blocks are already released. */
    default void onFinish(Sequence sequence) {
    }
}
