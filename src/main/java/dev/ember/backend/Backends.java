package dev.ember.backend;

import dev.ember.backend.cpu.CpuBackend;
import dev.ember.backend.cuda.Availability;
import dev.ember.backend.cuda.CudaBackend;

/** Chooses a backend: the GPU when one is usable and wanted, else the CPU. */
public final class Backends {
    /** The backends a user can ask for. */
    public enum Choice { AUTO, CPU, CUDA }

    private Backends() {
    }

    /**
     * Opens the chosen backend. AUTO takes the GPU whenever {@link CudaBackend#isAvailable()} and otherwise the CPU;
     * CUDA where no GPU is usable fails with the reason (no driver, no device, a build without kernels).
     */
    public static Backend open(Choice choice, int cpuThreads) {
        return open(choice, cpuThreads, true);
    }

    /** As {@link #open(Choice, int)}; {@code useGraphs} false runs every GPU step eagerly (vLLM's --enforce-eager). */
    public static Backend open(Choice choice, int cpuThreads, boolean useGraphs) {
        return switch (choice) {
            case CPU -> new CpuBackend(cpuThreads);
            case CUDA -> new CudaBackend(useGraphs);
            case AUTO -> CudaBackend.isAvailable() ? new CudaBackend(useGraphs) : new CpuBackend(cpuThreads);
        };
    }

    /** One line on why AUTO would take the CPU, or null when it would take the GPU. */
    public static String whyNotGpu() {
        Availability a = CudaBackend.availability();
        return a.isAvailable() ? null : a.reason();
    }
}
