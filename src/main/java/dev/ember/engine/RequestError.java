package dev.ember.engine;

/**
 * A request that produced no output: rejected (a prompt that cannot fit, a token outside the vocabulary),
 * cancelled, or cut off by the engine shutting down or failing.
 */
public record RequestError(String message) implements RequestOutcome {
}
