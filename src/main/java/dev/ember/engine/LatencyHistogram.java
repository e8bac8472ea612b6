package dev.ember.engine;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.DoubleAdder;

/**
 * Counts latencies into fixed buckets, the way Prometheus histograms expose them. One thread observes (the
 * engine thread); any thread may take a {@link #snapshot()}.
 */
public final class LatencyHistogram {
    private final double[] upperBoundsSeconds;
    /** Per bucket, not cumulative; the last slot is the +Inf bucket. */
    private final AtomicLongArray counts;
    private final DoubleAdder sumSeconds = new DoubleAdder();

    /** @param upperBoundsSeconds the buckets' upper bounds, increasing; a +Inf bucket is implied */
    public LatencyHistogram(double... upperBoundsSeconds) {
        for (int i = 1; i < upperBoundsSeconds.length; i++) {
            if (!(upperBoundsSeconds[i] > upperBoundsSeconds[i - 1])) {
                throw new IllegalArgumentException("bucket bounds must increase: " + Arrays.toString(upperBoundsSeconds));
            }
        }
        this.upperBoundsSeconds = upperBoundsSeconds.clone();
        this.counts = new AtomicLongArray(upperBoundsSeconds.length + 1);
    }

    public void observeNanos(long nanos) {
        double seconds = nanos / 1e9;
        int bucket = Arrays.binarySearch(upperBoundsSeconds, seconds);
        // An observation equal to a bound belongs to that bucket (le = "less than or equal").
        counts.incrementAndGet(bucket >= 0 ? bucket : -bucket - 1);
        sumSeconds.add(seconds);
    }

    /**
     * @param upperBoundsSeconds   the finite bounds
     * @param cumulativeCounts     observations at or below each bound, then the total (the +Inf bucket)
     */
    public record Snapshot(double[] upperBoundsSeconds, long[] cumulativeCounts, double sumSeconds) {
        public long count() {
            return cumulativeCounts[cumulativeCounts.length - 1];
        }
    }

    public Snapshot snapshot() {
        long[] cumulative = new long[counts.length()];
        long total = 0;
        for (int i = 0; i < cumulative.length; i++) {
            total += counts.get(i);
            cumulative[i] = total;
        }
        return new Snapshot(upperBoundsSeconds.clone(), cumulative, sumSeconds.sum());
    }
}
