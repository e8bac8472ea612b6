package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.KernelRecorder;
import dev.ember.backend.StepCounters;
import dev.ember.cli.ConsoleProgress;
import dev.ember.cli.Stats;
import dev.ember.engine.LlmEngine;
import dev.ember.monitor.GpuMonitor;
import dev.ember.monitor.GpuReport;
import dev.ember.trace.Trace;
import dev.ember.engine.RequestListener;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code ember bench offline}: mini-sglang's offline throughput run (benchmark/offline/bench.py). Random prompts
 * and output lengths, end-of-sequence ignored so each request generates exactly its length, one warm-up, then all
 * requests submitted at once to the engine; total output tokens over the seconds until the last one finishes.
 */
@Command(name = "offline", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Offline throughput, as mini-sglang's bench.py: random prompts and output lengths, all submitted at once.",
                "Prints output tokens/s beside the workload's floor on this device (bytes over copy bandwidth, FLOPs over matmul rate).",
                "Defaults: bench.py's 256 requests on a GPU, 16 shorter ones on the CPU; lengths within the model's context."})
public final class OfflineBenchCommand implements Callable<Integer>, ReportedBenchmark {
    static final List<String> COLUMNS = List.of("model", "device", "num_requests", "input_tokens", "output_tokens", "runs",
            "seconds", "seconds_min", "seconds_max", "output_tok_s", "input_tok_s", "steps", "preemptions",
            "floor_s", "floor_prefill_s", "floor_decode_s", "floor_memory_s", "floor_compute_s", "floor_fraction");
    private static final int WARMUP_PROMPT_TOKENS = 16;
    private static final int WARMUP_OUTPUT_TOKENS = 32;
    /** bench.py's prompt and output lengths, the GPU's default. */
    private static final LengthRange BENCH_PY_LENGTHS = new LengthRange(100, 1024);
    private static final LengthRange CPU_LENGTHS = new LengthRange(32, 256);

    @Mixin
    EngineOptions engineOptions;

    @Mixin
    TraceOptions traceOptions;

    @Mixin
    MonitorOptions monitorOptions;

    @Mixin
    KernelTimelineOption kernelTimeline;

    @Option(names = "--num-requests", paramLabel = "N", description = "requests; default: 256 on a GPU (bench.py's), 16 on the CPU")
    Integer numRequests;

    @Option(names = "--input-len", converter = LengthRange.Converter.class, paramLabel = "MIN:MAX",
            description = "prompt lengths in tokens, uniform in MIN:MAX (or a fixed N); default: 100:1024 on a GPU "
                    + "(bench.py's), 32:256 on the CPU, at most half the model's context")
    LengthRange inputLen;

    @Option(names = "--output-len", converter = LengthRange.Converter.class, paramLabel = "MIN:MAX",
            description = "output lengths in tokens, uniform in MIN:MAX (or a fixed N); default: as --input-len")
    LengthRange outputLen;

    @Option(names = "--seed", defaultValue = "0", description = "seed of the lengths, token ids and sampling; default: ${DEFAULT-VALUE}")
    long seed;

    @Option(names = "--temperature", defaultValue = "0.6", description = "sampling temperature (bench.py's); 0 = greedy; default: ${DEFAULT-VALUE}")
    float temperature;

    @Option(names = "--max-num-seqs", defaultValue = "256", description = "most requests running at once; default: ${DEFAULT-VALUE}")
    int maxNumSeqs;

    @Option(names = "--runs", defaultValue = "3", description = "timed runs after the warm-up; the median is reported; default: ${DEFAULT-VALUE}")
    int runs;

    @Option(names = "--n", paramLabel = "N", defaultValue = "1",
            description = "sequences per prompt, as OpenAI's n (each its own seed; every sequence's tokens count), to compare "
                    + "with `bench client --n`; default: ${DEFAULT-VALUE}")
    int choices;

    @Option(names = "--logprobs", paramLabel = "K",
            description = "every generated token's log-probability and its K most likely alternatives, as OpenAI's logprobs "
                    + "(0-" + SamplingParams.MAX_LOGPROBS + "), to compare with `bench client --logprobs`; default: none")
    Integer logprobs;


    @Mixin
    ResultFileOptions files = new ResultFileOptions();

    /** One timed pass over the workload; {@code counters}: where the runner's steps spent the run's time. */
    record Run(double seconds, long outputTokens, long steps, long preemptions, StepCounters counters) {
    }

