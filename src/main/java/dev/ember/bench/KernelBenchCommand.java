package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.backend.DeviceCeilings;
import dev.ember.backend.KernelSuite;
import dev.ember.cli.ConsoleProgress;
import dev.ember.cli.ModelOptions;
import dev.ember.cli.PresetOption;
import dev.ember.cli.Stats;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.monitor.GpuMonitor;
import dev.ember.monitor.GpuReport;
import dev.ember.monitor.GpuSummary;
import dev.ember.trace.Trace;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code ember bench kernel}, the seeds' {@code ember_kernel_bench}: every kernel the backend runs in a forward step,
 * matrix products included, at the shapes of a model (only its config is read: the operands are random), each timed
 * alone with the median of {@code --iters} runs after {@code --warmup}. Beside each time: the bytes the kernel must
 * move (from its shape), the bandwidth that makes and its share of {@code --hw-bw} (default: the copy bandwidth
 * measured on this device at start), and for matrix products and attention the TFLOP/s and their share of the
 * matrix-product rate measured at start. The backend's {@link KernelSuite} says which kernels there are; a figure
 * this device cannot give is left empty.
 */
@Command(name = "kernel", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Each kernel of a forward step at a model's shapes: median time, bytes moved, GB/s and TFLOP/s "
                + "against the device's measured ceilings.", "The defaults suit a GPU and the CPU alike."})
public final class KernelBenchCommand implements Callable<Integer>, ReportedBenchmark {
    static final List<String> COLUMNS = List.of("kernel", "implementation", "phase", "shape", "rows", "elapsed_us", "min_us",
            "max_us", "bytes_moved", "effective_gbps", "efficiency_pct", "tflops", "matmul_pct");
    /** The per-kernel GPU figures of the {@code _gpu.json} file: a case's window (all its runs) and its energy per run. */
    static final List<String> GPU_COLUMNS = List.of("kernel", "implementation", "phase", "shape", "runs", "duration_s",
            "energy_j", "energy_source", "power_mean_w", "power_peak_w", "energy_per_run_j", "gpu_util_mean_pct",
            "temperature_peak_c");
    /**
     * The shortest window whose energy is reported: NVML's energy counter moves every few tens of milliseconds, so a
     * shorter window's difference says more about when the counter ticked than about the kernel.
     */
    static final double MIN_ENERGY_WINDOW_S = 1.0;

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

    @Option(names = "--batch", split = ",", defaultValue = "1,2,4,8", paramLabel = "N",
            description = "decode batches to time (rows of one-token sequences); default: ${DEFAULT-VALUE}")
    List<Integer> batch;

    @Option(names = "--seq-len", defaultValue = "512", description = "tokens of the prefill chunk timed, and the context "
            + "each decode row attends to; default: ${DEFAULT-VALUE}")
    int seqLen;

    @Option(names = "--include-embedding", description = "also time the embedding lookup (needs the vocabulary-sized table)")
    boolean includeEmbedding;

    @Option(names = "--iters", defaultValue = "100", description = "timed runs of each kernel; default: ${DEFAULT-VALUE}")
    int iters;

    @Option(names = "--warmup", defaultValue = "10", description = "untimed runs first; default: ${DEFAULT-VALUE}")
    int warmup;

    @Option(names = "--hw-bw", paramLabel = "GB/s", description = "bandwidth ceiling for efficiency_pct; default: the faster "
            + "of the copy and read-stream bandwidths measured on this device at start")
    Double hwBandwidth;


    @Mixin
    ResultFileOptions files = new ResultFileOptions();

    @Override
    public Integer call() {
        DType type = parseDtype();
        validate();
        ModelConfig config = preset.modelConfig(modelOptions);
        String modelName = preset.given() ? preset.name() + " (shape)" : modelOptions.modelDirectory().getFileName().toString();
        if (seqLen > config.maxPositions()) {
            throw new EmberException("--seq-len " + seqLen + " exceeds the model's context of " + config.maxPositions() + " tokens");
        }
        PrintStream out = System.out;
        ConsoleProgress progress = new ConsoleProgress(System.err);
        KernelSuite.Workload workload = new KernelSuite.Workload(config, type, batch, seqLen, includeEmbedding,
                preset.weightsSeed());
        try (Backend backend = modelOptions.openBackend(System.err)) {
            DeviceCeilings ceilings = backend.measureCeilings(progress);
            double bandwidth = hwBandwidth != null ? hwBandwidth * 1e9 : ceilings.streamBytesPerSecond();
            try (KernelSuite suite = backend.kernelSuite(workload)) {
                BenchHeader header = new BenchHeader("bench kernel", backend.deviceName(), modelName,
                        type.name().toLowerCase(Locale.ROOT), BenchHeader.currentVersion(), Instant.now(), ceilings);
                header.print(out);
                out.printf(Locale.ROOT, "# efficiency against %.1f GB/s (%s); %s%n", bandwidth / 1e9,
                        hwBandwidth != null ? "--hw-bw" : "the faster of the measured copy and read-stream bandwidths", suite.method());
                Trace trace = traceOptions.open();
                StepSpans spans = new StepSpans(trace, nvtxOption.open(System.err), Trace.KERNEL);
                ResultTable table;
                ResultTable gpuRows = new ResultTable(GPU_COLUMNS);
                GpuReport gpu;
                try (GpuMonitor monitor = monitorOptions.start(System.err, trace)) {
                    table = measure(suite, bandwidth, ceilings.matmulFlopsPerSecond(), progress, spans, monitor, gpuRows);
                    gpu = monitor.stop();
                } finally {
                    traceOptions.write(trace, System.err);
                }
                table.print(out);
                Map<String, Object> h = new LinkedHashMap<>(header.toMap());
                h.put("hw_bw_gbps", bandwidth / 1e9);
                h.put("timing", suite.method());
                h.put("iters", iters);
                h.put("warmup", warmup);
                if (!(gpu instanceof GpuReport.Off)) {
                    h.put("energy_per", "kernel run: a case's energy over its warm-up and timed runs (no tokens are "
                            + "generated); each run includes what the timing does around it (the cache flush on the GPU); "
                            + "empty for windows under " + MIN_ENERGY_WINDOW_S + " s, below the energy counter's resolution");
                }
                MonitorOptions.writeResults(out, files.csv(), files.json(), h, table, gpu, 0, gpuRows);
            }
        }
        return 0;
    }

