package dev.ember.bench;

import dev.ember.EmberException;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The defaults of a benchmark's workload, which differ between a GPU and the CPU. On a GPU they are the reference
 * workloads (those the measured figures in docs/benchmarks.md use: bench.py's, vLLM's, the classic serving and
 * latency runs); on the CPU smaller ones, sized so that each benchmark finishes within a minute on two cores with the
 * default model. An option given on the command line is taken as it is. {@link #report} says in one line which of the
 * CPU's defaults stood in for the GPU's, with the GPU's values, so that a run can be read and repeated either way.
 */
public final class DeviceDefaults {
    private final boolean gpu;
    private final List<String> cpuChoices = new ArrayList<>();

    /** @param gpu whether the benchmark runs on a GPU */
    public DeviceDefaults(boolean gpu) {
        this.gpu = gpu;
    }

    public boolean gpu() {
        return gpu;
    }

    /** {@code given} when the option was given, else this device's default ({@code onGpu} or {@code onCpu}). */
    public <T> T pick(String option, T given, T onGpu, T onCpu) {
        if (given != null) {
            return given;
        }
        if (gpu) {
            return onGpu;
        }
        if (!onCpu.equals(onGpu)) {
            cpuChoices.add(option + " " + show(onCpu) + " (GPU: " + show(onGpu) + ")");
        }
        return onCpu;
    }

    /** Says on {@code log} which CPU defaults were taken, if any. */
    public void report(PrintStream log) {
        if (!cpuChoices.isEmpty()) {
            log.println("ember: the CPU's smaller defaults: " + String.join(", ", cpuChoices)
                    + "; give the options for the GPU's workload");
        }
    }

    /**
     * The prompt lengths to run: {@code given} as they are (each must be at most {@code room}, the tokens the model's
     * context leaves a prompt: {@code why} says what else a request holds), else this device's default lengths that
     * fit, saying on {@code log} which were left out.
     */
    public List<Integer> promptLengths(List<Integer> given, List<Integer> onGpu, List<Integer> onCpu, int context, int room,
                                       String why, PrintStream log) {
        if (given != null) {
            List<Integer> tooLong = given.stream().filter(n -> n > room).toList();
            if (!tooLong.isEmpty()) {
                throw new EmberException("prompt lengths " + show(tooLong) + " plus " + why + " do not fit the model's context of "
                        + context + " tokens");
            }
            return List.copyOf(given);
        }
        List<Integer> lengths = pick("--prompt-lens", null, onGpu, onCpu);
        List<Integer> fit = lengths.stream().filter(n -> n <= room).toList();
        if (fit.isEmpty()) {
            throw new EmberException("none of the default prompt lengths " + show(lengths) + " leaves room for " + why
                    + " in the model's context of " + context + " tokens; give --prompt-lens");
        }
        if (fit.size() < lengths.size()) {
            log.println("ember: the default prompt lengths " + show(lengths.stream().filter(n -> n > room).toList())
                    + " do not fit the model's context of " + context + " tokens with " + why + "; left out");
        }
        return fit;
    }

    private static String show(Object value) {
        return value instanceof List<?> list ? list.stream().map(String::valueOf).collect(Collectors.joining(",")) : String.valueOf(value);
    }
}
