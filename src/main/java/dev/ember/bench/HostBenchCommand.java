package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.SubmittedStep;
import dev.ember.backend.WorkMarks;
import dev.ember.cli.ConsoleProgress;
import dev.ember.cli.Stats;
import dev.ember.engine.DraftModelProposer;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.NgramProposer;
import dev.ember.engine.Proposer;
import dev.ember.engine.RequestListener;
import dev.ember.engine.Speculation;
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
 * With {@code --speculative draft|ngram} a step is a speculative round (drafting, the verification, judging it), the
 * draft a runner that computes nothing as well and drafts what the target then accepts: the host time a round adds to
 * the device's, which at batch 1 on a small pair is as much as the device's own.
 */
@Command(name = "host", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"The engine's host time per step (scheduler, batch building, retiring tokens), with a runner that computes nothing.",
                "That is what overlap must hide behind each device step. No weights are made or read, so the defaults suit any machine."})
public final class HostBenchCommand implements Callable<Integer> {
    static final List<String> COLUMNS = List.of("batch_size", "prompt_len", "kv_tokens", "speculative", "gamma", "overlap",
            "steps", "host_us_per_step", "min_us", "max_us", "tokens_per_step", "preemptions");

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

    @Option(names = "--speculative", paramLabel = "SOURCE", defaultValue = "none",
            description = "none, draft (a draft runner that computes nothing) or ngram (prompt lookup); default: ${DEFAULT-VALUE}")
    String speculative;

    @Option(names = "--gamma", defaultValue = "1", description = "tokens drafted a round, with --speculative; default: ${DEFAULT-VALUE}")
    int gamma;

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
        EmberException.require(List.of("none", "draft", "ngram").contains(speculative),
                "--speculative " + speculative + " is not one of none, draft, ngram");
        EmberException.require(gamma >= 1, "--gamma must be at least 1, got " + gamma);
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
            int perRound = speculative.equals("none") ? 1 : gamma + 1;  // every draft is accepted
            int perSequence = kvTokensPerSequence != null ? kvTokensPerSequence : promptLen + perRound * steps + 64;
            EmberException.require(perSequence > promptLen, "--kv-tokens-per-sequence must exceed --prompt-len");
            EmberException.require((long) batch * perSequence <= Integer.MAX_VALUE - KvCacheSpec.DEFAULT_BLOCK_SIZE, "--batch "
                    + batch + " sequences of " + perSequence + " KV tokens each are more than one cache holds");
            KvCacheSpec kv = KvCacheSpec.forTokens(config, batch * perSequence, KvCacheSpec.DEFAULT_BLOCK_SIZE);
            for (boolean overlap : new boolean[] {true, false}) {
                double[] micros = new double[iters];
                long preemptions = 0;
                double tokensPerStep = 0;
                for (int run = 0; run < warmup + iters; run++) {
                    progress.update("bench host", done++, total);
                    Run r = runOnce(config, kv, batch, overlap, run);
                    if (run >= warmup) {
                        micros[run - warmup] = r.microsPerStep();
                        preemptions += r.preemptions();
                        tokensPerStep = r.tokensPerStep();
                    }
                }
                Stats s = Stats.of(micros);
                boolean speculates = !speculative.equals("none");
                table.add(batch, promptLen, kv.tokenCapacity(), speculative, speculates ? gamma : 0, overlap, steps,
                        s.median(), s.min(), s.max(), tokensPerStep, preemptions / iters);
            }
        }
        progress.update("bench host", total, total);
        table.print(out);
        table.writeFiles(files.csv(), files.json(), header);
        return 0;
    }

    private record Run(double microsPerStep, double tokensPerStep, long preemptions) {
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
        try (Speculation speculation = speculation(config, kv)) {
            if (speculation != null) {
                engine.speculate(speculation);
            }
            long generated = engine.generatedTokens();
            long start = System.nanoTime();
            for (int i = 0; i < steps; i++) {
                engine.step();
            }
            double micros = (System.nanoTime() - start) / 1e3 / steps;
            return new Run(micros, (double) (engine.generatedTokens() - generated) / steps / batch, engine.scheduler().preemptions());
        }
    }

    /** The speculation asked for: a draft that computes nothing (and so drafts what the target accepts), or prompt lookup. */
    private Speculation speculation(ModelConfig config, KvCacheSpec kv) {
        Proposer proposer = switch (speculative) {
            case "draft" -> new DraftModelProposer(new NoComputeRunner(config, kv), "a draft that computes nothing",
                    config.vocabSize(), null);
            case "ngram" -> new NgramProposer(1, 4);
            default -> null;
        };
        return proposer == null ? null : new Speculation(proposer, gamma, Integer.MAX_VALUE);
    }

    /** A runner that computes nothing and samples token 1 for every output row. */
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
                for (int i = 0; i < batch.outputRows(); i++) {
                    tokens[i] = samplers[i] == null ? -1 : 1;
                }
            };
        }

        /** As a GPU's: so the engine takes the paths it takes there (a draft's catch-up among them). */
        @Override
        public boolean computesAhead() {
            return true;
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
        public int weightElementBytes() {
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
