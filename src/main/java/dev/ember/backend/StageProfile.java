package dev.ember.backend;

import dev.ember.nativelib.Nvtx;

/**
 * Where a runner reports the time of each stage of its steps while profiling is on
 * ({@link ModelRunner#profileStages}). {@link #OFF} turns profiling off; {@link StageTotals} sums what it is told and
 * can also hand every span to a trace.
 */
public sealed interface StageProfile permits StageProfile.Off, StageTotals {
    /** No profiling: a runner given it times nothing. */
    StageProfile OFF = new Off();

    boolean enabled();

    /**
     * Reports that {@code stage} ran for {@code nanos} from {@code startNanos} ({@link System#nanoTime()}'s clock),
     * within decoder layer {@code layer}, or outside the layers with {@link StageClock#NO_LAYER}.
     */
    void add(Stage stage, int layer, long startNanos, long nanos);

    /** Where a runner's clock opens NVTX ranges around the stages and layers it marks ({@link Nvtx#OFF}: nowhere). */
    Nvtx nvtx();

    final class Off implements StageProfile {
        private Off() {
        }

        @Override
        public boolean enabled() {
            return false;
        }

        @Override
        public void add(Stage stage, int layer, long startNanos, long nanos) {
            throw new IllegalStateException("stage profiling is off");
        }

        @Override
        public Nvtx nvtx() {
            return Nvtx.OFF;
        }
    }
}
