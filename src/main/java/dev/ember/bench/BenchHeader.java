package dev.ember.bench;

import dev.ember.backend.DeviceCeilings;
import dev.ember.monitor.NvmlDevice;

import java.io.PrintStream;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What every benchmark states before its figures: the device (and the NVIDIA driver's version where there is one), the
 * model and its storage type, Ember's version,
 * when it ran, and the ceilings measured on that device at start.
 */
public record BenchHeader(String benchmark, String device, String model, String dtype, String emberVersion, Instant date,
                          DeviceCeilings ceilings) {

    public static String currentVersion() {
        String v = BenchHeader.class.getPackage().getImplementationVersion();
        return v != null ? v : "dev";
    }

    /**
     * The NVIDIA driver's version as NVML reports it (e.g. "580.159.04"), or null where there is no NVIDIA driver;
     * asked once per process.
     */
    public static String driverVersion() {
        return Driver.VERSION;
    }

    private static final class Driver {
        static final String VERSION = read();

        private static String read() {
            if (NvmlDevice.whyUnavailable(0) != null) {
                return null;
            }
            try (NvmlDevice device = NvmlDevice.open(0)) {
                return device.driverVersion();
            } catch (RuntimeException e) {
                return null;
            }
        }
    }

    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("benchmark", benchmark);
        m.put("device", device);
        m.put("driver", driverVersion());
        m.put("model", model);
        m.put("dtype", dtype);
        m.put("ember_version", emberVersion);
        m.put("date", date.toString());
        m.put("copy_bandwidth_gbps", ceilings.copyBytesPerSecond() / 1e9);
        m.put("read_bandwidth_gbps", Double.isNaN(ceilings.readBytesPerSecond()) ? null : ceilings.readBytesPerSecond() / 1e9);
        m.put("matmul_tflops", Double.isNaN(ceilings.matmulFlopsPerSecond()) ? null : ceilings.matmulFlopsPerSecond() / 1e12);
        return m;
    }

    /**
     * What the runner chose by timing on its device ({@code ModelRunner.measuredChoices}), one {@code # measured choice}
     * line each, after a benchmark's figures: two runs that chose differently did not run the same code.
     */
    static void printMeasuredChoices(PrintStream out, List<String> choices) {
        for (String choice : choices) {
            out.println("# measured choice: " + choice);
        }
    }

    public void print(PrintStream out) {
        String driver = driverVersion();
        out.printf("# ember %s, %s on %s%s%n", benchmark, emberVersion, device, driver != null ? ", NVIDIA driver " + driver : "");
        out.printf("# model %s (%s), %s%n", model, dtype, date);
        out.printf("# measured ceilings: copy %.1f GB/s, read %s, matmul %.3g TFLOP/s%n",
                ceilings.copyBytesPerSecond() / 1e9, Double.isNaN(ceilings.readBytesPerSecond()) ? "not measured"
                        : String.format("%.1f GB/s", ceilings.readBytesPerSecond() / 1e9), ceilings.matmulFlopsPerSecond() / 1e12);
    }
}
