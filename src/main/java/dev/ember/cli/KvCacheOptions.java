package dev.ember.cli;

import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.backend.cuda.CublasLt;
import dev.ember.backend.cuda.CudaContext;
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
        // The CPU backend keeps K and V as floats; the GPU backend in the weights' storage type.
        int elementBytes = backend instanceof CpuBackend ? Float.BYTES : model.layers().getFirst().wq().dtype().bytes();
        return spec(model.config(), model.weightBytes(), elementBytes, backend, scheduler, usefulTokens, log);
    }

    /** As {@link #spec(Model, Backend, SchedulerConfig, long, PrintStream)}, for a model known by its shape and size. */
    public KvCacheSpec spec(ModelConfig config, long weightBytes, int elementBytes, Backend backend, SchedulerConfig scheduler,
                            long usefulTokens, PrintStream log) {
        boolean cpu = backend instanceof CpuBackend;
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
            budget = cpu ? heapBudget() : gpuBudget(config, weightBytes, scheduler, elementBytes);
            source = String.format("%.0f%% of %s", 100 * memoryUtilization, cpu ? "the Java heap" : "GPU memory");
        }
        // The CPU backend holds one layer's keys in one float array.
        long addressable = cpu ? Integer.MAX_VALUE / config.kvDim() : Long.MAX_VALUE;
        long tokens = Math.min(Math.min(budget / bytesPerToken, usefulTokens), addressable);
        int blockSize = KvCacheSpec.DEFAULT_BLOCK_SIZE;
        if (tokens < blockSize) {
            throw new EmberException(String.format("no memory left for the KV cache (%s gives %.2f GiB, one token needs %d bytes); "
                    + "raise --gpu-memory-utilization, set --kv-cache-gb%s", source, budget / GIB, bytesPerToken,
                    cpu ? " or give the JVM a larger heap (-Xmx)" : ""));
        }
        KvCacheSpec spec = KvCacheSpec.forTokens(config, (int) Math.min(Integer.MAX_VALUE - blockSize, tokens), blockSize);
        log.printf("ember: KV cache: %d tokens in %d blocks, %.2f GiB (%s)%s%n", spec.tokenCapacity(), spec.numBlocks(),
                spec.tokenCapacity() * bytesPerToken / GIB, source,
                spec.tokenCapacity() < config.maxPositions() ? "; shorter than the model's context of " + config.maxPositions() : "");
        return spec;
    }

    private long heapBudget() {
        Runtime rt = Runtime.getRuntime();
        long used = rt.totalMemory() - rt.freeMemory();
        return (long) (rt.maxMemory() * memoryUtilization) - used;
    }

    /**
     * The share of GPU memory, less what is in use already, the weights and an upper estimate of the step
     * buffers for the largest step the scheduler can build (activations of every batched token, logits of every
     * running sequence) and the matrix-product workspace.
     */
    private long gpuBudget(ModelConfig c, long weightBytes, SchedulerConfig scheduler, int elementBytes) {
        CudaContext.MemoryInfo memory;
        try (CudaContext context = CudaContext.open(0)) {
            memory = context.memoryInfo();
        }
        long perToken = 4L * (4L * c.hiddenSize() + c.qDim() + 2L * c.kvDim()) + 3L * elementBytes * c.intermediateSize();
        long perSequence = 4L * c.vocabSize() + (long) elementBytes * c.hiddenSize();
        long buffers = perToken * scheduler.maxBatchedTokens() + perSequence * scheduler.maxRunning() + CublasLt.WORKSPACE_BYTES;
        long inUse = memory.total() - memory.free();
        return (long) (memory.total() * memoryUtilization) - inUse - weightBytes - buffers;
    }
}
