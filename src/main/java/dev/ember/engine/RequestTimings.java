package dev.ember.engine;

import java.util.Arrays;

/**
 * Where one request's time went, measured on the engine thread from the moment it was submitted.
 *
 * @param queueNanos      submitted until first scheduled into a step (waiting for a batch slot and KV blocks)
 * @param ttftNanos       submitted until its first token was sampled (time to first token); 0 when none was
 * @param e2eNanos        submitted until it finished
 * @param interTokenNanos the gap before each token after the first (inter-token latencies)
 */
public record RequestTimings(long queueNanos, long ttftNanos, long e2eNanos, long[] interTokenNanos) {

    public RequestTimings {
        interTokenNanos = interTokenNanos.clone();
    }

    @Override
    public long[] interTokenNanos() {
        return interTokenNanos.clone();
    }

    /** Mean gap between tokens after the first (time per output token); NaN with fewer than two tokens. */
    public double meanInterTokenMillis() {
        return interTokenNanos.length == 0 ? Double.NaN : Arrays.stream(interTokenNanos).average().orElseThrow() / 1e6;
    }

    public double ttftMillis() {
        return ttftNanos / 1e6;
    }

    public double e2eMillis() {
        return e2eNanos / 1e6;
    }

    public double queueMillis() {
        return queueNanos / 1e6;
    }
}
