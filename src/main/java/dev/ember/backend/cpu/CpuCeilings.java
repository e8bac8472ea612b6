package dev.ember.backend.cpu;

import dev.ember.Progress;
import dev.ember.backend.DeviceCeilings;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Measures the host's ceilings on the backend's own threads: a copy of 256 MiB split across them (far beyond the
 * caches), and the cores' rate of vector fused multiply-adds, chains of them held in registers on every thread: the
 * most floating-point work the Vector API gets from these cores, which no matrix product of the backend can pass.
 */
final class CpuCeilings {
    /** Beyond the caches of any host: the copy measured here, and the working set ember bench kernel reads from. */
    static final long COPY_BYTES = 256L << 20;
    private static final int REPETITIONS = 5;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Independent FMA chains a thread keeps in flight: more than the FMA latency times the units of any core. */
    private static final int CHAINS = 12;
    private static final int FMA_ITERATIONS = 1 << 20;

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

            int pieces = 4 * parallel.threads();
            float[] sink = new float[pieces];
            double fmaSeconds = fastest(REPETITIONS, "measuring the FMA rate", progress, () ->
                    parallel.forRange(pieces, 1, (a, b) -> {
                        for (int piece = a; piece < b; piece++) {
                            sink[piece] = fmaChains(FMA_ITERATIONS);
                        }
                    }));
            double flops = 2.0 * F.length() * CHAINS * FMA_ITERATIONS * pieces;
            return new DeviceCeilings(device, 2.0 * COPY_BYTES / copySeconds, flops / fmaSeconds);
        }
    }

    /**
     * {@code iterations} rounds of {@value #CHAINS} independent vector FMAs, x = x * m + c, whose values stay near
     * c / (1 - m); the lanes' sum is returned so that the work cannot be left out. The chains are written out: an array
     * of vectors would not stay in registers.
     */
    private static float fmaChains(int iterations) {
        FloatVector m = FloatVector.broadcast(F, 0.999f), c = FloatVector.broadcast(F, 0.001f);
        FloatVector x0 = FloatVector.broadcast(F, 0.1f), x1 = x0.add(0.01f), x2 = x0.add(0.02f), x3 = x0.add(0.03f);
        FloatVector x4 = x0.add(0.04f), x5 = x0.add(0.05f), x6 = x0.add(0.06f), x7 = x0.add(0.07f);
        FloatVector x8 = x0.add(0.08f), x9 = x0.add(0.09f), x10 = x0.add(0.10f), x11 = x0.add(0.11f);
        for (int i = 0; i < iterations; i++) {
            x0 = x0.fma(m, c);
            x1 = x1.fma(m, c);
            x2 = x2.fma(m, c);
            x3 = x3.fma(m, c);
            x4 = x4.fma(m, c);
            x5 = x5.fma(m, c);
            x6 = x6.fma(m, c);
            x7 = x7.fma(m, c);
            x8 = x8.fma(m, c);
            x9 = x9.fma(m, c);
            x10 = x10.fma(m, c);
            x11 = x11.fma(m, c);
        }
        return x0.add(x1).add(x2).add(x3).add(x4).add(x5).add(x6).add(x7).add(x8).add(x9).add(x10).add(x11)
                .reduceLanes(VectorOperators.ADD);
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
