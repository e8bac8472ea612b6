package dev.ember.backend;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * The physical ceilings of the device a benchmark runs on, measured on that device (never assumed; the fastest of
 * several repetitions, since a ceiling is the best the device was seen to do): the rate
 * at which it copies memory and the rate of its fastest matrix product. Benchmarks divide their own figures
 * by these to say how close to the hardware they are.
 *
 * @param device              the device, as its backend names it
 * @param copyBytesPerSecond  bytes read plus bytes written per second by a large copy within device memory (the
 *                            "copy bandwidth" of NVIDIA's and STREAM's reports): the rate a step's reads are held to
 * @param matmulFlopsPerSecond FLOP/s of a large matrix product in the models' storage type; NaN where not measured
 * @param readBytesPerSecond  bytes per second of a large read-only stream, the faster of the backend's read patterns
 *                            (kernels that only read, such as products over weights, can beat a copy, which also
 *                            writes); NaN where not measured
 */
public record DeviceCeilings(String device, double copyBytesPerSecond, double matmulFlopsPerSecond, double readBytesPerSecond) {

    private static final Map<String, DeviceCeilings> MEASURED = new ConcurrentHashMap<>();

    /**
     * The ceilings of {@code device}, measured by {@code measure} the first time this process asks and reused after:
     * a device's ceilings do not change while it runs, and {@code ember report} runs many benchmarks in one process.
     */
    public static DeviceCeilings measuredOnce(String device, Supplier<DeviceCeilings> measure) {
        return MEASURED.computeIfAbsent(device, d -> measure.get());
    }

    /** Ceilings without a read-stream measurement. */
    public DeviceCeilings(String device, double copyBytesPerSecond, double matmulFlopsPerSecond) {
        this(device, copyBytesPerSecond, matmulFlopsPerSecond, Double.NaN);
    }

    /**
     * The fastest rate this device was measured to move memory at: the read stream where measured and faster, else
     * the copy. The ceiling for a single kernel's bandwidth efficiency.
     */
    public double streamBytesPerSecond() {
        return Double.isNaN(readBytesPerSecond) ? copyBytesPerSecond : Math.max(copyBytesPerSecond, readBytesPerSecond);
    }

    /** Seconds to move {@code bytes} at the copy rate: the floor of a memory-bound step. */
    public double secondsToMove(double bytes) {
        return bytes / copyBytesPerSecond;
    }

    /** Seconds for {@code flops} at the matrix-product rate: the floor of a compute-bound step; NaN when not measured. */
    public double secondsToCompute(double flops) {
        return flops / matmulFlopsPerSecond;
    }
}
