package dev.ember.trace;

/**
 * Where timed spans of the runtime go. Code that may be traced holds a {@code Trace} ({@link #OFF} unless a user
 * asked for a trace) and brackets each stage:
 *
 * <pre>{@code
 * long t = trace.start();
 * runner.forward(batch, logits);
 * trace.end(Trace.ENGINE, "decode_step", t);
 * }</pre>
 *
 * When off, {@code start} returns 0 and {@code end} does nothing: no clock read, no allocation. When recording,
 * timestamps are {@link System#nanoTime()}. A span measured some other way (GPU events, say) is handed over whole with
 * {@link #span}.
 */
public sealed interface Trace permits Trace.Off, TraceRecorder {
    /** Category of the engine's steps: prefill chunks, decode steps, sampling. */
    String ENGINE = "engine";
    /** Category of a forward pass's stages (embedding, attention, ffn, ...) and decoder layers, from the runners' timers. */
    String STAGE = "stage";
    /** Category of a kernel benchmark's measurements: one kernel at one shape, all its runs. */
    String KERNEL = "kernel";
    /** Category of a load generator's requests, as the client saw them (bench client). */
    String CLIENT = "client";

    /** Records nothing and costs nothing. */
    Trace OFF = new Off();

    boolean enabled();

    /** The start of a span: now, or 0 when off. */
    long start();

    /** Records a span that began at {@code startNanos} and ends now; returns now (0 when off), the start of a next span. */
    long end(String category, String name, long startNanos);

    /** As {@link #end(String, String, long)}, with one numeric argument shown beside the span. */
    long end(String category, String name, long startNanos, String argName, long argValue);

    /** Records a span timed elsewhere: it began at {@code startNanos} (nanoTime's clock) and lasted {@code durationNanos}. */
    void span(String category, String name, long startNanos, long durationNanos);

    /** As {@link #span(String, String, long, long)}, with one numeric argument shown beside the span. */
    void span(String category, String name, long startNanos, long durationNanos, String argName, long argValue);

    /** Records the value of a counter track (power in watts, say) at this moment. */
    void counter(String name, double value);

    /** The trace that is off. */
    final class Off implements Trace {
        private Off() {
        }

        @Override
        public boolean enabled() {
            return false;
        }

        @Override
        public long start() {
            return 0;
        }

        @Override
        public long end(String category, String name, long startNanos) {
            return 0;
        }

        @Override
        public long end(String category, String name, long startNanos, String argName, long argValue) {
            return 0;
        }

        @Override
        public void span(String category, String name, long startNanos, long durationNanos) {
        }

        @Override
        public void span(String category, String name, long startNanos, long durationNanos, String argName, long argValue) {
        }

        @Override
        public void counter(String name, double value) {
        }
    }
}
