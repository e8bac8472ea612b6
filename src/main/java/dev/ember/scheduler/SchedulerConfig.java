package dev.ember.scheduler;

import dev.ember.EmberException;

/**
 * @param maxRunning        most sequences in a step (the decode batch size)
 * @param maxBatchedTokens  most tokens (prefill chunks plus decodes) in one step
 * @param chunkTokens       most prompt tokens of one sequence in one step (chunked prefill)
 * @param prefixCaching     reuse cached KV blocks of identical prompt prefixes
 * @param overlap           schedule and submit step N+1 while the device computes step N (its decodes take step N's
 *                          tokens on the device), rather than after step N's tokens reached the host
 */
public record SchedulerConfig(int maxRunning, int maxBatchedTokens, int chunkTokens, SchedulePolicy policy,
                              boolean prefixCaching, boolean overlap) {
    public SchedulerConfig {
        if (maxRunning < 1 || maxBatchedTokens < 1 || chunkTokens < 1) {
            throw new EmberException("scheduler limits must be positive: max running " + maxRunning
                    + ", max batched tokens " + maxBatchedTokens + ", chunk length " + chunkTokens);
        }
    }

    public static SchedulerConfig defaults() {
        return new SchedulerConfig(256, 8192, 2048, SchedulePolicy.DECODE_FIRST, true, true);
    }
}
