package dev.ember.cli;

import dev.ember.backend.streaming.StreamingMode;
import dev.ember.backend.streaming.StreamingSettings;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * Where a model's weights live: whole on the device, or streamed layer by layer through a window of it (seed 002's
 * modes and knobs). Part of {@link ModelOptions}, so that {@code ember generate}, {@code ember serve} and every
 * benchmark take them. Without a mode or a budget every weight is resident, as before streaming existed.
 */
public final class WeightStreamingOptions {
    private static final double GIB = 1L << 30;

    @Option(names = "--weight-mode", paramLabel = "MODE",
            description = "full (every weight on the device), preload (every layer in pinned host memory, streamed), stream "
                    + "(a pinned host cache of --cpu-cache-layers, the rest from the mapped files) or mixed (from the disk "
                    + "through a pinned staging ring); default: full where the weights fit --gpu-weight-budget, else "
                    + "stream where the host's memory holds them, else mixed")
    String mode;

    @Option(names = "--gpu-weight-budget", paramLabel = "GiB",
            description = "device memory the weights may take (resident ones and the streaming window); default: no limit")
    double gpuWeightBudgetGib;

    @Option(names = "--gpu-memory-limit", paramLabel = "GiB",
            description = "device memory Ember may use in all (weights, KV cache, buffers), to try a small GPU's limits on a "
                    + "large one; default: all there is")
    double gpuMemoryLimitGib;

    @Option(names = "--gpu-cached-layers", paramLabel = "N",
            description = "layers the device window holds while streaming; default: as many as the budget allows")
    int gpuCachedLayers;

    @Option(names = "--cpu-cache-layers", paramLabel = "N", defaultValue = "-1",
            description = "layers held packed in pinned host memory in stream mode; default: as many as the host's memory allows")
    int cpuCacheLayers;

    @Option(names = "--prefetch-distance", paramLabel = "N", defaultValue = "" + StreamingSettings.DEFAULT_PREFETCH_DISTANCE,
            description = "how many layers past the one computing a copy may be for; default: ${DEFAULT-VALUE}")
    int prefetchDistance;

    @Option(names = "--group-prefetch-depth", paramLabel = "N", defaultValue = "" + StreamingSettings.DEFAULT_GROUP_PREFETCH_DEPTH,
            description = "how many groups (attention or MLP halves) may be copied ahead of the one computing; default: ${DEFAULT-VALUE}")
    int groupPrefetchDepth;

    @Option(names = "--warmup-layers", paramLabel = "N", defaultValue = "" + StreamingSettings.DEFAULT_WARMUP_LAYERS,
            description = "layers copied into the window before the first step; default: ${DEFAULT-VALUE}")
    int warmupLayers;

    @Option(names = "--staging-mb", paramLabel = "MiB", defaultValue = "" + (StreamingSettings.DEFAULT_STAGING_BYTES >> 20),
            description = "size of the pinned staging ring for layers read from the files; default: ${DEFAULT-VALUE}")
    long stagingMib;

    @Option(names = "--weights-dir", paramLabel = "DIR",
            description = "where a --preset's random weights are written once as safetensors and read from when they stream "
                    + "(streaming reads files) or when this is given (so that full and streamed runs read the same weights); "
                    + "default: ember-weights in the system's temporary folder")
    Path weightsDir;

    /** The settings these options describe; {@code verbose} hears of each copy and eviction (or null). */
    public StreamingSettings settings(Consumer<String> verbose) {
        return new StreamingSettings(mode == null ? null : StreamingMode.parse(mode), bytes(gpuWeightBudgetGib),
                bytes(gpuMemoryLimitGib), gpuCachedLayers, cpuCacheLayers, prefetchDistance, groupPrefetchDepth, warmupLayers,
                stagingMib << 20, verbose);
    }

    public StreamingSettings settings() {
        return settings(null);
    }

    /** Whether --weights-dir was given: then a preset's weights are read from files there even when resident. */
    public boolean weightsDirectoryGiven() {
        return weightsDir != null;
    }

    /** The folder a streaming preset's weights are written to. */
    public Path weightsDirectory() {
        return weightsDir != null ? weightsDir : Path.of(System.getProperty("java.io.tmpdir"), "ember-weights");
    }

    private static long bytes(double gib) {
        return (long) (gib * GIB);
    }
}
