package dev.ember.bench.client;

/**
 * What one request measured, in {@link System#nanoTime()} nanoseconds: when it was due (its scheduled arrival),
 * when it was sent, when each streamed chunk that carried text arrived, when the stream ended; and the token
 * counts of the server's {@code usage}. A failed request has an error and no figures.
 *
 * @param tokenEvents arrival time of each chunk that carried generated text, in order
 */
public record RequestOutcome(long scheduledNanos, long sentNanos, long[] tokenEvents, long endNanos, int promptTokens,
                             int outputTokens, String error) {

    public static RequestOutcome failed(long scheduledNanos, long sentNanos, String error) {
        return new RequestOutcome(scheduledNanos, sentNanos, new long[0], sentNanos, 0, 0, error);
    }

    public boolean succeeded() {
        return error == null;
    }

    /** Client-side queueing: from the scheduled arrival to the send (waiting for a concurrency slot, or late). */
    public double queueMillis() {
        return (sentNanos - scheduledNanos) / 1e6;
    }

    /** Time to first token, from the send. */
    public double ttftMillis() {
        return (tokenEvents[0] - sentNanos) / 1e6;
    }

    /** End-to-end latency, from the send to the end of the stream. */
    public double e2elMillis() {
        return (endNanos - sentNanos) / 1e6;
    }

    /** Time per output token after the first: (e2el - ttft) / (output tokens - 1); NaN for a single token. */
    public double tpotMillis() {
        return outputTokens > 1 ? (e2elMillis() - ttftMillis()) / (outputTokens - 1) : Double.NaN;
    }

    /** The gaps between consecutive text-carrying chunks. */
    public double[] itlMillis() {
        double[] itl = new double[Math.max(0, tokenEvents.length - 1)];
        for (int i = 0; i < itl.length; i++) {
            itl[i] = (tokenEvents[i + 1] - tokenEvents[i]) / 1e6;
        }
        return itl;
    }
}
