package dev.ember.backend.cuda;

import dev.ember.Progress;
import dev.ember.bench.DeviceCeilings;
import dev.ember.model.DType;

import java.util.Arrays;

/**
 * Measures the GPU's ceilings with CUDA events: a device-to-device copy of 1 GiB (far beyond the L2 cache), a read
 * of the same 1 GiB by the read-stream kernel (memory.cu), and a
 * bf16 cuBLASLt product of 8192³ on random operands; the fastest of several repetitions after a warm-up.
 */
final class CudaCeilings {
    private static final long COPY_BYTES = 1L << 30;
    private static final int MATMUL_SIZE = 8192;
    private static final int REPETITIONS = 7;

    private CudaCeilings() {
    }

    static DeviceCeilings measure(CudaContext context, Progress progress) {
        try (CudaStream stream = CudaStream.create();
             CudaEvent start = CudaEvent.create();
             CudaEvent end = CudaEvent.create();
             EmberKernels kernels = EmberKernels.load(context.device());
             CublasLt blas = new CublasLt()) {
            double copySeconds;
            double readSeconds;
            try (DeviceBuffer from = DeviceBuffer.allocate(COPY_BYTES); DeviceBuffer to = DeviceBuffer.allocate(COPY_BYTES);
                 DeviceBuffer sink = DeviceBuffer.allocate(16L * kernels.readStreamBlocks())) {
                from.fill32Async(0, COPY_BYTES / 4, 0x3f800000, stream);
                copySeconds = fastest(REPETITIONS, i -> {
                    progress.update("measuring copy bandwidth", i, REPETITIONS);
                    start.record(stream);
                    Driver.memcpyDtoDAsync(to.address(), from.address(), COPY_BYTES, stream.handle());
                    end.record(stream);
                    end.synchronize();
                    return end.elapsedMillisSince(start) / 1e3;
                });
                readSeconds = fastest(REPETITIONS, i -> {
                    progress.update("measuring read bandwidth", i, REPETITIONS);
                    start.record(stream);
                    kernels.readStream(stream, from.address(), COPY_BYTES, sink.address());
                    end.record(stream);
                    end.synchronize();
                    return end.elapsedMillisSince(start) / 1e3;
                });
            }
            progress.update("measuring read bandwidth", REPETITIONS, REPETITIONS);
            long n = MATMUL_SIZE;
            double matmulSeconds;
            try (DeviceBuffer a = DeviceBuffer.allocate(n * n * 2); DeviceBuffer b = DeviceBuffer.allocate(n * n * 2);
                 DeviceBuffer c = DeviceBuffer.allocate(n * n * 2)) {
                kernels.fillUniform(stream, DType.BF16, a.address(), n * n, 0f, 1f, 1);
                kernels.fillUniform(stream, DType.BF16, b.address(), n * n, 0f, 1f, 2);
                matmulSeconds = fastest(REPETITIONS, i -> {
                    progress.update("measuring bf16 matmul rate", i, REPETITIONS);
                    start.record(stream);
                    blas.matmul(stream, DType.BF16, a.address(), b.address(), c.address(), DType.BF16, MATMUL_SIZE, MATMUL_SIZE, MATMUL_SIZE);
                    end.record(stream);
                    end.synchronize();
                    return end.elapsedMillisSince(start) / 1e3;
                });
            }
            progress.update("measuring bf16 matmul rate", REPETITIONS, REPETITIONS);
            return new DeviceCeilings(context.device().describe(), 2.0 * COPY_BYTES / copySeconds,
                    2.0 * n * n * n / matmulSeconds, COPY_BYTES / readSeconds);
        }
    }

    private interface Timed {
        double seconds(int repetition);
    }

    /**
     * Runs {@code timed} once to warm up, then {@code repetitions} times, and returns the fastest: a ceiling is the
     * best the device was seen to do (a median would let run-to-run noise put a kernel above its ceiling).
     */
    private static double fastest(int repetitions, Timed timed) {
        timed.seconds(0);
        double[] s = new double[repetitions];
        for (int i = 0; i < repetitions; i++) {
            s[i] = timed.seconds(i);
        }
        Arrays.sort(s);
        return s[0];
    }
}
