package dev.ember.cli;

import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.backend.KvCacheMemory;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.scheduler.SchedulerConfig;
import picocli.CommandLine.Option;

import java.io.PrintStream;

/**
 * How large the paged KV cache of a serving engine is: an explicit size, or what a share of the device's memory
 * leaves after the weights and the step buffers (vLLM's {@code --gpu-memory-utilization}). On the CPU backend the
 * cache lives on the Java heap, so the share is of the heap ({@code -Xmx}).
 */
public final class KvCacheOptions {
    private static final double GIB = 1L << 30;

    @Option(names = "--kv-cache-gb", paramLabel = "GiB", description = "KV-cache size in GiB; default: what --gpu-memory-utilization leaves")
    Double kvCacheGb;

    @Option(names = "--gpu-memory-utilization", paramLabel = "FRACTION", defaultValue = "0.9",
            description = "share of GPU memory (on the CPU backend: of the Java heap) for weights, step buffers and KV cache; "
                    + "default: ${DEFAULT-VALUE}")
    double memoryUtilization;

    /**
     * The cache for serving {@code model} on {@code backend} under {@code scheduler}'s limits; says on {@code log}
     * how large it is and where the size came from. Never larger than {@code usefulTokens}, the most the workload
     * can use at once (for a server, every running sequence at full context; more would only hold cached prefixes).
     */
    public KvCacheSpec spec(Model model, Backend backend, SchedulerConfig scheduler, long usefulTokens, PrintStream log) {
        int elementBytes = backend.kvElementBytes(model.layers().getFirst().wq().dtype());
        return spec(model.config(), model.weightBytes(), elementBytes, backend, scheduler, usefulTokens, log);
    }

    /** As {@link #spec(Model, Backend, SchedulerConfig, long, PrintStream)}, for a model known by its shape and size. */
    public KvCacheSpec spec(ModelConfig config, long weightBytes, int elementBytes, Backend backend, SchedulerConfig scheduler,
                            long usefulTokens, PrintStream log) {
        KvCacheMemory memory = backend.kvCacheMemory(config, weightBytes, elementBytes, scheduler.maxBatchedTokens(),
                scheduler.maxRunning());
        long bytesPerToken = KvCacheSpec.forTokens(config, 1, 1).bytesPerToken(elementBytes);
        long budget;
        String source;
        if (kvCacheGb != null) {
            if (!(kvCacheGb > 0) || kvCacheGb.isInfinite()) {
                throw new EmberException("--kv-cache-gb must be a positive number, got " + kvCacheGb);
            }
            budget = (long) (kvCacheGb * GIB);
            source = "--kv-cache-gb";
        } else {
            if (!(memoryUtilization > 0 && memoryUtilization <= 1)) {
                throw new EmberException("--gpu-memory-utilization must be in (0, 1], got " + memoryUtilization);
            }
            budget = memory.budget(memoryUtilization);
            source = String.format("%.0f%% of %s", 100 * memoryUtilization, memory.name());
        }
        long budgetTokens = budget / bytesPerToken;
        long tokens = Math.min(Math.min(budgetTokens, usefulTokens), memory.maxTokens());
        int blockSize = KvCacheSpec.DEFAULT_BLOCK_SIZE;
        if (tokens < blockSize) {
            throw new EmberException(String.format("no memory left for the KV cache (%s gives %.2f GiB, one token needs %d bytes); "
                    + "raise --gpu-memory-utilization, set --kv-cache-gb%s", source, budget / GIB, bytesPerToken,
                    memory.moreRoom() != null ? " or " + memory.moreRoom() : ""));
        }
        KvCacheSpec spec = KvCacheSpec.forTokens(config, (int) Math.min(Integer.MAX_VALUE - blockSize, tokens), blockSize);
        String share = kvCacheGb != null ? "--kv-cache-gb" : String.format("%s (%.2f GiB) less what is in use%s", source,
                memory.totalBytes() / GIB, memory.reservedBytes() > 0 ? ", the weights and the step buffers" : "");
        String limit = String.format("the limit is %.2f GiB: %s", budget / GIB, share);
        String why = tokens == budgetTokens ? share
                : tokens == usefulTokens ? "all this workload can use at once; " + limit
                : "the most one cache holds on this backend; " + limit;
        log.printf("ember: KV cache: %d tokens in %d blocks, %.2f GiB (%s)%s%n", spec.tokenCapacity(), spec.numBlocks(),
                spec.tokenCapacity() * bytesPerToken / GIB, why,
                spec.tokenCapacity() < config.maxPositions() ? "; shorter than the model's context of " + config.maxPositions() : "");
        return spec;
    }
}
