package dev.ember.backend.streaming;

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

    public StreamingSettings {
        if (gpuWeightBudget < 0 || gpuMemoryLimit < 0 || gpuCachedLayers < 0 || cpuCacheLayers < -1 || prefetchDistance < 1
                || groupPrefetchDepth < 1 || warmupLayers < 0 || stagingBytes < STAGING_BUFFERS * DirectFile.ALIGNMENT) {
            throw new IllegalArgumentException("invalid weight streaming settings " + this);
        }
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
