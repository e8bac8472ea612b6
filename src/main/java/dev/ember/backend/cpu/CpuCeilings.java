package dev.ember.backend.cpu;

import dev.ember.Progress;
import dev.ember.backend.DeviceCeilings;
import dev.ember.model.DType;
import dev.ember.model.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * Measures the host's ceilings on the backend's own threads: a copy of 256 MiB split across them (far beyond
 * the caches), and the rate of the CPU backend's own matrix product on a 4096 x 4096 bf16 matrix and 64 rows,
 * the ceiling its prefill can reach.
 */
final class CpuCeilings {
    /** Beyond the caches of any host: the copy measured here, and the working set ember bench kernel reads from. */
    static final long COPY_BYTES = 256L << 20;
    private static final int N = 4096;
    private static final int ROWS = 64;
    private static final int REPETITIONS = 5;

    private CpuCeilings() {
    }

    static DeviceCeilings measure(String device, Parallel parallel, Progress progress) {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment from = arena.allocate(COPY_BYTES, 64);
            MemorySegment to = arena.allocate(COPY_BYTES, 64);
            from.fill((byte) 1);
            int slices = 64;
            long slice = COPY_BYTES / slices;
            double copySeconds = fastest(REPETITIONS, "measuring copy bandwidth", progress, () ->
                    parallel.forRange(slices, 1, (a, b) -> MemorySegment.copy(from, a * slice, to, a * slice, (b - a) * slice)));

            MemorySegment weights = arena.allocate((long) N * N * 2, 64);
            for (long i = 0; i < (long) N * N; i++) {
                // bf16 values in [1, 2): the exponent of 1.0 with varied mantissa bits.
                weights.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) (0x3f80 | (i * 2654435761L >>> 25 & 0x7f)));
            }
            WeightMatrix matrix = WeightMatrix.of(new Tensor("ceiling", DType.BF16, new long[]{N, N}, weights), arena);
            float[] x = new float[ROWS * N];
            Arrays.fill(x, 0.5f);
            float[] y = new float[ROWS * N];
            double matmulSeconds = fastest(REPETITIONS, "measuring matmul rate", progress, () ->
                    parallel.forRange(N, 16, (from1, to1) -> {
                        for (int r = from1; r < to1; r++) {
                            for (int row = 0; row < ROWS; row++) {
                                y[row * N + r] = matrix.dotRow(r, x, row * N);
                            }
                        }
                    }));
            return new DeviceCeilings(device, 2.0 * COPY_BYTES / copySeconds, 2.0 * ROWS * N * N / matmulSeconds);
        }
    }

    private static double fastest(int repetitions, String task, Progress progress, Runnable work) {
        work.run();
        double[] s = new double[repetitions];
        for (int i = 0; i < repetitions; i++) {
            progress.update(task, i, repetitions);
            long t0 = System.nanoTime();
            work.run();
            s[i] = (System.nanoTime() - t0) / 1e9;
        }
        progress.update(task, repetitions, repetitions);
        Arrays.sort(s);
        return s[0];
    }
}
