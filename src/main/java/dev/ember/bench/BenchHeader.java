package dev.ember.bench;

import java.io.PrintStream;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What every benchmark states before its figures: the device, the model and its storage type, Ember's version,
 * when it ran, and the ceilings measured on that device at start.
 */
public record BenchHeader(String benchmark, String device, String model, String dtype, String emberVersion, Instant date,
                          DeviceCeilings ceilings) {

    public static String currentVersion() {
        String v = BenchHeader.class.getPackage().getImplementationVersion();
        return v != null ? v : "dev";
    }

    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("benchmark", benchmark);
        m.put("device", device);
        m.put("model", model);
        m.put("dtype", dtype);
        m.put("ember_version", emberVersion);
        m.put("date", date.toString());
        m.put("copy_bandwidth_gbps", ceilings.copyBytesPerSecond() / 1e9);
        m.put("read_bandwidth_gbps", Double.isNaN(ceilings.readBytesPerSecond()) ? null : ceilings.readBytesPerSecond() / 1e9);
        m.put("matmul_tflops", Double.isNaN(ceilings.matmulFlopsPerSecond()) ? null : ceilings.matmulFlopsPerSecond() / 1e12);
        return m;
    }

    public void print(PrintStream out) {
        out.printf("# ember %s, %s on %s%n", benchmark, emberVersion, device);
        out.printf("# model %s (%s), %s%n", model, dtype, date);
        out.printf("# measured ceilings: copy %.1f GB/s, read %s, matmul %.3g TFLOP/s%n",
                ceilings.copyBytesPerSecond() / 1e9, Double.isNaN(ceilings.readBytesPerSecond()) ? "not measured"
                        : String.format("%.1f GB/s", ceilings.readBytesPerSecond() / 1e9), ceilings.matmulFlopsPerSecond() / 1e12);
    }
}
