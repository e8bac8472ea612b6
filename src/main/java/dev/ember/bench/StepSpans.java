package dev.ember.bench;

import dev.ember.nativelib.Nvtx;
import dev.ember.trace.Trace;

/**
 * A benchmark's own spans around what it times (the runner's steps, a kernel's runs): in the trace, under
 * {@code category}, and as NVTX ranges. Free when both are off. Names should be few, as {@link Nvtx} keeps each
 * name it is given.
 */
record StepSpans(Trace trace, Nvtx nvtx, String category) {
    static final StepSpans OFF = steps(Trace.OFF, Nvtx.OFF);

    /** Spans of the engine's steps ({@link Trace#ENGINE}): prefill chunks and decode steps. */
    static StepSpans steps(Trace trace, Nvtx nvtx) {
        return new StepSpans(trace, nvtx, Trace.ENGINE);
    }

    /** Opens a span named {@code name}; returns its start, for {@link #end}. */
    long begin(String name) {
        nvtx.push(name);
        return trace.start();
    }

    /** Closes the span {@link #begin} opened, with one numeric argument beside it in the trace. */
    void end(String name, long start, String argName, long argValue) {
        nvtx.pop();
        trace.end(category, name, start, argName, argValue);
    }
}
