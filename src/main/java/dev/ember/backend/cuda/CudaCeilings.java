package dev.ember.backend.cuda;

import dev.ember.Progress;
import dev.ember.backend.DeviceCeilings;
import dev.ember.model.DType;

/**
 * Measures the GPU's ceilings with CUDA events: a device-to-device copy of 1 GiB (far beyond the L2 cache), a read
 * of the same 1 GiB by each of the two read kernels of memory.cu (a grid-stride stream, and warp-contiguous runs as
 * the matrix-vector kernel reads weights), and a bf16 cuBLASLt product of 8192³ on random operands; the fastest of
 * several repetitions after a warm-up.
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
            EventTimer timer = new EventTimer(stream, start, end, progress);
            double copySeconds;
            double readSeconds;
            try (DeviceBuffer from = DeviceBuffer.allocate(COPY_BYTES); DeviceBuffer to = DeviceBuffer.allocate(COPY_BYTES);
                 DeviceBuffer sink = DeviceBuffer.allocate(16L * kernels.readStreamBlocks())) {
                from.fill32Async(0, COPY_BYTES / 4, 0x3f800000, stream);
                copySeconds = timer.fastest("measuring copy bandwidth",
                        () -> Driver.memcpyDtoDAsync(to.address(), from.address(), COPY_BYTES, stream.handle()));
                readSeconds = Math.min(
                        timer.fastest("measuring read bandwidth (stream)",
                                () -> kernels.readStream(stream, from.address(), COPY_BYTES, sink.address())),
                        timer.fastest("measuring read bandwidth (runs)",
                                () -> kernels.readRuns(stream, from.address(), COPY_BYTES, sink.address())));
            }
            long n = MATMUL_SIZE;
            double matmulSeconds;
            try (DeviceBuffer a = DeviceBuffer.allocate(n * n * 2); DeviceBuffer b = DeviceBuffer.allocate(n * n * 2);
                 DeviceBuffer c = DeviceBuffer.allocate(n * n * 2)) {
                kernels.fillUniform(stream, DType.BF16, a.address(), n * n, 0f, 1f, 1);
                kernels.fillUniform(stream, DType.BF16, b.address(), n * n, 0f, 1f, 2);
                matmulSeconds = timer.fastest("measuring bf16 matmul rate", () -> blas.matmul(stream, DType.BF16, a.address(),
                        b.address(), c.address(), DType.BF16, MATMUL_SIZE, MATMUL_SIZE, MATMUL_SIZE));
            }
            return new DeviceCeilings(context.device().describe(), 2.0 * COPY_BYTES / copySeconds,
                    2.0 * n * n * n / matmulSeconds, COPY_BYTES / readSeconds);
        }
    }

    /** Times queued device work between two events on one stream. */
    private record EventTimer(CudaStream stream, CudaEvent start, CudaEvent end, Progress progress) {
        /**
         * Runs {@code work} once to warm up, then REPETITIONS times, and returns the fastest in seconds: a ceiling is
         * the best the device was seen to do (a median would let run-to-run noise put a kernel above its ceiling).
         */
        double fastest(String what, Runnable work) {
            double best = Double.MAX_VALUE;
            for (int i = 0; i <= REPETITIONS; i++) {
                progress.update(what, i, REPETITIONS + 1);
                start.record(stream);
                work.run();
                end.record(stream);
                end.synchronize();
                double seconds = end.elapsedMillisSince(start) / 1e3;
                if (i > 0) {
                    best = Math.min(best, seconds);
                }
            }
            progress.update(what, REPETITIONS + 1, REPETITIONS + 1);
            return best;
        }
    }
}
