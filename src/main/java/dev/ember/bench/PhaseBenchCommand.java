package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.backend.DeviceCeilings;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.StageProfile;
import dev.ember.backend.StageTotals;
import dev.ember.cli.ConsoleProgress;
import dev.ember.cli.LoadedModel;
import dev.ember.cli.ModelOptions;
import dev.ember.cli.PresetOption;
import dev.ember.cli.Stats;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.ModelConfig;
import dev.ember.monitor.GpuMonitor;
import dev.ember.monitor.GpuReport;
import dev.ember.nativelib.Nvtx;
import dev.ember.sampling.SamplingParams;
import dev.ember.trace.Trace;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code ember bench phase}: seed 000's {@code ember_phase_analysis}. Per prompt length, one sequence's prompt is
 * prefilled in one step and then {@code --decode-steps} tokens are decoded, with the runner's stage profiling on; each
 * decoder layer's time (its marks, from the runner's own profiling hook) is reported for the prefill and per decode
 * step, with rates from simplified counts: a layer's projection FLOPs plus attention's over the tokens read, and the
 * layer's weights plus the KV cache it reads and writes. Medians over {@code --iters} runs.
 */
@Command(name = "phase", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Per-layer prefill and decode time for each prompt length, with estimated TFLOP/s and GB/s.",
                "Defaults: prompts of 128, 512 and 2048 tokens on a GPU, 128 and 512 on the CPU; those that fit the model's context."})
public final class PhaseBenchCommand implements Callable<Integer>, ReportedBenchmark {
    /** ember_phase_analysis's columns, in its order. */
    public static final List<String> COLUMNS = List.of("prompt_len", "layer_id", "prefill_time_ms", "decode_time_ms",
            "prefill_tflops", "decode_tflops", "prefill_bandwidth", "decode_bandwidth");

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

    /** The default prompt lengths on a GPU and on the CPU; those that fit the model's context run. */
    static final List<Integer> GPU_PROMPT_LENS = List.of(128, 512, 2048);
    static final List<Integer> CPU_PROMPT_LENS = List.of(128, 512);

    @Option(names = "--prompt-lens", split = ",", arity = "1..*", paramLabel = "N",
            description = "prompt lengths in tokens; each is prefilled and then decoded; default: 128,512,2048 on a GPU, "
                    + "128,512 on the CPU, those that fit the model's context")
    List<Integer> promptLens;

    @Option(names = "--decode-steps", defaultValue = "100", description = "decode steps per prompt length; default: ${DEFAULT-VALUE}")
    int decodeSteps;

    @Option(names = "--warmup", defaultValue = "1", description = "untimed runs per prompt length; default: ${DEFAULT-VALUE}")
    int warmup;

    @Option(names = "--iters", defaultValue = "3", description = "timed runs per prompt length (medians); default: ${DEFAULT-VALUE}")
    int iters;

    @Option(names = "--device", defaultValue = "0", description = "GPU index (Ember runs on GPU 0: choose another with "
            + "CUDA_VISIBLE_DEVICES); default: ${DEFAULT-VALUE}")
    int device;

    @Option(names = "--output", paramLabel = "FILE", description = "also write the rows as CSV (as --csv elsewhere)")
    Path csv;

    @Option(names = "--json", paramLabel = "FILE", description = "also write the header and rows as JSON")
    Path json;