    @Override
    public Integer call() {
        PrintStream err = System.err;
        DeviceDefaults defaults = new DeviceDefaults(engineOptions.model.runsOnGpu());
        numRequests = defaults.pick("--num-requests", numRequests, 256, 16);
        int half = engineOptions.preset.modelConfig(engineOptions.model).maxPositions() / 2;
        LengthRange lengths = defaults.gpu() ? BENCH_PY_LENGTHS : CPU_LENGTHS;
        if ((inputLen == null || outputLen == null) && lengths.max() > half) {
            err.println("ember: the default lengths " + lengths + " shortened to " + within(lengths, half) + " so that a "
                    + "request fits the model's context of " + 2 * half + " tokens");
        }
        inputLen = defaults.pick("--input-len", inputLen, within(BENCH_PY_LENGTHS, half), within(CPU_LENGTHS, half));
        outputLen = defaults.pick("--output-len", outputLen, within(BENCH_PY_LENGTHS, half), within(CPU_LENGTHS, half));
        defaults.report(err);
        if (numRequests < 1 || runs < 1 || maxNumSeqs < 1 || choices < 1) {
            throw new EmberException("--num-requests, --runs, --max-num-seqs and --n must be at least 1");
        }
        EmberException.require(logprobs == null || (logprobs >= 0 && logprobs <= SamplingParams.MAX_LOGPROBS),
                "--logprobs must be in [0, " + SamplingParams.MAX_LOGPROBS + "], got " + logprobs);
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        Progress progress = new ConsoleProgress(err);
        RandomWorkload requests = RandomWorkload.draw(numRequests, inputLen, outputLen, seed);
        RandomWorkload workload = requests.choices(choices);  // the sequences: each request's n choices in a row
        SchedulerConfig scheduler = engineOptions.scheduler.config(maxNumSeqs, SchedulePolicy.DECODE_FIRST);
        try (BenchEngine bench = BenchEngine.open(engineOptions, scheduler,
                workload.peakTokens(maxNumSeqs, KvCacheSpec.DEFAULT_BLOCK_SIZE), workload.longest(), err, progress)) {
            kernelTimeline.check(bench.backend());
            BenchHeader header = bench.header("bench offline");
            header.print(out);
            out.printf("# workload: %d requests%s, input %s tokens (%d in all), output %s tokens (%d in all), seed %d, temperature %s, EOS ignored%s%n",
                    numRequests, choices > 1 ? " of " + choices + " choices" : "", inputLen, requests.inputTokens(), outputLen,
                    workload.outputTokens(), seed, temperature, logprobs == null ? "" : ", logprobs " + logprobs);
            out.println("# engine: " + bench.describe(scheduler));

            int[][] prompts = RandomWorkload.repeated(requests.prompts(bench.vocabSize()), choices);
            int topLogprobs = logprobs == null ? -1 : logprobs;
            // No longer than the workload's first request: the KV cache is sized for the workload, and may hold no more.
            RandomWorkload warmup = new RandomWorkload(new int[] {Math.min(WARMUP_PROMPT_TOKENS, workload.inputLengths()[0])},
                    new int[] {Math.min(WARMUP_OUTPUT_TOKENS, workload.outputLengths()[0])}, seed);
            run(bench, scheduler, warmup, warmup.prompts(bench.vocabSize()), temperature, topLogprobs, Progress.NONE);
            bench.runner().warmUp(maxNumSeqs, scheduler.maxBatchedTokens(), workload.longest());
            Trace trace = traceOptions.open();  // the timed runs only
            bench.setTrace(trace);
            double[] seconds = new double[runs];
            Run last = null;
            GpuMonitor monitor = monitorOptions.start(err, Trace.OFF);
            for (int r = 0; r < runs; r++) {
                last = run(bench, scheduler, workload, prompts, temperature, topLogprobs, progress);
                seconds[r] = last.seconds();
                // bench.py's own line, so the figures read the same as mini-sglang's.
                out.printf("run %d/%d: Total: %dtok, Time: %.2fs, Throughput: %.2ftok/s%n", r + 1, runs, last.outputTokens(),
                        last.seconds(), last.outputTokens() / last.seconds());
                if (last.counters().steps() > 0) {
                    out.println("# runner: " + last.counters().describe((long) (last.seconds() * 1e9)));
                }
            }
            if (kernelTimeline.given()) {  // a run of its own after the timed ones, so that recording slows none of them
                KernelRecorder kernels = kernelTimeline.start(bench.backend());
                Run recorded = run(bench, scheduler, workload, prompts, temperature, topLogprobs, progress);
                kernelTimeline.finish(kernels, recorded.counters().replayedSteps(), out, err);
            }
            BenchHeader.printMeasuredChoices(out, bench.runner().measuredChoices());
            // The monitor covers the timed runs only: their energy over their output tokens.
            GpuReport gpu = monitor.stop();
            long timedOutputTokens = (long) runs * workload.outputTokens();
            Stats s = Stats.of(seconds);
            int[] cached = workload.cachedLengths(choices, scheduler.prefixCaching() ? bench.runner().blockAllocator().blockSize() : 0);
            WorkloadFloor floor = WorkloadFloor.of(bench.cost(), workload.inputLengths(), cached, workload.outputLengths(), maxNumSeqs,
                    scheduler.maxBatchedTokens(), bench.ceilings());
            floor.print(out, workload.outputTokens(), s.median(), last.steps());

            ResultTable table = new ResultTable(COLUMNS);
            // Input tokens are the prompts' (each once, as bench client counts them); output tokens every choice's.
            table.add(header.model(), header.device(), numRequests, requests.inputTokens(), workload.outputTokens(), runs,
                    s.median(), s.min(), s.max(), workload.outputTokens() / s.median(), requests.inputTokens() / s.median(),
                    last.steps(), last.preemptions(), floor.seconds(), floor.prefillSeconds(), floor.decodeSeconds(),
                    floor.memorySeconds(), floor.computeSeconds(), floor.seconds() / s.median());
            out.println();
            table.print(out);
            Map<String, Object> head = new LinkedHashMap<>(header.toMap());
            Map<String, Object> load = new LinkedHashMap<>(Map.of("num_requests", numRequests, "input_len", inputLen.toString(),
                    "output_len", outputLen.toString(), "seed", seed, "temperature", temperature, "ignore_eos", true));
            load.put("n", choices);
            load.put("logprobs", logprobs);
            head.put("workload", load);
            head.put("engine", bench.describe(scheduler));
            head.put("seconds_per_run", seconds);
            MonitorOptions.writeResults(out, files.csv(), files.json(), head, table, gpu, timedOutputTokens,
                    ResultTable.of("runs", "output_tokens").add(runs, timedOutputTokens));
            traceOptions.write(trace, err);
        }
        return 0;
    }

