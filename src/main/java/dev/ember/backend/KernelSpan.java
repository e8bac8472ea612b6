package dev.ember.backend;

/**
 * One kernel as the device ran it ({@link KernelRecorder}): its name, its start and end on the device's clock
 * (nanoseconds), the stream it ran on and the graph it was a node of (0 where it was launched on its own).
 */
public record KernelSpan(String name, long startNanos, long endNanos, int stream, long graph) {
    public KernelSpan {
        if (endNanos < startNanos) {
            throw new IllegalArgumentException("kernel " + name + " ends at " + endNanos + " ns, before its start at " + startNanos);
        }
    }

    public long durationNanos() {
        return endNanos - startNanos;
    }
}
