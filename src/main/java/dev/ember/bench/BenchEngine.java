package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.Backend;
import dev.ember.backend.DeviceCeilings;
import dev.ember.backend.ModelRunner;
import dev.ember.cli.LoadedModel;
import dev.ember.engine.LlmEngine;
import dev.ember.trace.Trace;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.ModelConfig;
import dev.ember.scheduler.SchedulerConfig;

import java.io.PrintStream;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Locale;

/**
 * A model loaded on a backend for the in-process serving benchmarks: a model directory, or a preset shape with
 * random weights (made on the GPU by the CUDA backend, in host memory for the CPU), the device's measured
 * ceilings, and a KV cache sized for the workload. Each run gets a fresh {@link LlmEngine} over the same runner.
 */
final class BenchEngine implements AutoCloseable {
    private final Backend backend;
    private final LoadedModel loaded;
    private final ModelRunner runner;
    private final DeviceCeilings ceilings;
    private final ModelCost cost;
    private Trace trace = Trace.OFF;

    private BenchEngine(Backend backend, LoadedModel loaded, DeviceCeilings ceilings, ModelCost cost) {
        this.backend = backend;
        this.loaded = loaded;
        this.runner = loaded.runner();
        this.ceilings = ceilings;
        this.cost = cost;
    }

    /**
     * Opens the model or preset of {@code options} with a KV cache for at most {@code workloadTokens} tokens in flight
     * under {@code scheduler}; {@code longestRequest} tokens (prompt plus output) must fit one sequence.
     */
    static BenchEngine open(EngineOptions options, SchedulerConfig scheduler, long workloadTokens, int longestRequest,
                            PrintStream log, Progress progress) {
        Backend backend = options.model.openBackend(log);
        try {
            LoadedModel loaded = LoadedModel.open(options.model, options.preset, backend, (config, weightBytes, kvBytes) -> {
                if (longestRequest > config.maxPositions()) {
                    throw new EmberException("a request of " + longestRequest + " tokens (prompt plus output) exceeds the context of "
                            + config.maxPositions() + " tokens of the model; use shorter lengths");
                }
                KvCacheSpec kv = options.kvCache.spec(config, weightBytes, kvBytes, backend, scheduler, workloadTokens, log);
                if (kv.tokenCapacity() < longestRequest) {
                    throw new EmberException("the KV cache holds " + kv.tokenCapacity() + " tokens, fewer than the longest request's "
                            + longestRequest + "; give it more room (--kv-cache-gb)");
                }
                return kv;
            }, progress, log);
            log.println("ember: measuring the device's ceilings");
            DeviceCeilings ceilings;
            try {
                ceilings = backend.measureCeilings(progress);
            } catch (RuntimeException e) {
                loaded.close();
                throw e;
            }
            ModelRunner runner = loaded.runner();
            return new BenchEngine(backend, loaded, ceilings,
                    ModelCost.of(loaded.config(), runner.weightElementBytes(), runner.kvElementBytes()));
        } catch (RuntimeException e) {
            backend.close();
            throw e;
        }
    }

    /** Engines made from now on report their steps to {@code trace}. */
    void setTrace(Trace trace) {
        this.trace = trace;
    }

    /** A fresh engine over this runner (the runner's KV blocks must all be free). */
    LlmEngine newEngine(SchedulerConfig config) {
        if (runner.blockAllocator().usedBlocks() != 0) {
            throw new IllegalStateException(runner.blockAllocator().usedBlocks() + " KV blocks still held by an earlier run");
        }
        LlmEngine engine = LlmEngine.tokensOnly(runner, config);
        engine.setTrace(trace);
        return engine;
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
        m.put("overlap", scheduler.overlap());
        m.put("kv_cache_tokens", kvTokenCapacity());
        return m;
    }

    BenchHeader header(String benchmark) {
        return new BenchHeader(benchmark, runner.deviceName(), loaded.name(), loaded.dtype().name().toLowerCase(Locale.ROOT),
                BenchHeader.currentVersion(), Instant.now(), ceilings);
    }

    ModelRunner runner() {
        return runner;
    }

    /** The backend the model runs on (another model of the benchmark, a draft say, goes there too). */
    Backend backend() {
        return backend;
    }

    LoadedModel loaded() {
        return loaded;
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
        loaded.close();
        backend.close();
    }
}
