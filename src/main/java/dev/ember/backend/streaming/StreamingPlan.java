package dev.ember.backend.streaming;

import dev.ember.EmberException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.OptionalLong;

/**
 * What runs: the mode, and for a streaming one the schedule's shape (window, host cache, staging ring), decided from
 * the user's {@link StreamingSettings}, the model's bytes and the memory at hand.
 *
 * @param mode          the mode that runs
 * @param shape         the schedule's numbers; null in {@code full} mode
 * @param residentBytes device bytes of the weights that stay resident (all of them in {@code full} mode; else the
 *                      embedding, the final norm and the output projection)
 * @param windowBytes   device bytes of the window's slots (0 in {@code full} mode)
 */
public record StreamingPlan(StreamingMode mode, ScheduleShape shape, long residentBytes, long windowBytes) {

    /** Every weight resident. */
    public static StreamingPlan full(long weightBytes) {
        return new StreamingPlan(StreamingMode.FULL, null, weightBytes, 0);
    }

    public boolean streams() {
        return mode != StreamingMode.FULL;
    }

    /** Device bytes the weights take under this plan. */
    public long deviceBytes() {
        return residentBytes + windowBytes;
    }

    /**
     * Decides. {@code headBytes} are the device bytes of the weights that stay resident while streaming (embedding,
     * final norm, output projection), {@code layers} and {@code layout} the decoder layers and their groups;
     * {@code hostAvailable} the host memory free for a pinned cache. Fails, saying how much of each memory is needed,
     * where the budget cannot hold the resident weights and a window of one layer, or where a host cache that was
     * asked for does not fit.
     */
    public static StreamingPlan decide(StreamingSettings s, String modelName, int layers, GroupLayout layout, long headBytes,
                                       long hostAvailable) {
        long attention = layout.bytes(WeightGroup.Kind.ATTENTION), mlp = layout.bytes(WeightGroup.Kind.MLP);
        long layerBytes = attention + mlp;
        long allBytes = headBytes + layers * layerBytes;
        long budget = s.gpuWeightBudget() > 0 ? s.gpuWeightBudget() : Long.MAX_VALUE;
        long stagingBuffer = Math.max(DirectFile.ALIGNMENT,
                DirectFile.alignDown(s.stagingBytes() / StreamingSettings.STAGING_BUFFERS));
        long staging = stagingBuffer * StreamingSettings.STAGING_BUFFERS;
        StreamingMode mode = s.mode();
        if (mode == null) {
            if (allBytes <= budget) {
                return full(allBytes);
            }
            mode = layers * layerBytes + staging <= hostAvailable ? StreamingMode.STREAM : StreamingMode.MIXED;
        }
        if (mode == StreamingMode.FULL) {
            if (allBytes > budget) {
                throw new EmberException(String.format(Locale.ROOT, "%s: its weights take %.2f GiB on the device, more than the "
                        + "GPU weight budget of %.2f GiB; stream them (--weight-mode stream, mixed or preload) or raise "
                        + "--gpu-weight-budget", modelName, gib(allBytes), gib(budget)));
            }
            return full(allBytes);
        }
        int window = s.gpuCachedLayers() > 0 ? Math.min(layers, s.gpuCachedLayers())
                : (int) Math.min(layers, budget == Long.MAX_VALUE ? layers : Math.max(0, (budget - headBytes) / layerBytes));
        if (window < 1 || headBytes + window * layerBytes > budget) {
            throw new EmberException(String.format(Locale.ROOT, "%s does not fit: the GPU weight budget of %.2f GiB must hold "
                            + "the resident weights (embedding, final norm, output projection: %.2f GiB) and a window of %d "
                            + "layer(s) (%.2f GiB each): at least %.2f GiB; streaming every layer from the host's memory "
                            + "needs %.2f GiB of it (%.2f GiB available), from the disk (mixed) %.2f GiB; raise "
                            + "--gpu-weight-budget or lower --gpu-cached-layers",
                    modelName, gib(budget), gib(headBytes), Math.max(1, window), gib(layerBytes),
                    gib(headBytes + Math.max(1, window) * layerBytes), gib(layers * layerBytes + staging), gib(hostAvailable),
                    gib(staging)));
        }
        int cached = switch (mode) {
            case PRELOAD -> layers;
            case STREAM -> s.cpuCacheLayers() >= 0 ? Math.min(layers, s.cpuCacheLayers())
                    : (int) Math.max(0, Math.min(layers, (hostAvailable - staging) / layerBytes));
            case MIXED, FULL -> 0;
        };
        long hostNeeded = cached * layerBytes + staging;
        if (mode != StreamingMode.MIXED && hostNeeded > hostAvailable) {
            throw new EmberException(String.format(Locale.ROOT, "%s: %s mode needs %.2f GiB of pinned host memory (%d cached "
                            + "layers of %.2f GiB and the staging ring) but %.2f GiB is available; use --weight-mode mixed "
                            + "(the disk, %.2f GiB of host memory) or fewer --cpu-cache-layers",
                    modelName, mode.label(), gib(hostNeeded), cached, gib(layerBytes), gib(hostAvailable), gib(staging)));
        }
        ScheduleShape shape = new ScheduleShape(layers, attention, mlp, window, s.prefetchDistance(), s.groupPrefetchDepth(),
                s.warmupLayers(), cached, StreamingSettings.STAGING_BUFFERS, stagingBuffer);
        return new StreamingPlan(mode, shape, headBytes, window * layerBytes);
    }

    /** One line for logs and benchmark headers. */
    public String describe() {
        if (!streams()) {
            return String.format(Locale.ROOT, "weights: full (%.2f GiB on the device)", gib(residentBytes));
        }
        return String.format(Locale.ROOT, "weights: %s, %.3f GiB resident + a window of %d of %d layers (%.3f GiB); %d layers "
                        + "in the host cache; %.3f GB streamed per step; prefetch distance %d, depth %d, warm-up %d layers, "
                        + "staging %d x %d MiB",
                mode.label(), gib(residentBytes), shape.windowLayers(), shape.layers(), gib(windowBytes), shape.cachedLayers(),
                shape.bytesPerStep() / 1e9, shape.prefetchDistance(), shape.groupPrefetchDepth(), shape.warmupLayers(),
                shape.stagingBuffers(), shape.stagingBufferBytes() >> 20);
    }

    /** The host memory free for a cache: Linux's MemAvailable, else the JVM's view of free physical memory. */
    public static long hostMemoryAvailable() {
        OptionalLong available = memInfo("MemAvailable:");
        if (available.isPresent()) {
            return available.getAsLong();
        }
        return Runtime.getRuntime().maxMemory();
    }

    private static OptionalLong memInfo(String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith(field)) {
                    return OptionalLong.of(Long.parseLong(line.substring(field.length()).trim().split("\\s+")[0]) * 1024);
                }
            }
        } catch (IOException | RuntimeException e) {
            return OptionalLong.empty();
        }
        return OptionalLong.empty();
    }

    static double gib(long bytes) {
        return bytes / (double) (1L << 30);
    }
}
