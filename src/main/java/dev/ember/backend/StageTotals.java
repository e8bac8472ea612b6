package dev.ember.backend;

import java.util.Arrays;

/** Stage times summed since the last {@link #reset}; a stage never reported stays unmeasured, not zero. */
public final class StageTotals implements StageProfile {
    private static final Stage[] STAGES = Stage.values();
    private final long[] nanos = new long[STAGES.length];
    private final boolean[] measured = new boolean[STAGES.length];
    private long[] layerNanos = new long[0];

    @Override
    public boolean enabled() {
        return true;
    }

    @Override
    public void add(Stage stage, long nanos) {
        this.nanos[stage.ordinal()] += nanos;
        measured[stage.ordinal()] = true;
    }

    @Override
    public void addLayer(int layer, long nanos) {
        if (layer >= layerNanos.length) {
            layerNanos = Arrays.copyOf(layerNanos, layer + 1);
        }
        layerNanos[layer] += nanos;
    }

    /** Layers reported so far: one more than the highest index. */
    public int layers() {
        return layerNanos.length;
    }

    public double layerMillis(int layer) {
        return layer < layerNanos.length ? layerNanos[layer] / 1e6 : 0;
    }

    public void reset() {
        layerNanos = new long[0];
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
