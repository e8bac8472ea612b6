package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.cli.ConsoleProgress;
import dev.ember.cli.Stats;
import dev.ember.engine.LlmEngine;
import dev.ember.monitor.GpuMonitor;
import dev.ember.monitor.GpuReport;
import dev.ember.trace.Trace;
import dev.ember.engine.RequestListener;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.scheduler.Sequence;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code ember bench serve}: the seeds' {@code ember_serve_benchmark}. Requests arrive continuously into
 * {@code --batch-size} slots: the first fill them, and each finished request's slot is refilled by the next
 * before the following step. The phase-aware policy (prefill admission, then decode steps) is the default.
 * A step that computes any prompt token counts as prefill, a step of decodes only as decode.
 */
@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Continuous batching in process: --num-req requests through --batch-size slots, each refilled as its request ends.",
                "One CSV row per run: mode,num_reqs,batch_size,prompt_len,gen_len,vary_gen,prefill_ms,decode_ms,gen_tokens,decode_tok_s.",
                "Defaults: 32 requests of 512 prompt tokens on a GPU, 16 of 256 on the CPU."})
public final class ServeBenchCommand implements Callable<Integer>, ReportedBenchmark {
    static final List<String> COLUMNS = List.of("mode", "num_reqs", "batch_size", "prompt_len", "gen_len", "vary_gen",
            "prefill_ms", "decode_ms", "gen_tokens", "decode_tok_s");

    @Mixin
    EngineOptions engineOptions;

    @Mixin
    TraceOptions traceOptions;

    @Mixin
    MonitorOptions monitorOptions;

    @Option(names = "--batch-size", defaultValue = "8", description = "slots: most requests in flight; default: ${DEFAULT-VALUE}")
    int batchSize;

    @Option(names = "--num-req", paramLabel = "N", description = "requests in all; default: 32 on a GPU, 16 on the CPU")
    Integer numReq;

    @Option(names = "--prompt-len", paramLabel = "N", description = "prompt tokens per request; default: 512 on a GPU, 256 on the CPU")
    Integer promptLen;

    @Option(names = "--gen-len", defaultValue = "64",
            description = "tokens to generate per request; each request's varies uniformly in [gen-len/2, 3*gen-len/2] unless --no-vary-gen; default: ${DEFAULT-VALUE}")
    int genLen;

    @Option(names = "--no-vary-gen", description = "give every request exactly --gen-len tokens")
    boolean noVaryGen;

    @Option(names = "--seed", defaultValue = "0", description = "seed of the prompts, lengths and sampling; default: ${DEFAULT-VALUE}")
    long seed;

    @Option(names = "--temperature", defaultValue = "0", description = "sampling temperature; 0 = greedy; default: ${DEFAULT-VALUE}")
    float temperature;

    @Option(names = "--runs", defaultValue = "3", description = "timed runs after a warm-up, one row each; default: ${DEFAULT-VALUE}")
    int runs;


    @Mixin
    ResultFileOptions files = new ResultFileOptions();

    /**
     * One pass: time in prefill-carrying steps (plus submissions) and in decode-only steps, the tokens the decode
     * steps generated and all tokens generated, the engine's steps, the most requests ever in flight, and the
     * fewest in flight at the start of a step while requests were still waiting to be submitted.
     */
    record Run(long prefillNanos, long decodeNanos, long decodeTokens, long generatedTokens, long steps, int peakInFlight,
               int lowInFlightWithBacklog) {
        double prefillMillis() {
            return prefillNanos / 1e6;
        }

        double decodeMillis() {
            return decodeNanos / 1e6;
        }

        double decodeTokensPerSecond() {
            return decodeTokens / (decodeNanos / 1e9);
        }
    }

    @Override
    public Integer call() {
        DeviceDefaults defaults = new DeviceDefaults(engineOptions.model.runsOnGpu());
        numReq = defaults.pick("--num-req", numReq, 32, 16);
        promptLen = defaults.pick("--prompt-len", promptLen, 512, 256);
        defaults.report(System.err);
        if (batchSize < 1 || numReq < 1 || promptLen < 1 || genLen < 1 || runs < 1) {
            throw new EmberException("--batch-size, --num-req, --prompt-len, --gen-len and --runs must be at least 1");
        }
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        PrintStream err = System.err;
        Progress progress = new ConsoleProgress(err);
        RandomWorkload workload = workload();
        try (BenchEngine bench = openEngine(err, progress, workload)) {
            BenchHeader header = bench.header("bench serve");
            header.print(out);
            SchedulerConfig scheduler = schedulerConfig();
            String mode = mode(scheduler);
            out.printf("# workload: %d requests of %d prompt tokens, %s generated tokens (%d in all), %d slots, seed %d, temperature %s%n",
                    numReq, promptLen, genRange(), workload.outputTokens(), batchSize, seed, temperature);
            out.println("# engine: " + bench.describe(scheduler));
            int[][] prompts = workload.prompts(bench.vocabSize());
            RandomWorkload warmup = new RandomWorkload(new int[] {promptLen}, new int[] {genLen}, seed);
            run(bench, warmup, warmup.prompts(bench.vocabSize()), Progress.NONE);
            bench.runner().warmUp(batchSize, scheduler.maxBatchedTokens(), workload.longest());
            Trace trace = traceOptions.open();  // the timed runs only
            bench.setTrace(trace);

            ResultTable table = new ResultTable(COLUMNS);
            List<Run> done = new ArrayList<>();
            double[] totalSeconds = new double[runs];
            GpuMonitor monitor = monitorOptions.start(err, trace);
            for (int r = 0; r < runs; r++) {
                Run run = run(bench, workload, prompts, progress);
                done.add(run);
                totalSeconds[r] = (run.prefillNanos() + run.decodeNanos()) / 1e9;
                table.add(mode, numReq, batchSize, promptLen, genLen, !noVaryGen, run.prefillMillis(), run.decodeMillis(),
                        run.decodeTokens(), run.decodeTokensPerSecond());
            }
            GpuReport gpu = monitor.stop();  // the timed runs only: their energy over their output tokens
            long timedOutputTokens = (long) runs * workload.outputTokens();
            WorkloadFloor floor = WorkloadFloor.of(bench.cost(), workload.inputLengths(), workload.outputLengths(), batchSize,
                    scheduler.maxBatchedTokens(), bench.ceilings());
            floor.print(out, workload.outputTokens(), Stats.of(totalSeconds).median(), done.getLast().steps());
            out.printf("# decode: %.1f tokens/s (median of %d runs); all steps: %.1f generated tokens/s%n",
                    Stats.of(done.stream().mapToDouble(Run::decodeTokensPerSecond).toArray()).median(), runs,
                    workload.outputTokens() / Stats.of(totalSeconds).median());
            out.println();
            table.print(out);
            Map<String, Object> head = new LinkedHashMap<>(header.toMap());
            head.put("workload", Map.of("num_reqs", numReq, "batch_size", batchSize, "prompt_len", promptLen,
                    "gen_len", genRange().toString(), "seed", seed, "temperature", temperature, "output_tokens", workload.outputTokens()));
            head.put("engine", bench.describe(scheduler));
            head.put("floor_s", floor.seconds());
            head.put("seconds_per_run", totalSeconds);
            MonitorOptions.writeResults(out, files.csv(), files.json(), head, table, gpu, timedOutputTokens,
                    ResultTable.of("runs", "output_tokens").add(runs, timedOutputTokens));
            traceOptions.write(trace, err);
        }
        return 0;
    }

