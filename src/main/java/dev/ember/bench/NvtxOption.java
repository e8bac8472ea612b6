package dev.ember.bench;

import dev.ember.nativelib.Nvtx;
import picocli.CommandLine.Option;

import java.io.PrintStream;

/**
 * {@code --nvtx}, for a benchmark to include as a picocli {@code @Mixin}: NVTX ranges around its steps and, where it
 * profiles stages, around the runner's stages and layers, for Nsight Systems. On without the flag whenever a tool is
 * attached ({@code nsys profile} sets {@value Nvtx#INJECTION_VARIABLE}), so that {@code nsys profile ember bench ...}
 * shows them as it is.
 */
public final class NvtxOption {

    @Option(names = "--nvtx", description = "NVTX ranges around steps (and stages and layers where the benchmark profiles "
            + "them) for Nsight Systems, through CUDA 13's libnvtx3interop; on by itself under nsys")
    boolean requested;

    /** The ranges asked for, or {@link Nvtx#OFF}, saying on {@code log} why when the library is missing. */
    public Nvtx open(PrintStream log) {
        return Nvtx.open(requested, log);
    }
}
