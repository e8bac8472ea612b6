package dev.ember.bench.client;

import java.util.Arrays;

/**
 * What one request measured, in {@link System#nanoTime()} nanoseconds: when it was due (its scheduled arrival),
 * when it was sent, when each streamed chunk that carried text arrived, when the stream ended; and the token
 * counts of the server's {@code usage}. A failed request has an error and no figures.
 *
 * @param tokenEvents  per choice (a request with {@code n} > 1 streams several), the arrival time of each chunk of
 *                     that choice that carried generated text, in order
 * @param outputTokens the completion tokens of every choice together, as {@code usage} counts them
 */
public record RequestOutcome(long scheduledNanos, long sentNanos, long[][] tokenEvents, long endNanos, int promptTokens,
                             int outputTokens, String error) {

    public static RequestOutcome failed(long scheduledNanos, long sentNanos, String error) {
        return new RequestOutcome(scheduledNanos, sentNanos, new long[0][], sentNanos, 0, 0, error);
    }

    public boolean succeeded() {
        return error == null;
    }

    /** When the first text of any choice arrived. */
    public long firstTokenNanos() {
        return Arrays.stream(tokenEvents).filter(e -> e.length > 0).mapToLong(e -> e[0]).min().orElseThrow();
    }

    /** Client-side queueing: from the scheduled arrival to the send (waiting for a concurrency slot, or late). */
    public double queueMillis() {
        return (sentNanos - scheduledNanos) / 1e6;
    }

    /** Time to first token, from the send. */
    public double ttftMillis() {
        return (firstTokenNanos() - sentNanos) / 1e6;
    }

    /** End-to-end latency, from the send to the end of the stream. */
    public double e2elMillis() {
        return (endNanos - sentNanos) / 1e6;
    }

    /**
     * Time per output token after the first, of one sequence: (e2el - ttft) / (tokens a choice - 1), the choices
     * decoding side by side; NaN where a choice has a single token.
     */
    public double tpotMillis() {
        double tokensPerChoice = (double) outputTokens / tokenEvents.length;
        return tokensPerChoice > 1 ? (e2elMillis() - ttftMillis()) / (tokensPerChoice - 1) : Double.NaN;
    }

    /** The gaps between consecutive text-carrying chunks of the same choice. */
    public double[] itlMillis() {
        return Arrays.stream(tokenEvents).flatMapToDouble(events -> {
            double[] gaps = new double[Math.max(0, events.length - 1)];
            for (int i = 0; i < gaps.length; i++) {
                gaps[i] = (events[i + 1] - events[i]) / 1e6;
            }
            return Arrays.stream(gaps);
        }).toArray();
    }
}