    RandomWorkload workload() {
        return RandomWorkload.draw(numReq, new LengthRange(promptLen, promptLen), genRange(), seed);
    }

    /** Each request's generation length: fixed, or uniform in [gen/2, 3 gen/2] (mean gen-len). */
    LengthRange genRange() {
        return !noVaryGen ? new LengthRange(Math.max(1, genLen / 2), genLen + genLen / 2) : new LengthRange(genLen, genLen);
    }

    BenchEngine openEngine(PrintStream log, Progress progress, RandomWorkload workload) {
        return BenchEngine.open(engineOptions, schedulerConfig(),
                workload.peakTokens(batchSize, KvCacheSpec.DEFAULT_BLOCK_SIZE), workload.longest(), log, progress);
    }

    SchedulerConfig schedulerConfig() {
        return engineOptions.scheduler.config(batchSize, SchedulePolicy.PREFILL_FIRST);
    }

    private static String mode(SchedulerConfig scheduler) {
        return scheduler.policy().name().toLowerCase(Locale.ROOT);
    }

    /**
     * Fills the slots, then steps the engine, refilling each slot its finished request freed before the next
     * step. Each step's wall time goes to prefill when it computed any prompt token (more tokens computed than
     * sampled) and to decode otherwise; submissions count as prefill, as the seed's submit() did.
     */
    Run run(BenchEngine bench, RandomWorkload workload, int[][] prompts, Progress progress) {
        LlmEngine engine = bench.newEngine(schedulerConfig());
        SlotCounter slots = new SlotCounter();
        long total = workload.outputTokens();
        long prefillNanos = 0;
        long decodeNanos = 0;
        long decodeTokens = 0;
        int next = 0;
        int peak = 0;
        int lowWithBacklog = batchSize;
        while (true) {
            while (slots.inFlight < batchSize && next < prompts.length) {
                long t = System.nanoTime();
                engine.add(prompts[next], workload.samplingParams(next, temperature), slots);
                prefillNanos += System.nanoTime() - t;
                slots.inFlight++;
                next++;
            }
            peak = Math.max(peak, slots.inFlight);
            if (next < prompts.length) {
                lowWithBacklog = Math.min(lowWithBacklog, slots.inFlight);
            }
            if (!engine.hasWork()) {
                break;
            }
            long sampledBefore = slots.sampled;
            long t = System.nanoTime();
            int computed = engine.step();
            long elapsed = System.nanoTime() - t;
            long sampled = slots.sampled - sampledBefore;
            if (computed == sampled) {
                decodeNanos += elapsed;
                decodeTokens += sampled;
            } else {
                prefillNanos += elapsed;
            }
            progress.update("generating", slots.sampled, total);
        }
        BenchEngine.release(engine);
        if (slots.sampled != total || slots.finished != prompts.length) {
            throw new IllegalStateException("the engine finished " + slots.finished + " of " + prompts.length + " requests with "
                    + slots.sampled + " of " + total + " tokens");
        }
        return new Run(prefillNanos, decodeNanos, decodeTokens, slots.sampled, engine.steps(), peak, lowWithBacklog);
    }

    /** Counts the tokens sampled and the requests finished, freeing their slots. */
    private static final class SlotCounter implements RequestListener {
        int inFlight;
        int finished;
        long sampled;

        @Override
        public void onToken(Sequence sequence, int token, String text) {
            sampled++;
        }

        @Override
        public void onFinish(Sequence sequence) {
            inFlight--;
            finished++;
        }
    }

    /** The seed's workload with prompts that fit the model; four short requests in two slots when quick. */
    @Override
    public List<String> reportArguments(Suite suite) {
        if (suite.quick()) {
            return List.of("--num-req", "4", "--batch-size", "2", "--prompt-len", "32", "--gen-len", "8", "--runs", "1");
        }
        if (!suite.gpu()) {
            return List.of();
        }
        return List.of("--prompt-len", String.valueOf(Math.min(512, suite.contextLength() / 2)), "--runs", "3");
    }
}
