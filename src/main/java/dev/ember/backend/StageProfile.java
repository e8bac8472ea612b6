package dev.ember.backend;

/**
 * Where a runner reports the time of each stage of its steps while profiling is on
 * ({@link ModelRunner#profileStages}). {@link #OFF} turns profiling off; {@link StageTotals} sums what it is told.
 */
public sealed interface StageProfile permits StageProfile.Off, StageTotals {
    /** No profiling: a runner given it times nothing. */
    StageProfile OFF = new Off();

    boolean enabled();

    /** Adds {@code nanos} to {@code stage}'s time. */
    void add(Stage stage, long nanos);

    /** Adds {@code nanos} to decoder layer {@code layer}'s time (all its stages together). */
    void addLayer(int layer, long nanos);

    final class Off implements StageProfile {
        private Off() {
        }

        @Override
        public boolean enabled() {
            return false;
        }

        @Override
        public void add(Stage stage, long nanos) {
            throw new IllegalStateException("stage profiling is off");
        }

        @Override
        public void addLayer(int layer, long nanos) {
            throw new IllegalStateException("stage profiling is off");
        }
    }
}
