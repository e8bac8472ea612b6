package dev.ember.engine;

import dev.ember.scheduler.ScheduledStep;

/**
 * Watches the engine's steps, on the engine thread: what benchmarks time the engine by. A mark on the runner's work
 * ({@code ModelRunner.workMarks}) placed in {@link #submitted} falls right after that step's work, also when the next
 * step is already being prepared.
 */
public interface StepObserver {
    StepObserver NONE = new StepObserver() {
    };

    /** {@code step} was handed to the runner; the scheduler has advanced its sequences' computed positions. */
    default void submitted(ScheduledStep step) {
    }

    /** {@code step}'s tokens reached the host and were appended; finished sequences have left the scheduler. */
    default void retired(ScheduledStep step) {
    }
}
