package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.monitor.GpuMonitor;
import dev.ember.monitor.GpuReport;
import dev.ember.monitor.GpuSummary;
import dev.ember.trace.Trace;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code --monitor} and {@code --monitor-interval}, for any benchmark to include as a picocli {@code @Mixin}: samples
 * the GPU through NVML while the benchmark runs and writes 001's layout, a results JSON with a {@code gpu} section
 * and a {@code <name>_gpu.json} beside it with every sample.
 */
public final class MonitorOptions {
    /** The GPU figures of one window of a benchmark, after the columns that say which part it was. */
    public static final List<String> WINDOW_GPU_COLUMNS = List.of("output_tokens", "duration_s", "energy_j",
            "energy_source", "power_mean_w", "power_peak_w", "energy_per_output_token_j", "gpu_util_mean_pct",
            "mem_used_peak_bytes", "temperature_peak_c");

    /**
     * The per-prompt-length GPU figures of the {@code _gpu.json} file of the benchmarks that generate tokens (latency,
     * stage, phase): each window's energy over the tokens generated in it.
     */
    public static final List<String> PROMPT_GPU_COLUMNS = withKeys(List.of("prompt_len"));

    @Option(names = "--monitor",
            description = "sample the GPU through NVML while the benchmark runs (power, energy, utilisation, memory, "
                    + "temperature) and report energy per output token")
    boolean enabled;

    @Option(names = "--monitor-interval", defaultValue = "0.1", paramLabel = "SECONDS",
            description = "seconds between GPU samples; default: ${DEFAULT-VALUE}")
    double intervalSeconds;

    public boolean enabled() {
        return enabled;
    }

    /**
     * Starts the monitor on GPU 0 when {@code --monitor} was given (otherwise one that takes nothing); where NVML is
     * missing, says why on {@code log} and goes on without GPU figures. Power and utilisation also go to {@code trace}.
     */
    public GpuMonitor start(PrintStream log, Trace trace) {
        if (!enabled) {
            return GpuMonitor.off();
        }
        if (!(intervalSeconds >= 0.001)) {
            throw new EmberException("--monitor-interval must be at least 0.001 seconds, got " + intervalSeconds);
        }
        GpuMonitor monitor = GpuMonitor.start(0, Duration.ofNanos(Math.round(intervalSeconds * 1e9)), trace);
        monitor.unavailableReason().ifPresent(reason -> log.println("ember: " + reason + "; the GPU figures stay empty"));
        return monitor;
    }

    /** {@code keys} followed by {@link #WINDOW_GPU_COLUMNS}. */
    static List<String> withKeys(List<String> keys) {
        List<String> columns = new ArrayList<>(keys);
        columns.addAll(WINDOW_GPU_COLUMNS);
        return List.copyOf(columns);
    }

    /** A row of {@link #PROMPT_GPU_COLUMNS}: the window {@code s}, in which {@code tokens} tokens were generated. */
    static Object[] promptGpuRow(int promptLen, long tokens, GpuSummary s) {
        return windowGpuRow(tokens, s, promptLen);
    }

    /** A row of {@link #withKeys}{@code (keys)}: the window {@code s}, in which {@code tokens} tokens were generated. */
    static Object[] windowGpuRow(long tokens, GpuSummary s, Object... keys) {
        Object[] figures = {tokens, s.durationSeconds(), s.energyJoules(), s.energySource().label(),
                s.meanPowerWatts(), s.peakPowerWatts(), s.energyPerTokenJoules(tokens), s.meanGpuUtilPct(),
                s.peakMemUsedBytes() < 0 ? null : s.peakMemUsedBytes(), s.peakTemperatureC()};
        Object[] row = Arrays.copyOf(keys, keys.length + figures.length);
        System.arraycopy(figures, 0, row, keys.length, figures.length);
        return row;
    }

    /** Where the GPU file of {@code resultsJson} goes: {@code results.json -> results_gpu.json}. */
    public static Path gpuFile(Path resultsJson) {
        String name = resultsJson.getFileName().toString();
        String stem = name.endsWith(".json") ? name.substring(0, name.length() - ".json".length()) : name;
        return resultsJson.resolveSibling(stem + "_gpu.json");
    }

    /**
     * Writes the CSV (when {@code csv} is not null) and, when {@code json} is not null, the JSON files of
     * {@link #writeJson}; and prints the GPU summary line when the monitor was asked for.
     */
    public static void writeResults(PrintStream out, Path csv, Path json, Map<String, ?> header, ResultTable results,
                                    GpuReport gpu, long outputTokens, ResultTable gpuRows) {
        if (!(gpu instanceof GpuReport.Off)) {
            out.println(gpu.describe(outputTokens));
        }
        if (csv != null) {
            results.writeCsv(csv);
        }
        if (json != null) {
            writeJson(json, header, results, gpu, outputTokens, gpuRows);
        }
    }

    /**
     * Writes {@code resultsJson} as {@code {"header", "results", "gpu": summary}} and, unless monitoring was off, the
     * {@code _gpu.json} beside it: {@code {"header", "gpu": summary with samples, "results": gpuRows}}, where
     * {@code gpuRows} holds per-part figures (energy per output token for each prompt length, say).
     */
    public static void writeJson(Path resultsJson, Map<String, ?> header, ResultTable results, GpuReport gpu,
                                 long outputTokens, ResultTable gpuRows) {
        if (gpu instanceof GpuReport.Off) {
            results.writeJson(resultsJson, header);
            return;
        }
        results.writeJson(resultsJson, header, Map.of("gpu", gpu.toMap(outputTokens, false)));
        Map<String, Object> gpuSection = new LinkedHashMap<>();
        gpuSection.put("gpu", gpu.toMap(outputTokens, true));
        gpuRows.writeJson(gpuFile(resultsJson), header, gpuSection);
    }
}