    /**
     * Times every case; a row per case with the derived rates, a span per case in {@code spans}, and with the monitor on
     * a row per case in {@code gpuRows}.
     */
    ResultTable measure(KernelSuite suite, double bandwidth, double matmulRate, ConsoleProgress progress, StepSpans spans,
                        GpuMonitor monitor, ResultTable gpuRows) {
        ResultTable table = new ResultTable(COLUMNS);
        List<KernelSuite.Case> cases = suite.cases();
        int runs = warmup + iters;
        for (int i = 0; i < cases.size(); i++) {
            KernelSuite.Case c = cases.get(i);
            progress.update("bench kernel", i, cases.size());
            String name = c.kernel() + " " + c.shape() + " (" + c.implementation() + ")";
            GpuMonitor.Checkpoint from = monitor.checkpoint();
            long span = spans.begin(name);
            double[] seconds = suite.time(c, warmup, iters);
            spans.end(name, span, "runs", runs);
            monitor.between(from, monitor.checkpoint()).ifPresent(window -> gpuRows.add(gpuRow(c, runs, window)));
            Stats s = Stats.of(seconds);
            double bytesPerSecond = c.bytesMoved() / s.median();
            double flopsPerSecond = c.flops() / s.median();
            table.add(c.kernel(), c.implementation(), c.phase(), c.shape(), c.rows(), s.median() * 1e6, s.min() * 1e6,
                    s.max() * 1e6, c.bytesMoved(), bytesPerSecond / 1e9, 100 * bytesPerSecond / bandwidth,
                    flopsPerSecond / 1e12, 100 * flopsPerSecond / matmulRate);
        }
        progress.update("bench kernel", cases.size(), cases.size());
        return table;
    }

    private static Object[] gpuRow(KernelSuite.Case c, int runs, GpuSummary w) {
        boolean resolved = w.durationSeconds() >= MIN_ENERGY_WINDOW_S;
        return new Object[] {c.kernel(), c.implementation(), c.phase(), c.shape(), runs, w.durationSeconds(),
                resolved ? w.energyJoules() : null, w.energySource().label(), w.meanPowerWatts(), w.peakPowerWatts(),
                resolved ? w.energyJoules() / runs : null, w.meanGpuUtilPct(), w.peakTemperatureC()};
    }

    /** The storage type of the timed weights and activations: {@code --dtype} (bfloat16 or float16; auto: bfloat16). */
    private DType parseDtype() {
        DType type = modelOptions.dtype().orElse(DType.BF16);
        EmberException.require(type != DType.F32, "bench kernel times bfloat16 or float16 kernels, not --dtype float32");
        return type;
    }

    private void validate() {
        EmberException.require(!batch.isEmpty() && batch.stream().allMatch(b -> b != null && b >= 1), "--batch takes decode batch sizes of at least 1");
        EmberException.require(seqLen >= 2, "--seq-len must be at least 2 (a prefill chunk of one token is a decode)");
        EmberException.require(iters >= 1, "--iters must be at least 1");
        EmberException.require(warmup >= 0, "--warmup must be at least 0");
        EmberException.require(hwBandwidth == null || hwBandwidth > 0, "--hw-bw must be a positive bandwidth in GB/s");
    }

    /** The decode batches the runner graphs most and a prefill within the context; a few runs each when quick. */
    @Override
    public List<String> reportArguments(Suite suite) {
        if (suite.quick()) {
            return List.of("--batch", "1", "--seq-len", "32", "--iters", "3", "--warmup", "1");
        }
        if (!suite.gpu()) {
            return List.of();
        }
        int prefill = Math.min(512, suite.contextLength() / 2);
        return List.of("--batch", "1,2,4,8", "--seq-len", String.valueOf(prefill), "--iters", "100", "--warmup", "10");
    }
}
