package dev.ember.backend;

/** A step a runner has queued ({@link ModelRunner#submit}); its tokens are known once {@link #await} returns. */
@FunctionalInterface
public interface SubmittedStep {
    /**
     * Waits for the step and writes each chunk's sampled token into {@code tokens} (-1 for a chunk without a sampler).
     * Called once per step, in submission order.
     */
    void await(int[] tokens);
}