    @Override
    public Integer call() {
        validate();
        // The layers are timed by the runner the engine drives: in a pipeline that is the first stage's alone.
        EmberException.require(!modelOptions.pipelined(), "bench phase times each layer on the runner that computes it, "
                + "one stage of a pipeline: run it without --pipeline-parallel-size and --split (bench stage times a pipeline)");
        PrintStream out = System.out;
        PrintStream err = System.err;
        ConsoleProgress progress = new ConsoleProgress(err);
        try (Backend backend = modelOptions.openBackend(err);
             LoadedModel loaded = LoadedModel.open(modelOptions, preset, backend, (config, weightBytes, kvBytes) -> {
                 // Each prompt, its first token and one more per decode step.
                 DeviceDefaults defaults = new DeviceDefaults(backend.onGpu());
                 promptLens = defaults.promptLengths(promptLens, GPU_PROMPT_LENS, CPU_PROMPT_LENS, config.maxPositions(),
                         config.maxPositions() - decodeSteps - 1, "the first token and --decode-steps " + decodeSteps, err);
                 defaults.report(err);
                 int longest = promptLens.stream().mapToInt(Integer::intValue).max().orElseThrow() + decodeSteps + 1;
                 return KvCacheSpec.forTokens(config, longest, KvCacheSpec.DEFAULT_BLOCK_SIZE);
             }, progress, err)) {
            ModelRunner runner = loaded.runner();
            ModelConfig config = loaded.config();
            DeviceCeilings ceilings = backend.measureCeilings(progress);
            String dtype = loaded.dtype().name().toLowerCase(Locale.ROOT);
            String modelName = preset.given() ? loaded.name() : modelOptions.modelDirectory().toString();
            BenchHeader header = new BenchHeader("bench phase", backend.deviceName(), modelName, dtype,
                    BenchHeader.currentVersion(), Instant.now(), ceilings);
            header.print(out);
            String timing = backend.timesStagesWithEvents()
                    ? "CUDA events at each layer's start; profiling runs every step eagerly (no CUDA graphs)"
                    : "host clock at each layer's start";
            out.println("# layer timing: " + timing + "; TFLOP/s and GB/s are estimates from simplified counts");
            LayerCost cost = new LayerCost(config, runner.weightElementBytes(), runner.kvElementBytes());
            ResultTable table = new ResultTable(COLUMNS);
            Trace trace = traceOptions.open();
            Nvtx nvtx = nvtxOption.open(err);
            // Warm-ups are profiled but not traced: the trace holds the timed runs, as the rows do.
            StageTotals warming = new StageTotals(Trace.OFF, nvtx), timed = new StageTotals(trace, nvtx);
            StepSpans spans = StepSpans.steps(trace, nvtx);
            ResultTable gpuRows = new ResultTable(MonitorOptions.PROMPT_GPU_COLUMNS);
            GpuReport gpu;
            long total = (long) promptLens.size() * (warmup + iters), done = 0;
            try (GpuMonitor monitor = monitorOptions.start(err, trace)) {
                try {
                    for (int promptLen : promptLens) {
                        double[][] prefill = new double[iters][], decode = new double[iters][];
                        double[] prefillWall = new double[iters], decodeWall = new double[iters];
                        GpuMonitor.Checkpoint from = monitor.checkpoint();
                        for (int i = 0; i < warmup + iters; i++) {
                            if (i == 0 || i == warmup) {
                                runner.profileStages(i < warmup ? warming : timed);
                            }
                            if (i == warmup) {
                                from = monitor.checkpoint();
                            }
                            Run run = runOnce(runner, i < warmup ? warming : timed, i < warmup ? StepSpans.OFF : spans,
                                    i < warmup ? Trace.OFF : trace, promptLen);
                            if (i >= warmup) {
                                prefill[i - warmup] = run.prefillLayers;
                                decode[i - warmup] = run.decodeLayers;
                                prefillWall[i - warmup] = run.prefillWall;
                                decodeWall[i - warmup] = run.decodeWall;
                            }
                            progress.update("bench phase", ++done, total);
                        }
                        monitor.between(from, monitor.checkpoint()).ifPresent(summary ->
                                gpuRows.add(MonitorOptions.promptGpuRow(promptLen, (long) iters * decodeSteps, summary)));
                        double prefillSum = 0, decodeSum = 0;
                        for (int l = 0; l < config.numLayers(); l++) {
                            double p = median(prefill, l), d = median(decode, l);
                            prefillSum += p;
                            decodeSum += d;
                            long decodeContext = promptLen + decodeSteps / 2;  // the mean context a decode step reads
                            table.add(promptLen, l, p, d, cost.prefillFlops(promptLen) / (p * 1e9),
                                    cost.decodeFlops(decodeContext) / (d * 1e9), cost.prefillBytes(promptLen) / (p * 1e6),
                                    cost.decodeBytes(decodeContext) / (d * 1e6));
                        }
                        out.println(share("prefill", promptLen, prefillSum, Stats.of(prefillWall).median()));
                        out.println(share("decode step", promptLen, decodeSum, Stats.of(decodeWall).median()));
                    }
                } finally {
                    runner.profileStages(StageProfile.OFF);
                }
                gpu = monitor.stop();
            } finally {
                traceOptions.write(trace, err);
            }
            table.print(out);
            Map<String, Object> h = new LinkedHashMap<>(header.toMap());
            h.put("layer_timing", timing);
            h.put("bandwidth_unit", "GB/s");
            h.put("decode_steps", decodeSteps);
            h.put("iters", iters);
            h.put("warmup", warmup);
            // The monitor saw every run, warm-ups too: their decode steps are the run's output tokens.
            MonitorOptions.writeResults(out, csv, json, h, table, gpu, total * decodeSteps, gpuRows);
        }
        return 0;
    }

