package dev.ember.monitor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What a {@link GpuMonitor} hands back when a benchmark ends: figures, the reason there are none, or nothing asked. */
public sealed interface GpuReport {

    /** Monitoring was not asked for (no {@code --monitor}): no GPU figures and no {@code _gpu} file. */
    record Off() implements GpuReport {
    }

    /** Monitoring was asked for but cannot run here; {@code reason} reads {@code "no NVML: ..."}. */
    record Unavailable(String reason) implements GpuReport {
    }

    /**
     * The GPU was sampled.
     *
     * @param samplingError why sampling stopped early, or null when it ran to the end
     */
    record Measured(String device, String driverVersion, double intervalSeconds, GpuSummary summary,
                    List<GpuSample> samples, String samplingError) implements GpuReport {
    }

    /** The whole run's summary, when the GPU was sampled. */
    default java.util.Optional<GpuSummary> measuredSummary() {
        return this instanceof Measured m ? java.util.Optional.of(m.summary()) : java.util.Optional.empty();
    }

    /**
     * The report as JSON fields: availability, the device and the summary (with energy per output token when
     * {@code outputTokens > 0}), and, with {@code withSamples}, every sample.
     */
    default Map<String, Object> toMap(long outputTokens, boolean withSamples) {
        Map<String, Object> m = new LinkedHashMap<>();
        switch (this) {
            case Off() -> {
                m.put("available", false);
                m.put("reason", "not requested (--monitor)");
            }
            case Unavailable(String reason) -> {
                m.put("available", false);
                m.put("reason", reason);
            }
            case Measured measured -> {
                m.put("available", true);
                m.put("device", measured.device());
                m.put("driver_version", measured.driverVersion());
                m.put("interval_s", measured.intervalSeconds());
                if (measured.samplingError() != null) {
                    m.put("sampling_error", measured.samplingError());
                }
                m.put("summary", measured.summary().toMap(outputTokens));
                if (withSamples) {
                    long origin = measured.samples().isEmpty() ? 0 : measured.samples().getFirst().nanos();
                    List<Map<String, Object>> rows = new ArrayList<>();
                    for (GpuSample s : measured.samples()) {
                        rows.add(s.toMap(origin));
                    }
                    m.put("samples", rows);
                }
            }
        }
        return m;
    }

    /** One line for the console. */
    default String describe(long outputTokens) {
        return switch (this) {
            case Off() -> "GPU monitor: off";
            case Unavailable(String reason) -> "GPU monitor: " + reason;
            case Measured m -> {
                GpuSummary s = m.summary();
                yield String.format(java.util.Locale.ROOT,
                        "GPU monitor (%s, %d samples): power mean %.1f W, peak %.1f W; energy %.1f J (%s)%s; util %.0f%%, "
                                + "memory util %.0f%%; memory used peak %.2f GiB; temperature peak %.0f C",
                        m.device(), s.samples(), s.meanPowerWatts(), s.peakPowerWatts(), s.energyJoules(),
                        s.energySource().label(),
                        outputTokens > 0 ? String.format(java.util.Locale.ROOT, ", %.4f J per output token",
                                s.energyPerTokenJoules(outputTokens)) : "",
                        s.meanGpuUtilPct(), s.meanMemUtilPct(), s.peakMemUsedBytes() / (double) (1L << 30),
                        s.peakTemperatureC());
            }
        };
    }
}
