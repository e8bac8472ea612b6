package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.Backend;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.backend.cuda.CudaBackend;
import dev.ember.backend.cuda.CudaContext;
import dev.ember.cli.ModelOptions;
import dev.ember.engine.LlmEngine;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.ModelLoader;
import dev.ember.model.Presets;
import dev.ember.model.RandomWeights;
import dev.ember.scheduler.SchedulerConfig;

import java.io.PrintStream;
import java.time.Instant;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Locale;

/**
 * A model loaded on a backend for the in-process serving benchmarks: a model directory, or a preset shape with
 * random weights (made on the GPU by the CUDA backend, in host memory for the CPU), the device's measured
 * ceilings, and a KV cache sized for the workload. Each run gets a fresh {@link LlmEngine} over the same runner.
 */
final class BenchEngine implements AutoCloseable {
    /** Seed of the random weights of presets: the values do not change a step's time, so one fixed seed. */
    private static final long WEIGHTS_SEED = 0;
    private static final double DEFAULT_GPU_MEMORY_UTILIZATION = 0.9;

    private final Backend backend;
    private final Model model;
    private final ModelRunner runner;
    private final String modelName;
    private final DType dtype;
    private final DeviceCeilings ceilings;
    private final ModelCost cost;

    private BenchEngine(Backend backend, Model model, ModelRunner runner, String modelName, DType dtype,
                        DeviceCeilings ceilings, ModelCost cost) {
        this.backend = backend;
        this.model = model;
        this.runner = runner;
        this.modelName = modelName;
        this.dtype = dtype;
        this.ceilings = ceilings;
        this.cost = cost;
    }

    /**
     * Opens the model or preset of {@code engineOptions} with a KV cache for at most {@code workloadTokens} tokens in flight
     * and {@code maxRunning} sequences per step; {@code longestRequest} tokens (prompt plus output) must fit one sequence.
     */
    static BenchEngine open(EngineOptions engineOptions, long workloadTokens,
                            int longestRequest, int maxRunning, PrintStream log, Progress progress) {
        ModelOptions modelOptions = engineOptions.model;
        if (engineOptions.preset != null && engineOptions.modelGiven()) {
            throw new EmberException("give --model or --preset, not both");
        }
        ModelConfig presetConfig = engineOptions.preset != null ? Presets.config(engineOptions.preset) : null;
        Backend backend = modelOptions.openBackend(log);
        Model model = null;
        ModelRunner runner = null;
        try {
            boolean cpu = backend instanceof CpuBackend;
            if (cpu && engineOptions.gpuMemoryUtilization != null) {
                throw new EmberException("--gpu-memory-utilization sizes the KV cache on a GPU; on the CPU use --kv-cache-gb");
            }
            if (presetConfig == null || cpu) {
                model = presetConfig == null ? ModelLoader.load(modelOptions.modelDirectory(), progress)
                        : RandomWeights.create(presetConfig, DType.BF16, WEIGHTS_SEED);
            }
            ModelConfig config = model != null ? model.config() : presetConfig;
            if (longestRequest > config.maxPositions()) {
                throw new EmberException("a request of " + longestRequest + " tokens (prompt plus output) exceeds the context of "
                        + config.maxPositions() + " tokens of " + describe(engineOptions, model) + "; use shorter lengths");
            }
            DType dtype = presetConfig != null ? DType.BF16 : config.dtype();
            // The CPU backend keeps its KV cache in f32; the GPU in the weights' storage type.
            ModelCost cost = ModelCost.of(config, dtype.bytes(), cpu ? Float.BYTES : dtype.bytes());
            log.println("ember: measuring the device's ceilings");
            DeviceCeilings ceilings = backend.measureCeilings(progress);
            long kvTokens = kvTokens(backend, engineOptions, config, cost, workloadTokens, maxRunning);
            if (kvTokens < longestRequest) {
                throw new EmberException("the KV cache holds " + kvTokens + " tokens, fewer than the longest request's "
                        + longestRequest + "; give it more room (--kv-cache-gb)");
            }
            KvCacheSpec kv = KvCacheSpec.forTokens(config, (int) Math.min(kvTokens, Integer.MAX_VALUE - KvCacheSpec.DEFAULT_BLOCK_SIZE),
                    KvCacheSpec.DEFAULT_BLOCK_SIZE);
            runner = backend instanceof CudaBackend cuda && presetConfig != null
                    ? cuda.loadRandom(presetConfig, DType.BF16, kv, WEIGHTS_SEED)
                    : backend.load(model, kv, progress);
            return new BenchEngine(backend, model, runner, describe(engineOptions, model), dtype, ceilings, cost);
        } catch (RuntimeException e) {
            if (runner != null) {
                runner.close();
            }
            if (model != null) {
                model.close();
            }
            backend.close();
            throw e;
        }
    }

