package dev.ember.server;

import dev.ember.Progress;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.engine.ServingEngine;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.RandomWeights;
import dev.ember.model.RopeScaling;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.tokenizer.Tokenizer;

import java.time.Duration;
import java.util.List;

/**
 * A server in front of a small random-weight model of some shape and a real tokenizer, on the CPU: what the tests of
 * a model family's chat formats (its template, its tool calls) talk to over HTTP.
 */
record RandomModelServer(CpuBackend backend, Model model, ModelRunner runner, ServingEngine engine, OpenAiServer server)
        implements AutoCloseable {
    /** A one-layer model of Qwen3's vocabulary and end token, for Qwen3's tokenizer and chat template. */
    static final ModelConfig QWEN3 = new ModelConfig(Architecture.QWEN3, 32, 64, 1, 2, 1, 16, 151936, 4096, 1e-6, 1000000,
            new RopeScaling.None(), true, Biases.NONE, 0, -1, List.of(151645), DType.BF16);

    /** A model of {@code config} with weights drawn from {@code seed}, served as {@code name} with {@code tokenizer}. */
    static RandomModelServer start(ModelConfig config, long seed, Tokenizer tokenizer, String name) {
        return start(config, seed, tokenizer, new OpenAiServer.Config("127.0.0.1", 0, null, name, 1 << 20, Duration.ofSeconds(30)));
    }

    static RandomModelServer start(ModelConfig config, long seed, Tokenizer tokenizer, OpenAiServer.Config serverConfig) {
        CpuBackend backend = new CpuBackend(2);
        Model model = RandomWeights.create(config, DType.BF16, seed);
        ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(config, 4096, 16), Progress.NONE);
        ServingEngine engine = ServingEngine.start(runner, tokenizer,
                new SchedulerConfig(16, 1024, 512, SchedulePolicy.DECODE_FIRST, true, true), null);
        return new RandomModelServer(backend, model, runner, engine, OpenAiServer.start(engine, serverConfig));
    }

    String url(String path) {
        return server.baseUrl() + path;
    }

    @Override
    public void close() {
        server.close();
        engine.close();
        runner.close();
        model.close();
        backend.close();
    }
}
