package dev.ember.monitor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One reading of a GPU. A reading the GPU does not support is NaN (or -1 for the counts), never a guess.
 *
 * @param nanos             when it was taken, on {@link System#nanoTime()}'s clock
 * @param powerWatts        board power draw
 * @param energyMillijoules the board's energy counter since the driver loaded; -1 where the GPU has none
 * @param gpuUtilPct        percent of the last sample period in which a kernel ran
 * @param memUtilPct        percent of the last sample period in which device memory was read or written
 * @param memUsedBytes      device memory in use by all processes
 * @param temperatureC      GPU die temperature
 */
public record GpuSample(long nanos, double powerWatts, long energyMillijoules, double gpuUtilPct, double memUtilPct,
                        long memUsedBytes, double temperatureC) {

    /** The sample as JSON fields, its time in seconds after {@code originNanos}. */
    Map<String, Object> toMap(long originNanos) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("t_s", (nanos - originNanos) / 1e9);
        m.put("power_w", finite(powerWatts));
        m.put("energy_mj", energyMillijoules < 0 ? null : energyMillijoules);
        m.put("gpu_util_pct", finite(gpuUtilPct));
        m.put("mem_util_pct", finite(memUtilPct));
        m.put("mem_used_bytes", memUsedBytes < 0 ? null : memUsedBytes);
        m.put("temperature_c", finite(temperatureC));
        return m;
    }

    static Double finite(double v) {
        return Double.isFinite(v) ? v : null;
    }
}
