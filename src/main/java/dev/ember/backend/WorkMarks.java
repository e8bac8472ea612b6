package dev.ember.backend;

import java.util.Arrays;
import java.util.function.Consumer;

/**
 * Points marked along a runner's work, for a benchmark to time the work between them: {@link #onHost} reads the host's
 * clock when a point is marked; the CUDA backend records an event on its runner's stream
 * ({@link Backend#workMarks}), which the GPU timestamps when it reaches it, after all the work queued before.
 */
public interface WorkMarks extends AutoCloseable {

    /** Marks {@code point} (0 to the number of points less one) here: after all the work queued so far. */
    void mark(int point);

    /** Milliseconds from point {@code from} to point {@code to}, both marked; waits for the work before {@code to}. */
    double millisBetween(int from, int to);

    /** How the points are timed, for a benchmark's header. */
    String method();

    @Override
    void close();

    /** {@code points} points read from {@link System#nanoTime()} when they are marked. */
    static WorkMarks onHost(int points) {
        return onHost(points, Runnable::run);
    }

    /**
     * {@code points} points read from {@link System#nanoTime()} once the work queued before them is done:
     * {@code afterQueuedWork} runs the clock reading it is given then (at once when nothing is queued).
     */
    static WorkMarks onHost(int points, Consumer<Runnable> afterQueuedWork) {
        long[] nanos = new long[points];
        Arrays.fill(nanos, -1);
        return new WorkMarks() {
            @Override
            public void mark(int point) {
                nanos[point] = -1;
                afterQueuedWork.accept(() -> nanos[point] = System.nanoTime());
            }

            @Override
            public double millisBetween(int from, int to) {
                if (nanos[from] < 0 || nanos[to] < 0) {
                    throw new IllegalStateException("point " + (nanos[from] < 0 ? from : to)
                            + " was not marked, or the work before it is not done");
                }
                return (nanos[to] - nanos[from]) / 1e6;
            }

            @Override
            public String method() {
                return "host clock (System.nanoTime) as whole steps complete";
            }

            @Override
            public void close() {
            }
        };
    }
}
