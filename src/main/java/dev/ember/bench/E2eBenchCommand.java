package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.backend.DeviceCeilings;
import dev.ember.backend.KernelRecorder;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.WorkMarks;
import dev.ember.cli.ConsoleProgress;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.RequestListener;
import dev.ember.engine.StepObserver;
import dev.ember.scheduler.ScheduledStep;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.cli.LoadedModel;
import dev.ember.cli.ModelOptions;
import dev.ember.cli.PresetOption;
import dev.ember.cli.Stats;
import dev.ember.monitor.GpuMonitor;
import dev.ember.monitor.GpuReport;
import dev.ember.trace.Trace;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.sampling.SamplingParams;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code ember bench e2e}, the seeds' {@code ember_benchmark}: a fixed workload of {@code --decode-batch} random
 * prompts of {@code --prompt-len} tokens, prefilled in steps of at most {@code --chunk-len} tokens, then greedy
 * decoding until each has {@code --gen-len} tokens, through the engine ({@link LlmEngine}) with the scheduler set to
 * that workload ({@link #schedulerConfig()}).
 * Prints and writes one row of the seeds' columns, medians over {@code --iters} runs after {@code --warmup}, and
 * beside it the decode speed as a fraction of the bandwidth roofline: the bytes a decode step must read (weights
 * but the embedding table, plus the KV cache) over the copy bandwidth measured on this device at start.
 *
 * <p>Columns: {@code ttft_ms} until the first sequence's first token; {@code prefill_ms} until every prompt is
 * prefilled (and its first token chosen); {@code decode_ms} for the {@code gen_len - 1} decode steps that follow;
 * {@code decode_tok_s} the tokens those steps produced per second.
 */
@Command(name = "e2e", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"End-to-end prefill + decode timing (TTFT, prefill, decode tokens/s) beside the bandwidth roofline.",
                "The defaults (one prompt of 128 tokens, 128 generated) suit a GPU and the CPU alike."})
public final class E2eBenchCommand implements Callable<Integer>, ReportedBenchmark {
    static final List<String> COLUMNS = List.of("mode", "prompt_len", "gen_len", "chunk_len", "batch_size", "ttft_ms",
            "prefill_ms", "decode_ms", "decode_tok_s");

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    PresetOption preset;

    @Mixin
    MonitorOptions monitorOptions;

    @Mixin
    TraceOptions traceOptions;

    @Mixin
    NvtxOption nvtxOption;

    @Mixin
    KernelTimelineOption kernelTimeline;

    @Option(names = "--prompt-len", defaultValue = "128", description = "prompt tokens per sequence; default: ${DEFAULT-VALUE}")
    int promptLen;

    @Option(names = "--gen-len", defaultValue = "128", description = "tokens generated per sequence (>= 2); default: ${DEFAULT-VALUE}")
    int genLen;

    @Option(names = "--chunk-len", defaultValue = "512", description = "most prompt tokens per prefill step; default: ${DEFAULT-VALUE}")
    int chunkLen;

    @Option(names = "--decode-batch", defaultValue = "1", description = "sequences decoded together; default: ${DEFAULT-VALUE}")
    int decodeBatch;

    @Option(names = "--iters", defaultValue = "3", description = "timed runs (the row holds their medians); default: ${DEFAULT-VALUE}")
    int iters;

    @Option(names = "--warmup", defaultValue = "1", description = "untimed runs first; default: ${DEFAULT-VALUE}")
    int warmup;


    @Mixin
    ResultFileOptions files = new ResultFileOptions();

    @Option(names = "--seed", defaultValue = "1", description = "seed of the prompts; default: ${DEFAULT-VALUE}")
    long seed;

    @Option(names = {"--no-overlap", "--disable-overlap-schedule"},
            description = "await each decode step before submitting the next, rather than preparing step N+1 while the "
                    + "device computes step N (its tokens carried on the device), as the serving engine does")
    boolean noOverlap;

    /** One timed run, in milliseconds. */
    record Run(double ttftMs, double prefillMs, double decodeMs) {
    }

    /** The points of a run that its figures are timed between. */
    enum Point { START, FIRST_TOKEN, PREFILLED, END }

    /** A loaded runner and the host model behind it (none for presets made on the GPU). */
    private record Loaded(String name, DType dtype, ModelRunner runner, Model model) implements AutoCloseable {
        @Override
        public void close() {
            runner.close();
            if (model != null) {
                model.close();
            }
        }
    }

    @Override
    public Integer call() {
        validate();
        PrintStream out = System.out;
        PrintStream err = System.err;
        ConsoleProgress progress = new ConsoleProgress(err);
        try (Backend backend = modelOptions.openBackend(err); LoadedModel loaded = LoadedModel.open(modelOptions, preset, backend, this::kvCache, progress, err)) {
            ModelRunner runner = loaded.runner();
            kernelTimeline.check(backend);
            DeviceCeilings ceilings = backend.measureCeilings(progress);
            BenchHeader header = new BenchHeader("bench e2e", runner.deviceName(), loaded.name(),
                    loaded.dtype().name().toLowerCase(Locale.ROOT), BenchHeader.currentVersion(), Instant.now(), ceilings);
            header.print(out);
            List<Run> runs = new ArrayList<>();
            Trace trace = traceOptions.open();  // the timed runs only
            StepSpans spans = StepSpans.steps(trace, nvtxOption.open(err));
            GpuMonitor monitor = GpuMonitor.off();
            String timing;
            try (WorkMarks marks = runner.workMarks(Point.values().length)) {
                timing = marks.method();
                for (int i = 0; i < warmup + iters; i++) {
                    progress.update("bench e2e", i, warmup + iters);
                    if (i == warmup) {
                        monitor = monitorOptions.start(err, trace);  // the timed runs only
                    }
                    Run r = runOnce(runner, new SplittableRandom(seed + i), i < warmup ? StepSpans.OFF : spans, marks,
                            i < warmup ? Trace.OFF : trace);
                    if (i >= warmup) {
                        runs.add(r);
                    }
                }
                if (kernelTimeline.given()) {  // a run of its own after the timed ones, so that recording slows none of them
                    KernelRecorder kernels = kernelTimeline.start(backend);
                    runOnce(runner, new SplittableRandom(seed + warmup + iters - 1), StepSpans.OFF, marks, Trace.OFF);
                    kernelTimeline.finish(kernels, genLen - 1, out, err);
                }
            } finally {
                traceOptions.write(trace, err);
            }
            GpuReport gpu = monitor.stop();
            long timedTokens = (long) iters * decodeBatch * genLen;
            progress.update("bench e2e", warmup + iters, warmup + iters);

            int decodeTokens = decodeBatch * (genLen - 1);
            double decodeMs = Stats.of(runs.stream().mapToDouble(Run::decodeMs).toArray()).median();
            double tokensPerSecond = Stats.of(runs.stream().mapToDouble(r -> decodeTokens / (r.decodeMs() / 1e3)).toArray()).median();
            ResultTable table = new ResultTable(COLUMNS).add(decodeBatch == 1 ? "single" : "batch", promptLen, genLen, chunkLen,
                    decodeBatch, Stats.of(runs.stream().mapToDouble(Run::ttftMs).toArray()).median(),
                    Stats.of(runs.stream().mapToDouble(Run::prefillMs).toArray()).median(), decodeMs, tokensPerSecond);
            table.print(out);

            ModelConfig c = runner.config();
            double weightBytes = ModelCost.of(c, runner.weightElementBytes(), 0).weightBytes();
            double kvBytes = averageKvBytesPerStep(c, runner.kvElementBytes());
            double floorSeconds = ceilings.secondsToMove(weightBytes + kvBytes);
            double rooflineTokensPerSecond = decodeBatch / floorSeconds;
            out.printf(Locale.ROOT, "# decode roofline: %.3f GB of weights + %.3f GB of KV cache per step at %.0f GB/s copy "
                            + "bandwidth = %.1f tokens/s; measured %.1f tokens/s = %.1f%% of the roofline%n",
                    weightBytes / 1e9, kvBytes / 1e9, ceilings.copyBytesPerSecond() / 1e9, rooflineTokensPerSecond,
                    tokensPerSecond, 100 * tokensPerSecond / rooflineTokensPerSecond);
            BenchHeader.printMeasuredChoices(out, runner.measuredChoices());
            Map<String, Object> h = new LinkedHashMap<>(header.toMap());
            h.put("decode_weight_bytes_per_step", weightBytes);
            h.put("decode_kv_bytes_per_step", kvBytes);
            h.put("roofline_decode_tok_s", rooflineTokensPerSecond);
            h.put("roofline_ratio", tokensPerSecond / rooflineTokensPerSecond);
            h.put("timing", timing);
            h.put("overlap", !noOverlap);
            MonitorOptions.writeResults(out, files.csv(), files.json(), h, table, gpu, timedTokens,
                    ResultTable.of("iters", "output_tokens").add(iters, timedTokens));
        }
        return 0;
    }

    private void validate() {
        EmberException.require(promptLen >= 1, "--prompt-len must be at least 1");
        EmberException.require(genLen >= 2, "--gen-len must be at least 2 (the first token comes with the prefill; decode makes the rest)");
        EmberException.require(chunkLen >= 1, "--chunk-len must be at least 1");
        EmberException.require(decodeBatch >= 1, "--decode-batch must be at least 1");
        EmberException.require(iters >= 1, "--iters must be at least 1");
        EmberException.require(warmup >= 0, "--warmup must be at least 0");
    }

    /** Room for every sequence of the batch at its full length, within the model's context. */
    private KvCacheSpec kvCache(ModelConfig config, long weightBytes, int kvElementBytes) {
        int total = promptLen + genLen;
        EmberException.require(total <= config.maxPositions(), "--prompt-len + --gen-len = " + total + " exceeds the model's context of "
                + config.maxPositions() + " tokens");
        int blockSize = KvCacheSpec.DEFAULT_BLOCK_SIZE;
        int blocksPerSequence = (total + blockSize - 1) / blockSize;
        return KvCacheSpec.forTokens(config, decodeBatch * blocksPerSequence * blockSize, blockSize);
    }

    /** Bytes of KV cache a decode step reads, averaged over the run's decode steps (contexts prompt+1 .. prompt+gen-1). */
    private double averageKvBytesPerStep(ModelConfig c, int elementBytes) {
        double averageContext = promptLen + genLen / 2.0;
        return decodeBatch * averageContext * 2.0 * c.numLayers() * c.kvDim() * elementBytes;
    }

    /**
     * The engine's settings for the seeds' workload: every prompt admitted at once and prefilled first, in steps of at
     * most chunk-len tokens, then the whole batch decoded together; no prefix cache (the prompts are random anyway).
     */
    SchedulerConfig schedulerConfig() {
        return new SchedulerConfig(decodeBatch, Math.max(chunkLen, decodeBatch), chunkLen, SchedulePolicy.PREFILL_FIRST,
                false, !noOverlap);
    }

    /**
     * Runs the batch through the engine: its prompts prefilled, then decoded until each has gen-len tokens (step N+1
     * submitted before step N is awaited, its tokens carried on the device, unless --no-overlap). The run's figures are
     * the times between its {@link Point}s, marked on {@code marks} as the engine submits the steps that end them.
     */
    Run runOnce(ModelRunner runner, SplittableRandom random, StepSpans spans, WorkMarks marks, Trace trace) {
        LlmEngine engine = LlmEngine.tokensOnly(runner, schedulerConfig());
        engine.setTrace(trace);
        int vocab = runner.config().vocabSize();
        SamplingParams greedy = SamplingParams.greedy(genLen).withIgnoreEos(true);
        for (int i = 0; i < decodeBatch; i++) {
            engine.add(random.ints(promptLen, 0, vocab).toArray(), greedy, RequestListener.NONE);
        }
        int[] prefilled = {0};
        long[] submittedTokens = {0};
        engine.setObserver(new StepObserver() {
            @Override
            public void submitted(ScheduledStep step) {
                submittedTokens[0] += step.tokens();
                int before = prefilled[0];
                for (ScheduledStep.Work w : step.work()) {
                    if (w.samples() && w.start() < promptLen) {
                        prefilled[0]++;  // a prompt's last chunk, which samples its first token
                    }
                }
                if (before == 0 && prefilled[0] > 0) {
                    marks.mark(Point.FIRST_TOKEN.ordinal());
                }
                if (before < decodeBatch && prefilled[0] == decodeBatch) {
                    marks.mark(Point.PREFILLED.ordinal());
                }
            }
        });
        marks.mark(Point.START.ordinal());
        while (engine.hasWork()) {
            String name = prefilled[0] < decodeBatch ? "prefill_step" : "decode_step";
            long span = spans.begin(name);
            long before = submittedTokens[0];
            engine.step();
            spans.end(name, span, "tokens", submittedTokens[0] - before);  // 0: the last call only awaits
        }
        marks.mark(Point.END.ordinal());
        if (engine.generatedTokens() != (long) decodeBatch * genLen) {
            throw new IllegalStateException("the engine generated " + engine.generatedTokens() + " tokens where "
                    + (long) decodeBatch * genLen + " were asked for with EOS ignored");
        }
        return new Run(between(marks, Point.START, Point.FIRST_TOKEN), between(marks, Point.START, Point.PREFILLED),
                between(marks, Point.PREFILLED, Point.END));
    }

    private static double between(WorkMarks marks, Point from, Point to) {
        return marks.millisBetween(from.ordinal(), to.ordinal());
    }

    /** On a GPU the batch-1 decode workload (128 prompt tokens, 256 generated), shortened to fit the model; a few tokens when quick. */
    @Override
    public List<String> reportArguments(Suite suite) {
        if (suite.quick()) {
            return List.of("--prompt-len", "32", "--gen-len", "8", "--iters", "1", "--warmup", "1");
        }
        if (!suite.gpu()) {
            return List.of();
        }
        int prompt = Math.min(128, suite.contextLength() / 4);
        int gen = Math.min(256, suite.contextLength() / 2);
        return List.of("--prompt-len", String.valueOf(prompt), "--gen-len", String.valueOf(gen), "--iters", "3", "--warmup", "1");
    }
}
