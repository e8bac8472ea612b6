package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.backend.DeviceCeilings;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.PipelineSplit;
import dev.ember.backend.Stage;
import dev.ember.backend.StageProfile;
import dev.ember.backend.StageTotals;
import dev.ember.cli.ConsoleProgress;
import dev.ember.cli.LoadedModel;
import dev.ember.cli.ModelOptions;
import dev.ember.cli.PresetOption;
import dev.ember.cli.Stats;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.monitor.GpuMonitor;
import dev.ember.monitor.GpuReport;
import dev.ember.nativelib.Nvtx;
import dev.ember.sampling.SamplingParams;
import dev.ember.trace.Trace;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code ember bench stage}: seed 000's {@code ember_stage_breakdown}. One sequence is prefilled in chunks of
 * {@code --chunk-len} and then decoded {@code --decode-steps} tokens, through the engine one step at a time, with the
 * runner's stage profiling on; a row
 * {@code phase=prefill} holds the prefill's stage times and a row {@code phase=decode_per_token} one decode step's,
 * each the median over {@code --iters} runs. On the CPU stages are timed with the clock; on the GPU with CUDA events
 * between stages, every step run eagerly (no CUDA graphs), so the decode wall is the eager step's. Columns of stages the
 * runner does not have ({@code p2p} but in a pipeline, host-device copies on the CPU) are empty. Without
 * {@code --decode-with-sampling} a decode step's logits go back to the host, which picks the token outside the step's
 * stages; with it the token is picked on the device, in the {@code sampling} stage.
 */
@Command(name = "stage", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Where a prefill and a decode step spend their time: embedding, rmsnorm, attention, ffn, copies, "
                + "sampling, lm_head.", "The defaults (a prompt of 512 tokens, 64 decoded) suit a GPU and the CPU alike."})
public final class StageBenchCommand implements Callable<Integer>, ReportedBenchmark {
    /** ember_stage_breakdown's columns, in its order. */
    public static final List<String> COLUMNS = columns();
    /** How far the sum of the stages may be from the wall time before the output says so. */
    static final double TOLERANCE = 0.10;

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

    @Option(names = "--prompt-len", defaultValue = "512", description = "prompt tokens prefilled; default: ${DEFAULT-VALUE}")
    int promptLen;

    @Option(names = "--decode-steps", defaultValue = "64", description = "tokens decoded after the prompt; default: ${DEFAULT-VALUE}")
    int decodeSteps;

    @Option(names = "--chunk-len", defaultValue = "512", description = "most prompt tokens per prefill step; default: ${DEFAULT-VALUE}")
    int chunkLen;

    @Option(names = "--decode-with-sampling", description = "decode steps also pick their token (greedy) inside the step, "
            + "as a rollout does; the sampling column is filled")
    boolean decodeWithSampling;

    @Option(names = "--warmup", defaultValue = "1", description = "untimed runs first; default: ${DEFAULT-VALUE}")
    int warmup;

    @Option(names = "--iters", defaultValue = "3", description = "timed runs; the rows are their medians; default: ${DEFAULT-VALUE}")
    int iters;


    @Mixin
    ResultFileOptions files = new ResultFileOptions();

    private static List<String> columns() {
        List<String> c = new ArrayList<>(List.of("phase", "mode", "gpus", "split", "prompt_len", "decode_steps", "chunk_len",
                "overlap", "decode_sampling", "wall_ms"));
        for (Stage s : Stage.values()) {
            c.add(s.column());
        }
        c.add("profile_total_ms");
        return List.copyOf(c);
    }