    private static double median(double[][] runs, int layer) {
        double[] values = new double[runs.length];
        for (int i = 0; i < runs.length; i++) {
            values[i] = runs[i][layer];
        }
        return Stats.of(values).median();
    }

    /** How much of a forward's wall time its layers account for (the rest: embedding, final norm, LM head, copies). */
    static String share(String phase, int promptLen, double layersMs, double wallMs) {
        return String.format(Locale.ROOT, "[bench phase] prompt_len=%d %s: layers sum to %.3f ms of %.3f ms wall (%.1f%%)",
                promptLen, phase, layersMs, wallMs, 100 * layersMs / wallMs);
    }

    private void validate() {
        if (promptLens != null && promptLens.stream().anyMatch(n -> n < 2)) {
            throw new EmberException("--prompt-lens must be at least 2, got " + promptLens);
        }
        if (decodeSteps < 1 || iters < 1 || warmup < 0) {
            throw new EmberException("--decode-steps and --iters must be at least 1 and --warmup at least 0");
        }
        if (device != 0) {
            throw new EmberException("--device " + device + ": Ember runs on GPU 0; pick the GPU with CUDA_VISIBLE_DEVICES="
                    + device);
        }
    }

    /** One run: each layer's prefill time and mean decode-step time (ms), and the walls of the prefill and a step. */
    private record Run(double[] prefillLayers, double prefillWall, double[] decodeLayers, double decodeWall) {
    }

    /** The prompt in one step, then the decode steps, each picking its token greedily on the device. */
    private Run runOnce(ModelRunner runner, StageTotals totals, StepSpans spans, Trace trace, int promptLen) {
        int layers = runner.config().numLayers();
        int[] prompt = LatencyBenchCommand.syntheticPrompt(promptLen, runner.config().vocabSize());
        double[][] prefill = {null};
        ProfiledSequence.Walls walls = ProfiledSequence.run(runner, prompt, promptLen, decodeSteps,
                SamplingParams.greedy(decodeSteps + 1), totals, t -> prefill[0] = layers(t, layers, 1), spans, trace);
        return new Run(prefill[0], walls.prefillMs(), layers(totals, layers, decodeSteps), walls.decodeMsPerStep());
    }

    private static double[] layers(StageTotals totals, int count, int steps) {
        double[] ms = new double[count];
        for (int l = 0; l < count; l++) {
            ms[l] = totals.layerMillis(l) / steps;
        }
        return ms;
    }

    /**
     * The simplified counts of one decoder layer: 2 FLOPs per weight per token plus attention's 4 x query width per
     * (query, cached token) pair; bytes are the layer's weights once plus the KV cache read and the new entries written.
     */
    private record LayerCost(long weightElements, long qDim, long kvBytesPerToken, long weightBytes, int window) {
        LayerCost(ModelConfig c, int weightBytes, int kvBytes) {
            this(c.layerMatrixParameters(), c.qDim(), 2L * c.kvDim() * kvBytes, c.layerMatrixParameters() * weightBytes,
                    c.slidingWindow());
        }

        private long read(long context) {
            return window > 0 ? Math.min(context, window) : context;
        }

        double prefillFlops(int tokens) {
            double pairs = 0;  // causal: token t reads t + 1 cached tokens
            for (int t = 0; t < tokens; t++) {
                pairs += read(t + 1);
            }
            return 2.0 * weightElements * tokens + 4.0 * qDim * pairs;
        }

        double decodeFlops(long context) {
            return 2.0 * weightElements + 4.0 * qDim * read(context);
        }

        double prefillBytes(int tokens) {
            return weightBytes + (double) kvBytesPerToken * tokens;
        }

        double decodeBytes(long context) {
            return weightBytes + (double) kvBytesPerToken * (read(context) + 1);
        }
    }

    /** A few prompt lengths within the context and 32 decode steps; two short prompts when quick. */
    @Override
    public List<String> reportArguments(Suite suite) {
        if (suite.quick()) {
            return List.of("--prompt-lens", "16,32", "--decode-steps", "4", "--iters", "1", "--warmup", "1");
        }
        if (!suite.gpu()) {
            return List.of();
        }
        List<String> lens = new java.util.ArrayList<>();
        for (int n = 128; n <= 2048 && n + 32 <= suite.contextLength(); n *= 4) {
            lens.add(String.valueOf(n));
        }
        return List.of("--prompt-lens", String.join(",", lens), "--decode-steps", "32", "--iters", "3", "--warmup", "1");
    }
}
