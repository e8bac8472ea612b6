package dev.ember.engine;

import dev.ember.scheduler.SpeculationStats;

/**
 * The state of a {@link ServingEngine}, as its engine thread last published it (after each step).
 *
 * @param running         requests in the running batch
 * @param waiting         requests submitted but not running (queued, or preempted and waiting to be recomputed)
 * @param kvBlocksUsed    KV-cache blocks held by requests or by the prefix cache
 * @param kvBlocksTotal   KV-cache blocks in all
 * @param prefixCachedBlocks blocks the prefix cache holds (some may also be in use by requests)
 * @param prefixHitRate   share of looked-up prompt tokens found in the prefix cache (0 when it is off)
 * @param preemptions     requests preempted (and later recomputed) since the start
 * @param steps           engine steps run since the start
 * @param speculation     drafted tokens proposed and accepted since the start (all zero when the engine does not speculate)
 */
public record EngineStats(int running, int waiting, int kvBlocksUsed, int kvBlocksTotal, int prefixCachedBlocks,
                          double prefixHitRate, long preemptions, long steps, SpeculationStats.Snapshot speculation) {

    public double kvCacheUsage() {
        return kvBlocksTotal == 0 ? 0 : (double) kvBlocksUsed / kvBlocksTotal;
    }
}
