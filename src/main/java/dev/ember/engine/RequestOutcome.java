package dev.ember.engine;

/** How a request submitted to the {@link ServingEngine} ended: generated text, or an error naming why not. */
public sealed interface RequestOutcome permits RequestOutput, RequestError {
}
