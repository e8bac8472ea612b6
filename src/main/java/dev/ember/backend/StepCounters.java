package dev.ember.backend;

/**
 * Where a runner's steps spent their time, counted since it was loaded (always on: a few clock reads per step).
 * Take a snapshot before and after a run and {@link #minus} them for the run's own figures.
 *
 * @param steps            forward calls
 * @param replayedSteps    steps run by replaying a captured graph
 * @param paddedRows       dummy rows added to replayed steps to reach a captured batch size
 * @param graphsCaptured   graphs captured (each a recording of every launch of a step, then instantiated)
 * @param captureNanos     host time capturing and instantiating graphs
 * @param prepareNanos     host time building and queuing each step's inputs (checks, metadata, its upload)
 * @param chooseNanos      host time timing candidate products before the first step of a new small size
 * @param launchNanos      host time queuing the step's work: one graph launch, or every kernel of an eager step
 * @param waitNanos        host time blocked until the device finished the step and its results were copied back
 * @param forwardNanos     host time inside the forward calls, all of the above included
 */
public record StepCounters(long steps, long replayedSteps, long paddedRows, long graphsCaptured, long captureNanos,
                           long prepareNanos, long chooseNanos, long launchNanos, long waitNanos, long forwardNanos) {
    /** What a runner that counts nothing reports. */
    public static final StepCounters NONE = new StepCounters(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    public long eagerSteps() {
        return steps - replayedSteps;
    }

    /**
     * Host time in the forward calls outside preparing, launching, waiting, choosing products and capturing: queuing the
     * copies back and the events of each step, and reading its results on the host.
     */
    public long otherNanos() {
        return forwardNanos - prepareNanos - launchNanos - waitNanos - chooseNanos - captureNanos;
    }

    /** The counts and times of {@code this} since {@code earlier}. */
    public StepCounters minus(StepCounters earlier) {
        return new StepCounters(steps - earlier.steps, replayedSteps - earlier.replayedSteps, paddedRows - earlier.paddedRows,
                graphsCaptured - earlier.graphsCaptured, captureNanos - earlier.captureNanos,
                prepareNanos - earlier.prepareNanos, chooseNanos - earlier.chooseNanos, launchNanos - earlier.launchNanos,
                waitNanos - earlier.waitNanos, forwardNanos - earlier.forwardNanos);
    }

    /**
     * One line: the step counts and where the forward calls' time went; {@code wallNanos} is the run's whole time,
     * whose part outside the forward calls is the engine's own (scheduling, retiring tokens).
     */
    public String describe(long wallNanos) {
        double perStep = Math.max(steps, 1) * 1e6;
        return String.format("%d steps (%d replayed, %d eager, %d padding rows), %d graphs captured in %.2f s; per step: "
                        + "prepare %.3f ms, launch %.3f ms, device wait %.3f ms, product choice %.3f ms, capture %.3f ms, "
                        + "engine outside the runner %.3f ms",
                steps, replayedSteps, eagerSteps(), paddedRows, graphsCaptured, captureNanos / 1e9, prepareNanos / perStep,
                launchNanos / perStep, waitNanos / perStep, chooseNanos / perStep, captureNanos / perStep,
                (wallNanos - forwardNanos) / perStep);
    }
}
