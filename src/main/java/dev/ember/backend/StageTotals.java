package dev.ember.backend;

import dev.ember.nativelib.Nvtx;
import dev.ember.trace.Trace;

import java.util.Arrays;

/**
 * Stage times summed since the last {@link #reset}; a stage never reported stays unmeasured, not zero. Given a
 * recording {@link Trace}, every reported span also becomes a span of category {@link Trace#STAGE} (named by
 * {@link Stage#label()}, with its layer as argument), and each run of spans within one decoder layer a span
 * {@code layer N} around them.
 */
public final class StageTotals implements StageProfile {
    private static final Stage[] STAGES = Stage.values();
    private final long[] nanos = new long[STAGES.length];
    private final boolean[] measured = new boolean[STAGES.length];
    private long[] layerNanos = new long[0];
    private final Trace trace;
    private final Nvtx nvtx;
    /** The layer whose span the trace has yet to be given, from its first stage's start to its last stage's end. */
    private int tracedLayer = StageClock.NO_LAYER;
    private long layerStart, layerEnd;

    /** Totals only: no trace, no NVTX ranges. */
    public StageTotals() {
        this(Trace.OFF, Nvtx.OFF);
    }

    public StageTotals(Trace trace, Nvtx nvtx) {
        this.trace = trace;
        this.nvtx = nvtx;
    }

    @Override
    public boolean enabled() {
        return true;
    }

    @Override
    public Nvtx nvtx() {
        return nvtx;
    }

    @Override
    public void add(Stage stage, int layer, long startNanos, long nanos) {
        this.nanos[stage.ordinal()] += nanos;
        measured[stage.ordinal()] = true;
        if (layer != StageClock.NO_LAYER) {
            if (layer >= layerNanos.length) {
                layerNanos = Arrays.copyOf(layerNanos, layer + 1);
            }
            layerNanos[layer] += nanos;
        }
        if (trace.enabled()) {
            trace(stage, layer, startNanos, nanos);
        }
    }

    private void trace(Stage stage, int layer, long startNanos, long nanos) {
        if (layer != tracedLayer) {
            traceLayer();
            tracedLayer = layer;
            layerStart = startNanos;
        }
        layerEnd = startNanos + nanos;
        if (layer == StageClock.NO_LAYER) {
            trace.span(Trace.STAGE, stage.label(), startNanos, nanos);
        } else {
            trace.span(Trace.STAGE, stage.label(), startNanos, nanos, "layer", layer);
        }
    }

    /** Hands the trace the span of the layer being traced, if any; a step's last stages (outside the layers) end it. */
    private void traceLayer() {
        if (tracedLayer != StageClock.NO_LAYER) {
            trace.span(Trace.STAGE, StageClock.layerName(tracedLayer), layerStart, layerEnd - layerStart, "layer", tracedLayer);
        }
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
