package dev.ember.backend.cuda;

import dev.ember.Numerics;
import dev.ember.model.DType;
import org.junit.jupiter.api.Assumptions;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Shared by the GPU tests: skipping (loudly) where there is no GPU, one context for the whole run, moving
 * arrays to and from the device in any storage type, and the error check every kernel test ends with.
 */
final class Gpu {
    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static CudaContext context;
    private static EmberKernels kernels;
    private static CudaStream stream;
    private static boolean skipAnnounced;

    private Gpu() {
    }

    /** Skips the calling test, saying why on stdout too, unless a GPU is usable. */
    static synchronized void assumeAvailable() {
        Availability a = Availability.current();
        if (!a.isAvailable() && !skipAnnounced) {
            skipAnnounced = true;
            System.out.println("[gpu] GPU tests skipped, no usable GPU: " + a.reason());
        }
        Assumptions.assumeTrue(a.isAvailable(), () -> "no usable GPU: " + a.reason());
    }

    /** The context all GPU tests share, current on the calling thread; skips the test where there is no GPU. */
    static synchronized CudaContext context() {
        assumeAvailable();
        if (context == null) {
            context = CudaContext.open(0);
        }
        context.makeCurrent();
        return context;
    }

    /** The kernels, loaded once for all tests; skips the test where there is no GPU. */
    static synchronized EmberKernels kernels() {
        CudaContext c = context();
        if (kernels == null) {
            kernels = EmberKernels.load(c.device());
        }
        return kernels;
    }

    /** One stream for the kernel tests, which synchronize it before reading results. */
    static synchronized CudaStream stream() {
        context();
        if (stream == null) {
            stream = CudaStream.create();
        }
        return stream;
    }

    /** {@code value} rounded to the storage type, as a kernel reading it would see it. */
    static float round(DType type, float value) {
        return switch (type) {
            case F32 -> value;
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(value));
            case BF16 -> Float.intBitsToFloat(bf16Bits(value) << 16);
        };
    }

    private static int bf16Bits(float value) {
        int bits = Float.floatToRawIntBits(value);
        return ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16) & 0xFFFF;
    }

    /** {@code n} uniform values in ±scale, already rounded to {@code type}; never all zero. */
    static float[] random(Random random, DType type, int n, double scale) {
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = round(type, (float) ((2 * random.nextDouble() - 1) * scale));
        }
        return values;
    }

    /** {@code x[m][k] · w[n][k]ᵀ} in float64: the reference of the matrix-product kernels' tests. */
    static double[] product(float[] x, float[] w, int m, int n, int k) {
        double[] out = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int p = 0; p < k; p++) {
                    sum += (double) x[i * k + p] * w[j * k + p];
                }
                out[i * n + j] = sum;
            }
        }
        return out;
    }

    /** The RMSNorm of each of the {@code rows} rows of {@code x} ({@code k} each) times {@code weight}, in float64. */
    static double[] rmsNorm(float[] x, float[] weight, int rows, int k, double eps) {
        double[] out = new double[rows * k];
        for (int r = 0; r < rows; r++) {
            double squares = 0;
            for (int j = 0; j < k; j++) {
                squares += (double) x[r * k + j] * x[r * k + j];
            }
            double inv = 1 / Math.sqrt(squares / k + eps);
            for (int j = 0; j < k; j++) {
                out[r * k + j] = x[r * k + j] * inv * weight[j];
            }
        }
        return out;
    }

    static DeviceBuffer upload(DType type, float[] values) {
        DeviceBuffer buffer = DeviceBuffer.allocate((long) values.length * type.bytes());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate((long) values.length * type.bytes(), 16);
            for (int i = 0; i < values.length; i++) {
                switch (type) {
                    case F32 -> host.setAtIndex(FLOAT, i, values[i]);
                    case F16 -> host.setAtIndex(HALF, i, Float.floatToFloat16(values[i]));
                    case BF16 -> host.setAtIndex(HALF, i, (short) bf16Bits(values[i]));
                }
            }
            buffer.copyFromHost(host);
        }
        return buffer;
    }

    static DeviceBuffer uploadInts(int[] values) {
        DeviceBuffer buffer = DeviceBuffer.allocate(4L * values.length);
        try (Arena arena = Arena.ofConfined()) {
            buffer.copyFromHost(arena.allocateFrom(ValueLayout.JAVA_INT, values));
        }
        return buffer;
    }

    static float[] download(DeviceBuffer buffer, DType type, int n) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate((long) n * type.bytes(), 16);
            buffer.copyToHost(host);
            float[] values = new float[n];
            for (int i = 0; i < n; i++) {
                values[i] = switch (type) {
                    case F32 -> host.getAtIndex(FLOAT, i);
                    case F16 -> Float.float16ToFloat(host.getAtIndex(HALF, i));
                    case BF16 -> Float.intBitsToFloat(host.getAtIndex(HALF, i) << 16);
                };
            }
            return values;
        }
    }

    static int[] downloadInts(DeviceBuffer buffer, int n) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(4L * n, 4);
            buffer.copyToHost(host);
            return host.toArray(ValueLayout.JAVA_INT);
        }
    }

    /** A buffer of {@code n} elements of {@code type}, every one NaN, so unwritten outputs show. */
    static DeviceBuffer poisoned(DType type, long n) {
        long bytes = n * type.bytes();
        DeviceBuffer buffer = DeviceBuffer.allocate((bytes + 3) / 4 * 4);
        int nanWord = switch (type) {
            case F32 -> 0x7FC00000;
            case F16 -> 0x7E007E00;
            case BF16 -> 0x7FC07FC0;
        };
        try (CudaStream stream = CudaStream.create()) {
            buffer.fill32Async(0, buffer.byteSize() / 4, nanWord, stream);
            stream.synchronize();
        }
        return buffer;
    }

    /** The relative-error limit for results stored in {@code type}: fp32 math, or one bf16/fp16 rounding. */
    static double tolerance(DType type) {
        return type == DType.F32 ? 1e-5 : 1e-2;
    }

    /** Asserts ‖out − ref‖/‖ref‖ < limit (NaN anywhere fails) and logs the error for the suite's table. */
    static void assertClose(String what, float[] out, double[] ref, double limit) {
        double error = Numerics.relativeError(out, ref);
        System.out.printf("[gpu-check] %-58s rel.err %.3e (limit %.0e)%n", what, error, limit);
        assertTrue(error < limit, what + ": relative error " + error + " >= " + limit);
    }
}
