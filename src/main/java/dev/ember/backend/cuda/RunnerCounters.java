package dev.ember.backend.cuda;

import dev.ember.backend.StepCounters;

/**
 * The CUDA runner's running totals, as plain fields: the runner, its decode graphs and its submitted steps each add to
 * them on the hot path, where a few clock reads per step are all the counting may cost. {@link #snapshot} is what
 * {@link CudaModelRunner#counters} reports.
 */
final class RunnerCounters {
    long steps, replayedSteps, paddedRows, graphsCaptured, captureNanos, prepareNanos, chooseNanos, launchNanos, waitNanos,
            forwardNanos;

    StepCounters snapshot() {
        return new StepCounters(steps, replayedSteps, paddedRows, graphsCaptured, captureNanos, prepareNanos, chooseNanos,
                launchNanos, waitNanos, forwardNanos);
    }
}
