package dev.ember.cli;

import dev.ember.EmberException;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import picocli.CommandLine.Option;

import java.util.Locale;

/** The batched engine's step budget and policy, shared by {@code ember serve}, {@code generate --prompts-file} and the serving benchmarks. */
public final class SchedulerOptions {

    @Option(names = "--max-num-batched-tokens", defaultValue = "8192",
            description = "most tokens (prefill chunks and decodes) in a step; default: ${DEFAULT-VALUE}")
    int maxNumBatchedTokens;

    @Option(names = "--chunk-len", defaultValue = "2048",
            description = "most prompt tokens of one request in a step (chunked prefill); default: ${DEFAULT-VALUE}")
    int chunkLen;

    @Option(names = "--schedule-policy", paramLabel = "POLICY",
            description = "decode-first (decodes every step, prompts fill the rest of the budget) or prefill-first (phase-aware: "
                    + "waiting prompts run first, decodes pause); default: decode-first, prefill-first for bench serve")
    String schedulePolicy;

    @Option(names = {"--no-prefix-cache", "--no-prefix-caching", "--no-enable-prefix-caching"},
            description = "do not reuse the KV blocks of identical prompt prefixes")
    boolean noPrefixCache;

    @Option(names = {"--no-overlap", "--disable-overlap-schedule"},
            description = "retire each step before scheduling the next, rather than preparing step N+1 while the device "
                    + "computes step N")
    boolean noOverlap;

    /**
     * The configuration for at most {@code maxRunning} requests per step (each command names that limit its own way:
     * {@code --max-num-seqs}, {@code --batch-size}), with {@code defaultPolicy} where --schedule-policy is absent.
     */
    public SchedulerConfig config(int maxRunning, SchedulePolicy defaultPolicy) {
        return new SchedulerConfig(maxRunning, maxNumBatchedTokens, chunkLen, policy(defaultPolicy), !noPrefixCache, !noOverlap);
    }

    private SchedulePolicy policy(SchedulePolicy defaultPolicy) {
        if (schedulePolicy == null) {
            return defaultPolicy;
        }
        try {
            return SchedulePolicy.valueOf(schedulePolicy.toUpperCase(Locale.ROOT).replace('-', '_'));
        } catch (IllegalArgumentException e) {
            throw new EmberException("unknown --schedule-policy \"" + schedulePolicy + "\" (decode-first or prefill-first)");
        }
    }
}