    private static String describe(EngineOptions options, Model model) {
        return options.preset != null ? options.preset + " (random weights)" : model.name();
    }

    /**
     * KV-cache token slots: --kv-cache-gb when given; else on the GPU what is left of the utilization share
     * after what others use, the weights and the step buffers; else (CPU) the workload's own peak.
     * Never more than the workload can hold at once.
     */
    private static long kvTokens(Backend backend, EngineOptions options, ModelConfig config, ModelCost cost, long workloadTokens,
                                 int maxRunning) {
        if (options.kvCacheGib != null) {
            if (!(options.kvCacheGib > 0)) {
                throw new EmberException("--kv-cache-gb must be positive, not " + options.kvCacheGib);
            }
            return (long) (options.kvCacheGib * (1L << 30) / cost.kvBytesPerToken());
        }
        if (!(backend instanceof CudaBackend cuda)) {
            return workloadTokens;
        }
        double utilization = options.gpuMemoryUtilization != null ? options.gpuMemoryUtilization : DEFAULT_GPU_MEMORY_UTILIZATION;
        if (!(utilization > 0 && utilization <= 1)) {
            throw new EmberException("--gpu-memory-utilization must be in (0, 1], not " + utilization);
        }
        CudaContext.MemoryInfo memory = cuda.memoryInfo();
        long usedByOthers = memory.total() - memory.free();
        long budget = (long) (memory.total() * utilization) - usedByOthers - cost.weightBytes()
                - stepBufferReserve(config, options.maxBatchedTokens, maxRunning);
        long tokens = budget / cost.kvBytesPerToken();
        if (tokens <= 0) {
            throw new EmberException(String.format("no room for a KV cache: %.0f%% of %.1f GiB, less %.1f GiB in use and %.1f GiB of weights,"
                            + " leaves nothing; raise --gpu-memory-utilization or give --kv-cache-gb",
                    100 * utilization, gib(memory.total()), gib(usedByOthers), gib(cost.weightBytes())));
        }
        return Math.min(tokens, workloadTokens);
    }

    /**
     * Room for a step's buffers, which the runner grows on demand: a generous bound of f32 vectors of the model's
     * widths for every token of the step budget and a row of logits per sequence, doubled because the runner
     * grows its buffers by doubling, plus room for the matrix-product workspace and captured graphs.
     */
    private static long stepBufferReserve(ModelConfig c, int maxBatchedTokens, int maxRunning) {
        long perToken = Float.BYTES * (6L * c.hiddenSize() + c.qDim() + 2L * c.kvDim() + 3L * c.intermediateSize());
        long perSequence = Float.BYTES * (long) c.vocabSize();
        return 2 * (maxBatchedTokens * perToken + maxRunning * perSequence) + (256L << 20);
    }

    private static double gib(long bytes) {
        return bytes / (double) (1L << 30);
    }

    /** A fresh engine over this runner (the runner's KV blocks must all be free). */
    LlmEngine newEngine(SchedulerConfig config) {
        if (runner.blockAllocator().usedBlocks() != 0) {
            throw new IllegalStateException(runner.blockAllocator().usedBlocks() + " KV blocks still held by an earlier run");
        }
        return new LlmEngine(runner, config, new HashSet<>(runner.config().eosTokenIds()));
    }

    /** Ends a run: the prefix cache gives its blocks back, so that the next run starts from an empty cache. */
    static void release(LlmEngine engine) {
        if (engine.scheduler().prefixCache() != null) {
            engine.scheduler().prefixCache().clear();
        }
    }

    /** The engine settings a result depends on, for its header (and, as text, its console line). */
    Map<String, Object> describe(SchedulerConfig scheduler) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("max_num_seqs", scheduler.maxRunning());
        m.put("max_num_batched_tokens", scheduler.maxBatchedTokens());
        m.put("chunk_len", scheduler.chunkTokens());
        m.put("schedule_policy", scheduler.policy().name().toLowerCase(Locale.ROOT));
        m.put("prefix_caching", scheduler.prefixCaching());
        m.put("kv_cache_tokens", kvTokenCapacity());
        return m;
    }

    BenchHeader header(String benchmark) {
        return new BenchHeader(benchmark, runner.deviceName(), modelName, dtype.name().toLowerCase(Locale.ROOT),
                BenchHeader.currentVersion(), Instant.now(), ceilings);
    }

    ModelConfig config() {
        return runner.config();
    }

    int vocabSize() {
        return runner.config().vocabSize();
    }

    DeviceCeilings ceilings() {
        return ceilings;
    }

    ModelCost cost() {
        return cost;
    }

    long kvTokenCapacity() {
        return runner.kvSpec().tokenCapacity();
    }

    @Override
    public void close() {
        runner.close();
        if (model != null) {
            model.close();
        }
        backend.close();
    }
}
