package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.SubmittedStep;
import dev.ember.backend.WorkMarks;
import dev.ember.cli.ConsoleProgress;
import dev.ember.cli.Stats;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.RequestListener;
import dev.ember.kvcache.BlockAllocator;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.ModelConfig;
import dev.ember.model.Presets;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.time.Instant;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code ember bench host}: the engine's own time per step (scheduling, the step's batch and metadata objects, handing
 * tokens to requests, freeing finished ones) with a runner that computes nothing, so that nothing else is timed. With
 * overlap this is the host work the device's step must cover; without it, time the device sits idle every step.
 */
@Command(name = "host", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"The engine's host time per step (scheduler, batch building, retiring tokens), with a runner that computes nothing.",
                "That is what overlap must hide behind each device step. No weights are made or read, so the defaults suit any machine."})
public final class HostBenchCommand implements Callable<Integer> {
    static final List<String> COLUMNS = List.of("batch_size", "prompt_len", "kv_tokens", "overlap", "steps",
            "host_us_per_step", "min_us", "max_us", "preemptions");

    @Option(names = "--preset", defaultValue = "qwen3-0.6b", paramLabel = "NAME",
            description = "model shape whose vocabulary, context and KV geometry the engine plans with; default: ${DEFAULT-VALUE}")
    String preset;

    @Option(names = "--batch", defaultValue = "64,256", split = ",", description = "running sequences; default: ${DEFAULT-VALUE}")
    List<Integer> batches;

    @Option(names = "--prompt-len", defaultValue = "512", description = "prompt tokens per sequence; default: ${DEFAULT-VALUE}")
    int promptLen;

    @Option(names = "--steps", defaultValue = "500", description = "timed engine steps per run; default: ${DEFAULT-VALUE}")
    int steps;

    @Option(names = "--kv-tokens-per-sequence", paramLabel = "N",
            description = "KV-cache slots per sequence; fewer than prompt + steps puts the cache under pressure "
                    + "(preemption, prefix-cache eviction); default: room for the whole run")
    Integer kvTokensPerSequence;

    @Option(names = "--iters", defaultValue = "5", description = "timed runs (medians over them); default: ${DEFAULT-VALUE}")
    int iters;

    @Option(names = "--warmup", defaultValue = "2", description = "untimed runs first; default: ${DEFAULT-VALUE}")
    int warmup;


    @Mixin
    ResultFileOptions files = new ResultFileOptions();

    @Override
    public Integer call() {
        EmberException.require(promptLen >= 1 && steps >= 1 && iters >= 1 && warmup >= 0,
                "--prompt-len, --steps and --iters must be at least 1, --warmup at least 0");
        EmberException.require(batches.stream().allMatch(b -> b >= 1), "--batch sizes must be at least 1");
        ModelConfig config = Presets.config(preset);
        PrintStream out = System.out;
        ConsoleProgress progress = new ConsoleProgress(System.err);
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("benchmark", "bench host");
        header.put("device", "host: " + Runtime.getRuntime().availableProcessors() + " cores, " + System.getProperty("os.arch")
                + ", Java " + Runtime.version());
        header.put("model", preset + " shape (no weights: a runner that computes nothing)");
        header.put("ember_version", BenchHeader.currentVersion());
        header.put("date", Instant.now().toString());
        out.printf("# ember bench host, %s on %s; %s%n", header.get("ember_version"), header.get("device"), header.get("model"));
        ResultTable table = new ResultTable(COLUMNS);
        int total = batches.size() * 2 * (warmup + iters), done = 0;
        for (int batch : batches) {
            int perSequence = kvTokensPerSequence != null ? kvTokensPerSequence : promptLen + steps + 64;
            EmberException.require(perSequence > promptLen, "--kv-tokens-per-sequence must exceed --prompt-len");
            KvCacheSpec kv = KvCacheSpec.forTokens(config, Math.multiplyExact(batch, perSequence), KvCacheSpec.DEFAULT_BLOCK_SIZE);
            for (boolean overlap : new boolean[] {true, false}) {
                double[] micros = new double[iters];
                long preemptions = 0;
                for (int run = 0; run < warmup + iters; run++) {
                    progress.update("bench host", done++, total);
                    Run r = runOnce(config, kv, batch, overlap, run);
                    if (run >= warmup) {
                        micros[run - warmup] = r.microsPerStep();
                        preemptions += r.preemptions();
                    }
                }
                Stats s = Stats.of(micros);
                table.add(batch, promptLen, kv.tokenCapacity(), overlap, steps, s.median(), s.min(), s.max(),
                        preemptions / iters);
            }
        }
        progress.update("bench host", total, total);
        table.print(out);
        table.writeFiles(files.csv(), files.json(), header);
        return 0;
    }

    private record Run(double microsPerStep, long preemptions) {
    }

    /** Prefills {@code batch} prompts, then times {@link #steps} engine steps of their decodes. */
    private Run runOnce(ModelConfig config, KvCacheSpec kv, int batch, boolean overlap, int seed) {
        NoComputeRunner runner = new NoComputeRunner(config, kv);
        LlmEngine engine = LlmEngine.tokensOnly(runner,
                new SchedulerConfig(batch, Math.max(8192, batch), 2048, SchedulePolicy.DECODE_FIRST, true, overlap));
        SplittableRandom random = new SplittableRandom(seed);
        SamplingParams params = SamplingParams.greedy(1 << 20).withIgnoreEos(true);
        for (int i = 0; i < batch; i++) {
            engine.add(random.ints(promptLen, 0, config.vocabSize()).toArray(), params, RequestListener.NONE);
        }
        while (engine.scheduler().waitingCount() > 0 && engine.hasWork()) {
            engine.step();
        }
        long start = System.nanoTime();
        for (int i = 0; i < steps; i++) {
            engine.step();
        }
        double micros = (System.nanoTime() - start) / 1e3 / steps;
        return new Run(micros, engine.scheduler().preemptions());
    }

    /** A runner that computes nothing and samples token 1 for every sampled chunk. */
    private static final class NoComputeRunner implements ModelRunner {
        private final ModelConfig config;
        private final KvCacheSpec kv;
        private final BlockAllocator allocator;

        NoComputeRunner(ModelConfig config, KvCacheSpec kv) {
            this.config = config;
            this.kv = kv;
            this.allocator = new BlockAllocator(kv);
        }

        @Override
        public ModelConfig config() {
            return config;
        }

        @Override
        public KvCacheSpec kvSpec() {
            return kv;
        }

        @Override
        public BlockAllocator blockAllocator() {
            return allocator;
        }

        @Override
        public void forward(ForwardBatch batch, float[] logits) {
            Arrays.fill(logits, 0, batch.size() * config.vocabSize(), 0f);
        }

        @Override
        public SubmittedStep submit(ForwardBatch batch, Sampler[] samplers) {
            return tokens -> {
                for (int i = 0; i < batch.size(); i++) {
                    tokens[i] = samplers[i] == null ? -1 : 1;
                }
            };
        }

        @Override
        public WorkMarks workMarks(int points) {
            return WorkMarks.onHost(points);
        }

        @Override
        public boolean carriesTokens(Sampler sampler) {
            return true;
        }

        @Override
        public int kvElementBytes() {
            return 2;
        }

        @Override
        public String deviceName() {
            return "no device (nothing computed)";
        }

        @Override
        public void close() {
        }
    }
}
