package dev.ember.backend.streaming;

import dev.ember.EmberException;

import java.util.function.Consumer;

/**
 * What the user asked of weight streaming (the options of {@code --weight-mode} and its knobs, seed 002's); the
 * {@link StreamingPlan} made of them with the model and the memory at hand decides what runs.
 *
 * @param mode               the mode asked for, or null for the automatic choice: {@code full} where the weights fit
 *                           the budget, else {@code stream} where the host's memory holds every layer, else {@code mixed}
 * @param gpuWeightBudget    bytes the device may give the weights (resident ones and the window), or 0 for no limit
 * @param gpuMemoryLimit     bytes of the device's memory the runner may use in all, or 0 for all there is
 * @param gpuCachedLayers    layers the device window holds, or 0 for as many as the budget allows
 * @param cpuCacheLayers     layers the pinned host cache holds in {@code stream} mode, or -1 for as many as the host's
 *                           memory allows
 * @param prefetchDistance   how many layers past the one computing a copy may be for
 * @param groupPrefetchDepth how many groups may be copied ahead of the one computing
 * @param warmupLayers       layers copied into the window before the first step
 * @param stagingBytes       bytes of the pinned staging ring
 * @param verbose            hears of every copy and eviction as it is issued, or null
 */
public record StreamingSettings(StreamingMode mode, long gpuWeightBudget, long gpuMemoryLimit, int gpuCachedLayers,
                                int cpuCacheLayers, int prefetchDistance, int groupPrefetchDepth, int warmupLayers,
                                long stagingBytes, Consumer<String> verbose) {
    /** Seed 002's knobs. */
    public static final int DEFAULT_PREFETCH_DISTANCE = 6;
    public static final int DEFAULT_GROUP_PREFETCH_DEPTH = 4;
    public static final int DEFAULT_WARMUP_LAYERS = 4;
    public static final long DEFAULT_STAGING_BYTES = 64L << 20;
    /** Buffers the staging ring is cut into: one is filled while the others' copies run. */
    public static final int STAGING_BUFFERS = 4;

    /** The automatic choice without a budget: every weight on the device, as before streaming existed. */
    public static final StreamingSettings AUTOMATIC = new StreamingSettings(null, 0, 0, 0, -1, DEFAULT_PREFETCH_DISTANCE,
            DEFAULT_GROUP_PREFETCH_DEPTH, DEFAULT_WARMUP_LAYERS, DEFAULT_STAGING_BYTES, null);

    /**
     * Checks each knob, naming its option and the value given (in a compact constructor {@code this} still holds the
     * defaults, zeros and nulls, so the record itself cannot say what was wrong).
     */
    public StreamingSettings {
        EmberException.require(gpuWeightBudget >= 0, "--gpu-weight-budget must not be negative, not " + gpuWeightBudget + " bytes");
        EmberException.require(gpuMemoryLimit >= 0, "--gpu-memory-limit must not be negative, not " + gpuMemoryLimit + " bytes");
        EmberException.require(gpuCachedLayers >= 0, "--gpu-cached-layers must be at least 0 (0: as many as the budget "
                + "allows), not " + gpuCachedLayers);
        EmberException.require(cpuCacheLayers >= -1, "--cpu-cache-layers must be at least 0 (or -1: as many as the host's "
                + "memory allows), not " + cpuCacheLayers);
        EmberException.require(prefetchDistance >= 1, "--prefetch-distance must be at least 1 (copies may be for the next "
                + "layer), not " + prefetchDistance);
        EmberException.require(groupPrefetchDepth >= 1, "--group-prefetch-depth must be at least 1, not " + groupPrefetchDepth);
        EmberException.require(warmupLayers >= 0, "--warmup-layers must not be negative, not " + warmupLayers);
        EmberException.require(stagingBytes >= STAGING_BUFFERS * DirectFile.ALIGNMENT, "--staging-mb: the staging ring needs at "
                + "least " + STAGING_BUFFERS * DirectFile.ALIGNMENT + " bytes, not " + stagingBytes);
    }

    /** These settings in mode {@code mode} (null: automatic). */
    public StreamingSettings withMode(StreamingMode mode) {
        return new StreamingSettings(mode, gpuWeightBudget, gpuMemoryLimit, gpuCachedLayers, cpuCacheLayers, prefetchDistance,
                groupPrefetchDepth, warmupLayers, stagingBytes, verbose);
    }

    /** These settings with a weight budget of {@code bytes}. */
    public StreamingSettings withBudget(long bytes) {
        return new StreamingSettings(mode, bytes, gpuMemoryLimit, gpuCachedLayers, cpuCacheLayers, prefetchDistance,
                groupPrefetchDepth, warmupLayers, stagingBytes, verbose);
    }

    /** These settings reporting each copy and eviction to {@code listener}. */
    public StreamingSettings withVerbose(Consumer<String> listener) {
        return new StreamingSettings(mode, gpuWeightBudget, gpuMemoryLimit, gpuCachedLayers, cpuCacheLayers, prefetchDistance,
                groupPrefetchDepth, warmupLayers, stagingBytes, listener);
    }

    /** Whether these settings may stream: a mode other than full was asked for, or a budget was set. */
    public boolean mayStream() {
        return mode != null ? mode != StreamingMode.FULL : gpuWeightBudget > 0;
    }
}
