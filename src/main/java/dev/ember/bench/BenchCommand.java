package dev.ember.bench;

import dev.ember.bench.client.ClientBenchCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code ember bench}: the benchmarks, one subcommand each. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Benchmarks: each prints its figures beside the device's measured ceilings and writes CSV/JSON.",
                "Defaults run the reference workloads on a GPU and smaller ones on the CPU (each within about a minute on two "
                        + "cores with the default model); each command's --help says which."},
        subcommands = {E2eBenchCommand.class, OfflineBenchCommand.class, ServeBenchCommand.class, ClientBenchCommand.class,
                LatencyBenchCommand.class, KernelBenchCommand.class, StageBenchCommand.class, PhaseBenchCommand.class, HostBenchCommand.class,
                SpecBenchCommand.class, InferBenchCommand.class, P2pBenchCommand.class, CommandLine.HelpCommand.class})
public final class BenchCommand implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }
}
