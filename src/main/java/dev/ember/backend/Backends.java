package dev.ember.backend;

import dev.ember.EmberException;
import dev.ember.backend.cpu.CpuBackend;

/** Chooses a backend: the GPU when one is usable and wanted, else the CPU. */
public final class Backends {
    /** The backends a user can ask for. */
    public enum Choice { AUTO, CPU, CUDA }

    private Backends() {
    }

    public static Backend open(Choice choice, int cpuThreads) {
        return switch (choice) {
            case CPU, AUTO -> new CpuBackend(cpuThreads);
            case CUDA -> throw new EmberException("the CUDA backend is not part of this build");
        };
    }
}