    @Override
    public Integer call() {
        validate();
        PrintStream out = System.out;
        PrintStream err = System.err;
        ConsoleProgress progress = new ConsoleProgress(err);
        int tokens = promptLen + decodeSteps + 1;  // the prompt, its first token, and one more per decode step
        try (Backend backend = modelOptions.openBackend(err);
             LoadedModel loaded = LoadedModel.open(modelOptions, preset, backend, (config, weightBytes, kvBytes) -> {
                 if (tokens > config.maxPositions()) {
                     throw new EmberException("--prompt-len " + promptLen + " plus --decode-steps " + decodeSteps
                             + " plus the first token exceed the model's context of " + config.maxPositions() + " tokens");
                 }
                 return KvCacheSpec.forTokens(config, tokens, KvCacheSpec.DEFAULT_BLOCK_SIZE);
             }, progress, err)) {
            ModelRunner runner = loaded.runner();
            DeviceCeilings ceilings = backend.measureCeilings(progress);
            String dtype = loaded.dtype().name().toLowerCase(Locale.ROOT);
            String modelName = preset.given() ? loaded.name() : modelOptions.modelDirectory().toString();
            BenchHeader header = new BenchHeader("bench stage", backend.deviceName(), modelName, dtype,
                    BenchHeader.currentVersion(), Instant.now(), ceilings);
            header.print(out);
            boolean gpu = backend.onGpu();
            String timing = backend.timesStagesWithEvents() ? "CUDA events between stages; profiling runs every step eagerly (no CUDA graphs)"
                    : "host clock between stages";
            out.println("# stage timing: " + timing);
            Run[] runs = new Run[iters];
            Trace trace = traceOptions.open();
            Nvtx nvtx = nvtxOption.open(err);
            // Warm-ups are profiled but not traced: the trace holds the timed runs, as the rows do.
            StageTotals warming = new StageTotals(Trace.OFF, nvtx), timed = new StageTotals(trace, nvtx);
            StepSpans spans = StepSpans.steps(trace, nvtx);
            GpuReport gpuReport;
            ResultTable gpuRows = new ResultTable(MonitorOptions.PROMPT_GPU_COLUMNS);
            try (GpuMonitor monitor = monitorOptions.start(err, trace)) {
                GpuMonitor.Checkpoint from = monitor.checkpoint();
                try {
                    for (int i = 0; i < warmup + iters; i++) {
                        if (i == 0 || i == warmup) {
                            runner.profileStages(i < warmup ? warming : timed);
                        }
                        if (i == warmup) {
                            from = monitor.checkpoint();
                        }
                        Run run = runOnce(runner, i < warmup ? warming : timed, i < warmup ? StepSpans.OFF : spans,
                                i < warmup ? Trace.OFF : trace);
                        if (i >= warmup) {
                            runs[i - warmup] = run;
                        }
                        progress.update("bench stage", i + 1, warmup + iters);
                    }
                } finally {
                    runner.profileStages(StageProfile.OFF);
                }
                monitor.between(from, monitor.checkpoint()).ifPresent(summary ->
                        gpuRows.add(MonitorOptions.promptGpuRow(promptLen, (long) iters * decodeSteps, summary)));
                gpuReport = monitor.stop();
            } finally {
                traceOptions.write(trace, err);
            }
            ResultTable table = new ResultTable(COLUMNS);
            int[] stageLayers = modelOptions.pipelineStages(loaded.config().numLayers());
            int ranks = modelOptions.tensorParallelSize();
            String mode = stageLayers.length > 1 ? "pipeline" : ranks > 1 ? "tensor" : "single";
            String split = stageLayers.length > 1 ? PipelineSplit.describe(stageLayers) : ranks > 1 ? String.valueOf(ranks) : null;
            addRow(table, "prefill", gpu, mode, split, runs, true);
            addRow(table, "decode_per_token", gpu, mode, split, runs, false);
            table.print(out);
            for (List<Object> row : table.rows()) {
                double wall = (double) row.get(COLUMNS.indexOf("wall_ms"));
                double total = (double) row.get(COLUMNS.indexOf("profile_total_ms"));
                out.println(agreement((String) row.getFirst(), total, wall));
            }
            Map<String, Object> h = new LinkedHashMap<>(header.toMap());
            h.put("stage_timing", timing);
            h.put("iters", iters);
            h.put("warmup", warmup);
            // The monitor saw every run, warm-ups too: their decode steps are the run's output tokens.
            MonitorOptions.writeResults(out, files.csv(), files.json(), h, table, gpuReport, (long) (warmup + iters) * decodeSteps, gpuRows);
        }
        return 0;
    }

    /** The line saying whether the stages account for the wall time, within {@link #TOLERANCE}. */
    static String agreement(String phase, double stagesMs, double wallMs) {
        double off = Math.abs(stagesMs - wallMs) / wallMs;
        return String.format(Locale.ROOT, "[bench stage] %s: stages sum to %.3f ms of %.3f ms wall (%.1f%% apart): %s",
                phase, stagesMs, wallMs, 100 * off, off <= TOLERANCE ? "within 10%" : "NOT within 10%");
    }

