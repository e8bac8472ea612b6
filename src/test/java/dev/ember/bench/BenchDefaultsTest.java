package dev.ember.bench;

import dev.ember.cli.GenerateCommandTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every {@code ember bench} command's CPU defaults run on the default model: the workload as a user gets it without
 * options, only repeated fewer times ({@code --runs 1}, {@code --iters 1}, {@code --warmup 0} where a command has them)
 * so that the suite stays short. {@code bench client} needs a server and has its own test of its defaults.
 */
class BenchDefaultsTest {
    /** Options that only repeat the same workload, and the smallest values they take. */
    private static final Map<String, String> REPEATS = Map.of("--runs", "1", "--iters", "1", "--warmup", "0");

    @TempDir
    Path dir;

    @Test
    void everyBenchCommandsCpuDefaultsFitTheDefaultModel() {
        List<String> failures = new ArrayList<>();
        new CommandLine(new BenchCommand()).getSubcommands().forEach((name, command) -> {
            CommandLine.Model.CommandSpec spec = command.getCommandSpec();
            // p2p measures copies between GPUs alone; what it says without one is P2pBenchCommandTest's.
            if (name.equals("client") || name.equals("help") || name.equals("p2p")) {
                return;
            }
            List<String> args = new ArrayList<>(List.of("bench", name));
            if (spec.findOption("--backend") != null) {
                args.addAll(List.of("--backend", "cpu", "--threads", "2"));
            }
            REPEATS.forEach((option, value) -> {
                if (spec.findOption(option) != null) {
                    args.addAll(List.of(option, value));
                }
            });
            if (spec.findOption("--out-dir") != null) {
                args.addAll(List.of("--out-dir", dir.toString()));
            }
            long start = System.nanoTime();
            GenerateCommandTest.Run run = GenerateCommandTest.ember(args.toArray(String[]::new));
            System.out.printf("ember %s: exit %d in %.1f s%n", String.join(" ", args), run.exitCode(), (System.nanoTime() - start) / 1e9);
            if (run.exitCode() != 0) {
                failures.add(String.join(" ", args) + "\n" + run.err());
            }
        });
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    @Test
    void theCpusDefaultsAreSaidWithTheGpusBeside() {
        DeviceDefaults cpu = new DeviceDefaults(false);
        assertEquals(16, cpu.pick("--num-requests", null, 256, 16));
        assertEquals(7, cpu.pick("--runs", 7, 3, 3), "a given option is taken as it is");
        assertEquals(3, cpu.pick("--iters", null, 3, 3));
        java.io.ByteArrayOutputStream said = new java.io.ByteArrayOutputStream();
        cpu.report(new java.io.PrintStream(said, true));
        assertEquals("ember: the CPU's smaller defaults: --num-requests 16 (GPU: 256); give the options for the GPU's workload\n",
                said.toString());
        DeviceDefaults gpu = new DeviceDefaults(true);
        assertEquals(256, gpu.pick("--num-requests", null, 256, 16));
        assertEquals(List.of(512), gpu.promptLengths(null, List.of(512, 2048), List.of(128), 1024, 960, "64 new tokens",
                new java.io.PrintStream(java.io.OutputStream.nullOutputStream())));
    }
}
