package dev.ember.bench;

/**
 * The physical ceilings of the device a benchmark runs on, measured on that device (never assumed): the rate
 * at which it copies memory and the rate of its fastest matrix product. Benchmarks divide their own figures
 * by these to say how close to the hardware they are.
 *
 * @param device              the device, as its backend names it
 * @param copyBytesPerSecond  bytes read plus bytes written per second by a large copy within device memory (the
 *                            "copy bandwidth" of NVIDIA's and STREAM's reports): the rate a step's reads are held to
 * @param matmulFlopsPerSecond FLOP/s of a large matrix product in the models' storage type; NaN where not measured
 */
public record DeviceCeilings(String device, double copyBytesPerSecond, double matmulFlopsPerSecond) {

    /** Seconds to move {@code bytes} at the copy rate: the floor of a memory-bound step. */
    public double secondsToMove(double bytes) {
        return bytes / copyBytesPerSecond;
    }

    /** Seconds for {@code flops} at the matrix-product rate: the floor of a compute-bound step; NaN when not measured. */
    public double secondsToCompute(double flops) {
        return flops / matmulFlopsPerSecond;
    }
}