    private void validate() {
        if (promptLen < 2 || decodeSteps < 1 || chunkLen < 2) {
            throw new EmberException("--prompt-len and --chunk-len must be at least 2 and --decode-steps at least 1");
        }
        if (iters < 1 || warmup < 0) {
            throw new EmberException("--iters must be at least 1 and --warmup at least 0");
        }
    }

    /** One run's stage times (ms) and wall time: the whole prefill, and the decode divided by its steps. */
    private record Run(double prefillWall, double[] prefill, double decodeWall, double[] decode) {
    }

    /**
     * A request that decodes {@code --decode-steps} tokens after its first. With --decode-with-sampling each step picks
     * its token on the device; without, each step's logits go back to the host, which picks it (a min-p of the smallest
     * float filters nothing, but is a filter the runners draw on the host), as a forward pass without sampling would.
     */
    private SamplingParams samplingParams() {
        SamplingParams greedy = SamplingParams.greedy(decodeSteps + 1);
        return decodeWithSampling ? greedy : greedy.withMinP(Float.MIN_VALUE);
    }

    private Run runOnce(ModelRunner runner, StageTotals totals, StepSpans spans, Trace trace) {
        int[] prompt = LatencyBenchCommand.syntheticPrompt(promptLen, runner.config().vocabSize());
        double[][] prefill = {null};
        ProfiledSequence.Walls walls = ProfiledSequence.run(runner, prompt, chunkLen, decodeSteps, samplingParams(), totals,
                t -> prefill[0] = snapshot(t, 1), spans, trace);
        return new Run(walls.prefillMs(), prefill[0], walls.decodeMsPerStep(), snapshot(totals, decodeSteps));
    }

    /** Each stage's milliseconds divided by {@code steps}; NaN for a stage the runner did not report. */
    private static double[] snapshot(StageTotals totals, int steps) {
        Stage[] stages = Stage.values();
        double[] ms = new double[stages.length];
        for (Stage s : stages) {
            ms[s.ordinal()] = totals.measured(s) ? totals.millis(s) / steps : Double.NaN;
        }
        return ms;
    }

    /**
     * One row: {@code mode} single, tensor or pipeline, {@code split} the layers of each pipeline stage (seed 000's
     * A,B) or the tensor-parallel ranks, empty for one runner; gpus is the device's index, empty on the CPU (whose
     * ranks are threads); no overlap. On rank 0 of a pipeline, p2p is its wait for the other stages.
     */
    private void addRow(ResultTable table, String phase, boolean gpu, String mode, String split, Run[] runs, boolean prefill) {
        List<Object> row = new ArrayList<>(List.of(phase, mode));
        row.add(gpu ? "0" : null);
        row.add(split);
        row.addAll(List.of(promptLen, decodeSteps, chunkLen, 0, decodeWithSampling ? 1 : 0));
        row.add(Stats.of(Arrays.stream(runs).mapToDouble(r -> prefill ? r.prefillWall : r.decodeWall).toArray()).median());
        double[] totalPerRun = new double[runs.length];
        for (Stage s : Stage.values()) {
            double[] values = Arrays.stream(runs).mapToDouble(r -> (prefill ? r.prefill : r.decode)[s.ordinal()]).toArray();
            if (Double.isNaN(values[0])) {
                row.add(null);
                continue;
            }
            for (int i = 0; i < runs.length; i++) {
                totalPerRun[i] += values[i];
            }
            row.add(Stats.of(values).median());
        }
        row.add(Stats.of(totalPerRun).median());
        table.add(row.toArray());
    }

    /** A prompt of 512 tokens (or what fits) and 64 decode steps; a few tokens when quick. */
    @Override
    public List<String> reportArguments(Suite suite) {
        if (suite.quick()) {
            return List.of("--prompt-len", "32", "--decode-steps", "4", "--chunk-len", "32", "--iters", "1", "--warmup", "1");
        }
        if (!suite.gpu()) {
            return List.of();
        }
        int prompt = Math.min(512, suite.contextLength() - 64);
        return List.of("--prompt-len", String.valueOf(prompt), "--decode-steps", "64", "--chunk-len", String.valueOf(prompt),
                "--iters", "3", "--warmup", "1");
    }
}
