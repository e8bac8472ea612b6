package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.cli.ModelOptions;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.util.Locale;

/**
 * The options of the in-process serving benchmarks: the model and backend ({@link ModelOptions}) or a preset
 * shape with random weights, the scheduler's step budget and policy, and the KV cache's size.
 */
public final class EngineOptions {

    @Mixin
    ModelOptions model;

    @Spec(Spec.Target.MIXEE)
    CommandSpec command;

    @Option(names = "--preset", paramLabel = "NAME",
            description = "a published model shape with random bf16 weights instead of --model: qwen3-0.6b, qwen3-8b, llama-3.2-1b, llama-3.1-8b")
    String preset;

    @Option(names = "--max-num-batched-tokens", defaultValue = "8192",
            description = "most tokens (prefill chunks plus decodes) in one engine step; default: ${DEFAULT-VALUE}")
    int maxBatchedTokens;

    @Option(names = "--chunk-len", defaultValue = "2048",
            description = "most prompt tokens of one request in one step (chunked prefill); default: ${DEFAULT-VALUE}")
    int chunkLen;

    @Option(names = "--schedule-policy", paramLabel = "POLICY",
            description = "decode_first (decodes every step, prefill chunks in the budget left) or prefill_first (waiting prompts first, decodes pause)")
    String schedulePolicy;

    @Option(names = "--kv-cache-gb", paramLabel = "GIB",
            description = "KV cache size in GiB; default: on the GPU a share of its memory (--gpu-memory-utilization), on the CPU what the workload can use at once")
    Double kvCacheGib;

    @Option(names = "--gpu-memory-utilization", paramLabel = "FRACTION",
            description = "share of the GPU's memory for weights, step buffers and KV cache (the KV cache gets the rest, up to what the workload can use); default: 0.9")
    Double gpuMemoryUtilization;

    @Option(names = "--no-prefix-caching", description = "turn the prefix cache off")
    boolean noPrefixCaching;

    /** Whether --model was on the command line (its absence means the default model, unless --preset). */
    boolean modelGiven() {
        return command.commandLine().getParseResult().hasMatchedOption("--model");
    }

    SchedulePolicy policy(SchedulePolicy fallback) {
        if (schedulePolicy == null) {
            return fallback;
        }
        try {
            return SchedulePolicy.valueOf(schedulePolicy.toUpperCase(Locale.ROOT).replace('-', '_'));
        } catch (IllegalArgumentException e) {
            throw new EmberException("unknown --schedule-policy \"" + schedulePolicy + "\" (decode_first or prefill_first)");
        }
    }

    SchedulerConfig schedulerConfig(int maxRunning, SchedulePolicy fallback) {
        return new SchedulerConfig(maxRunning, maxBatchedTokens, chunkLen, policy(fallback), !noPrefixCaching);
    }
}
