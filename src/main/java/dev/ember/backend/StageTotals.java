package dev.ember.backend;

import java.util.Arrays;

/** Stage times summed since the last {@link #reset}; a stage never reported stays unmeasured, not zero. */
public final class StageTotals implements StageProfile {
    private static final Stage[] STAGES = Stage.values();
    private final long[] nanos = new long[STAGES.length];
    private final boolean[] measured = new boolean[STAGES.length];

    @Override
    public boolean enabled() {
        return true;
    }

    @Override
    public void add(Stage stage, long nanos) {
        this.nanos[stage.ordinal()] += nanos;
        measured[stage.ordinal()] = true;
    }

    public void reset() {
        Arrays.fill(nanos, 0);
        Arrays.fill(measured, false);
    }

    public boolean measured(Stage stage) {
        return measured[stage.ordinal()];
    }

    public double millis(Stage stage) {
        return nanos[stage.ordinal()] / 1e6;
    }

    /** The sum of every stage, in milliseconds. */
    public double totalMillis() {
        return Arrays.stream(nanos).sum() / 1e6;
    }
}