    private static LengthRange within(LengthRange range, int most) {
        return new LengthRange(Math.min(range.min(), most), Math.min(range.max(), most));
    }

    /**
     * Submits every request at once (sampling at bench.py's temperature, EOS ignored, a seed per request, each token's
     * {@code logprobs} most likely alternatives where that is not -1) and steps the engine until all are done; the time
     * runs from the first submission to the last token. Checks that every requested token was generated (EOS is ignored).
     */
    static Run run(BenchEngine bench, SchedulerConfig scheduler, RandomWorkload workload, int[][] prompts, float temperature,
                   int logprobs, Progress progress) {
        LlmEngine engine = bench.newEngine(scheduler);
        long expected = workload.outputTokens();
        StepCounters before = bench.runner().counters();
        long start = System.nanoTime();
        for (int i = 0; i < prompts.length; i++) {
            engine.add(prompts[i], workload.samplingParams(i, temperature).withLogprobs(logprobs), RequestListener.NONE);
        }
        while (engine.hasWork()) {
            engine.step();
            progress.update("generating", engine.generatedTokens(), expected);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        StepCounters counters = bench.runner().counters().minus(before);
        BenchEngine.release(engine);
        if (engine.generatedTokens() != expected) {
            throw new IllegalStateException("the engine generated " + engine.generatedTokens() + " tokens where "
                    + expected + " were requested with EOS ignored");
        }
        return new Run(seconds, engine.generatedTokens(), engine.steps(), engine.scheduler().preemptions(), counters);
    }

    /** The defaults (bench.py's workload on a GPU, shortened to fit the model's context); eight short requests when quick. */
    @Override
    public List<String> reportArguments(Suite suite) {
        if (suite.quick()) {
            return List.of("--num-requests", "8", "--input-len", "16:64", "--output-len", "16:64", "--runs", "1");
        }
        return List.of();
    }
}
