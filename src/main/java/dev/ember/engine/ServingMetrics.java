package dev.ember.engine;

import dev.ember.scheduler.FinishReason;

import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

/**
 * Counters and latency histograms of a {@link ServingEngine}, recorded on its engine thread and readable from
 * any thread (the server's {@code /metrics}). Bucket bounds follow vLLM's, with finer ones below 10 ms for
 * GPU decode steps.
 */
public final class ServingMetrics {
    private final LatencyHistogram timeToFirstToken = new LatencyHistogram(
            0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640);
    private final LatencyHistogram interTokenLatency = new LatencyHistogram(
            0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 10, 20);
    private final LatencyHistogram endToEnd = new LatencyHistogram(
            0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920);
    private final LatencyHistogram queueTime = new LatencyHistogram(
            0.001, 0.005, 0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 60, 120, 240, 480, 960);
    private final LongAdder promptTokens = new LongAdder();
    private final LongAdder generationTokens = new LongAdder();
    private final Map<FinishReason, LongAdder> finished = new EnumMap<>(FinishReason.class);
    private final LongAdder failed = new LongAdder();

    ServingMetrics() {
        for (FinishReason r : FinishReason.values()) {
            finished.put(r, new LongAdder());
        }
    }

    void requestStarted(int promptLength) {
        promptTokens.add(promptLength);
    }

    void firstToken(long ttftNanos) {
        generationTokens.increment();
        timeToFirstToken.observeNanos(ttftNanos);
    }

    void nextToken(long gapNanos) {
        generationTokens.increment();
        interTokenLatency.observeNanos(gapNanos);
    }

    void requestFinished(RequestOutput output) {
        finished.get(output.finishReason()).increment();
        endToEnd.observeNanos(output.timings().e2eNanos());
        queueTime.observeNanos(output.timings().queueNanos());
    }

    void requestFailed() {
        failed.increment();
    }

    public LatencyHistogram.Snapshot timeToFirstToken() {
        return timeToFirstToken.snapshot();
    }

    public LatencyHistogram.Snapshot interTokenLatency() {
        return interTokenLatency.snapshot();
    }

    public LatencyHistogram.Snapshot endToEndLatency() {
        return endToEnd.snapshot();
    }

    public LatencyHistogram.Snapshot queueTime() {
        return queueTime.snapshot();
    }

    /** Prompt tokens of every request accepted by the engine. */
    public long promptTokens() {
        return promptTokens.sum();
    }

    /** Tokens generated, those of cancelled requests included. */
    public long generationTokens() {
        return generationTokens.sum();
    }

    public long finishedRequests(FinishReason reason) {
        return finished.get(reason).sum();
    }

    /** Requests rejected, cancelled, or cut off by a shutdown or an engine failure. */
    public long failedRequests() {
        return failed.sum();
    }
}
