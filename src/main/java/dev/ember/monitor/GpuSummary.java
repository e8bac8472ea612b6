package dev.ember.monitor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a GPU did over a window of a benchmark: 001's power, energy, utilisation, memory and temperature figures.
 * Means are over the samples in the window (taken at a fixed interval, so they weigh time evenly); a figure no sample
 * could read is NaN (-1 for bytes).
 *
 * @param durationSeconds   the window's length
 * @param samples           how many samples fell in it (its two ends included)
 * @param energyJoules      energy over the window, from {@code energySource}; NaN when it could not be had
 * @param peakMemUsedBytes  the most device memory in use by all processes at any sample
 * @param meanMemUsedPct    mean memory in use, as a percentage of the GPU's memory
 */
public record GpuSummary(double durationSeconds, int samples, double meanPowerWatts, double peakPowerWatts,
                         double energyJoules, EnergySource energySource, double meanGpuUtilPct, double meanMemUtilPct,
                         long peakMemUsedBytes, double meanMemUsedPct, double peakTemperatureC) {

    /**
     * Summarises {@code window} (samples in time order, the window's two ends included) between two readings of the
     * energy counter ({@code -1} where the GPU has none, and energy is then integrated from power).
     */
    static GpuSummary of(List<GpuSample> window, long fromNanos, long toNanos, long fromEnergyMj, long toEnergyMj,
                         long memTotalBytes) {
        double powerSum = 0, peakPower = Double.NaN, gpuSum = 0, memUtilSum = 0, memUsedSum = 0, peakTemp = Double.NaN;
        int powerCount = 0, gpuCount = 0, memUtilCount = 0, memUsedCount = 0;
        long peakUsed = -1;
        double integrated = 0;
        GpuSample previous = null;
        for (GpuSample s : window) {
            if (!Double.isNaN(s.powerWatts())) {
                powerSum += s.powerWatts();
                powerCount++;
                peakPower = Double.isNaN(peakPower) ? s.powerWatts() : Math.max(peakPower, s.powerWatts());
                if (previous != null) {
                    integrated += (s.powerWatts() + previous.powerWatts()) / 2 * ((s.nanos() - previous.nanos()) / 1e9);
                }
                previous = s;
            }
            if (!Double.isNaN(s.gpuUtilPct())) {
                gpuSum += s.gpuUtilPct();
                gpuCount++;
            }
            if (!Double.isNaN(s.memUtilPct())) {
                memUtilSum += s.memUtilPct();
                memUtilCount++;
            }
            if (s.memUsedBytes() >= 0) {
                memUsedSum += s.memUsedBytes();
                memUsedCount++;
                peakUsed = Math.max(peakUsed, s.memUsedBytes());
            }
            if (!Double.isNaN(s.temperatureC())) {
                peakTemp = Double.isNaN(peakTemp) ? s.temperatureC() : Math.max(peakTemp, s.temperatureC());
            }
        }
        boolean counter = fromEnergyMj >= 0 && toEnergyMj >= 0;
        double energy = counter ? (toEnergyMj - fromEnergyMj) / 1e3 : powerCount >= 2 ? integrated : Double.NaN;
        return new GpuSummary((toNanos - fromNanos) / 1e9, window.size(), mean(powerSum, powerCount), peakPower, energy,
                counter ? EnergySource.COUNTER : EnergySource.INTEGRATED_POWER, mean(gpuSum, gpuCount),
                mean(memUtilSum, memUtilCount), peakUsed,
                memTotalBytes > 0 ? 100 * mean(memUsedSum, memUsedCount) / memTotalBytes : Double.NaN, peakTemp);
    }

    private static double mean(double sum, int count) {
        return count == 0 ? Double.NaN : sum / count;
    }

    /** Joules per generated token; NaN without an energy figure or tokens. */
    public double energyPerTokenJoules(long outputTokens) {
        return outputTokens > 0 ? energyJoules / outputTokens : Double.NaN;
    }

    /** The summary as JSON fields; with {@code outputTokens > 0}, energy per output token too. */
    public Map<String, Object> toMap(long outputTokens) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("duration_s", durationSeconds);
        m.put("samples", samples);
        m.put("power_mean_w", GpuSample.finite(meanPowerWatts));
        m.put("power_peak_w", GpuSample.finite(peakPowerWatts));
        m.put("energy_j", GpuSample.finite(energyJoules));
        m.put("energy_source", energySource.label());
        m.put("gpu_util_mean_pct", GpuSample.finite(meanGpuUtilPct));
        m.put("mem_util_mean_pct", GpuSample.finite(meanMemUtilPct));
        m.put("mem_used_peak_bytes", peakMemUsedBytes < 0 ? null : peakMemUsedBytes);
        m.put("mem_used_mean_pct", GpuSample.finite(meanMemUsedPct));
        m.put("temperature_peak_c", GpuSample.finite(peakTemperatureC));
        if (outputTokens > 0) {
            m.put("output_tokens", outputTokens);
            m.put("energy_per_output_token_j", GpuSample.finite(energyPerTokenJoules(outputTokens)));
        }
        return m;
    }
}
