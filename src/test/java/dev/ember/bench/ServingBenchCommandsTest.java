package dev.ember.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.Progress;
import dev.ember.cli.GenerateCommandTest;
import dev.ember.model.Presets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** {@code ember bench offline} and {@code ember bench serve} on the CPU with the default model, at small counts. */
class ServingBenchCommandsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The documented columns (docs/benchmarks.md). */
    private static final List<String> OFFLINE_COLUMNS = List.of("model", "device", "num_requests", "input_tokens", "output_tokens",
            "runs", "seconds", "seconds_min", "seconds_max", "output_tok_s", "input_tok_s", "steps", "preemptions", "floor_s",
            "floor_prefill_s", "floor_decode_s", "floor_memory_s", "floor_compute_s", "floor_fraction");
    private static final List<String> SERVE_COLUMNS = List.of("mode", "num_reqs", "batch_size", "prompt_len", "gen_len", "vary_gen",
            "prefill_ms", "decode_ms", "gen_tokens", "decode_tok_s");
    private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

    @TempDir
    Path dir;

    private static List<String> csvHeader(Path csv) throws IOException {
        return Arrays.asList(Files.readAllLines(csv).getFirst().split(","));
    }

    private static List<String[]> csvRows(Path csv) throws IOException {
        return Files.readAllLines(csv).stream().skip(1).map(l -> l.split(",", -1)).toList();
    }

    private static List<String> keys(JsonNode node) {
        List<String> keys = new ArrayList<>();
        node.fieldNames().forEachRemaining(keys::add);
        return keys;
    }

    @Test
    void offlineWithTheMonitorAndTraceWritesTheGpuSectionAndTheSteps() throws IOException {
        Path json = dir.resolve("offline-monitored.json");
        GenerateCommandTest.Run r = GenerateCommandTest.ember("bench", "offline", "--backend", "cpu", "--threads", "2",
                "--num-requests", "3", "--input-len", "8:16", "--output-len", "4:8", "--runs", "1", "--monitor",
                "--json", json.toString(), "--trace", dir.resolve("offline-trace.json").toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(Files.readString(dir.resolve("offline-trace.json")).contains("\"engine_step\""), "the timed run's steps are traced");
        JsonNode root = JSON.readTree(json.toFile());
        assertEquals(List.of("header", "results", "gpu"), keys(root));
        JsonNode gpuFile = JSON.readTree(MonitorOptions.gpuFile(json).toFile());
        assertEquals(1, gpuFile.get("results").get(0).get("runs").asInt());
        if (dev.ember.monitor.NvmlDevice.whyUnavailable(0) != null) {
            assertFalse(root.get("gpu").get("available").asBoolean());
            assertTrue(r.err().contains("no NVML"), r.err());
        }
    }

    @Test
    void offlineWritesItsColumnsAndGeneratesEveryRequestedToken() throws IOException {
        Path csv = dir.resolve("offline.csv");
        Path json = dir.resolve("offline.json");
        GenerateCommandTest.Run r = GenerateCommandTest.ember("bench", "offline", "--backend", "cpu", "--threads", "2",
                "--num-requests", "5", "--input-len", "8:40", "--output-len", "4:20", "--runs", "2",
                "--csv", csv.toString(), "--json", json.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("Throughput:"), r.out());
        assertTrue(r.out().contains("# floor:"), r.out());
        assertEquals(OFFLINE_COLUMNS, csvHeader(csv));
        JsonNode root = JSON.readTree(json.toFile());
        JsonNode row = root.get("results").get(0);
        RandomWorkload w = RandomWorkload.draw(5, new LengthRange(8, 40), new LengthRange(4, 20), 0);
        assertEquals(w.outputTokens(), row.get("output_tokens").asLong());
        assertEquals(w.inputTokens(), row.get("input_tokens").asLong());
        assertTrue(row.get("seconds").asDouble() > 0 && row.get("floor_s").asDouble() > 0, row.toString());
        assertEquals(row.get("output_tokens").asDouble() / row.get("seconds").asDouble(), row.get("output_tok_s").asDouble(),
                row.get("output_tok_s").asDouble() * 0.01);
        assertEquals(1, csvRows(csv).size());
        assertEquals(List.of("header", "results"), keys(root));
        assertEquals(OFFLINE_COLUMNS, keys(root.get("results").get(0)));
        assertEquals(5, root.get("header").get("workload").get("num_requests").asInt());
    }

    /** bench client's --n and --logprobs in process: every choice's tokens counted, each prompt's once. */
    @Test
    void offlineWithChoicesAndLogprobsGeneratesEveryChoice() throws IOException {
        Path json = dir.resolve("offline-choices.json");
        GenerateCommandTest.Run r = GenerateCommandTest.ember("bench", "offline", "--backend", "cpu", "--threads", "2",
                "--num-requests", "3", "--input-len", "8:24", "--output-len", "4:12", "--runs", "1", "--n", "2",
                "--logprobs", "3", "--json", json.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("3 requests of 2 choices") && r.out().contains("logprobs 3"), r.out());
        JsonNode root = JSON.readTree(json.toFile());
        JsonNode row = root.get("results").get(0);
        RandomWorkload w = RandomWorkload.draw(3, new LengthRange(8, 24), new LengthRange(4, 12), 0);
        assertEquals(2 * w.outputTokens(), row.get("output_tokens").asLong());
        assertEquals(w.inputTokens(), row.get("input_tokens").asLong());
        assertEquals(2, root.get("header").get("workload").get("n").asInt());
        assertEquals(3, root.get("header").get("workload").get("logprobs").asInt());
        RandomWorkload choices = w.choices(2);
        assertEquals(List.of(w.inputLengths()[1], w.inputLengths()[1]),
                List.of(choices.inputLengths()[2], choices.inputLengths()[3]), "request 1's two choices");
        int[][] prompts = RandomWorkload.repeated(w.prompts(100), 2);
        assertSame(prompts[4], prompts[5], "one prompt for both choices");
        r = GenerateCommandTest.ember("bench", "offline", "--backend", "cpu", "--logprobs", "21");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("--logprobs must be in [0, 20], got 21"), r.err());
        r = GenerateCommandTest.ember("bench", "offline", "--backend", "cpu", "--n", "0");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("--n must be at least 1"), r.err());
    }

    /** A workload smaller than the warm-up request's 16 + 32 tokens: its cache is sized for it, and the warm-up fits it too. */
    @Test
    void offlineRunsAWorkloadSmallerThanTheWarmUp() {
        GenerateCommandTest.Run r = GenerateCommandTest.ember("bench", "offline", "--backend", "cpu", "--threads", "2",
                "--num-requests", "2", "--input-len", "4", "--output-len", "2", "--runs", "1");
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("run 1/1: Total: 4tok"), r.out());
    }

    @Test
    void offlineRunTotalsEqualTheRequestedOutputLengths() {
        OfflineBenchCommand command = new OfflineBenchCommand();
        new CommandLine(command).parseArgs("--backend", "cpu", "--threads", "2", "--kv-cache-gb", "0.002");
        RandomWorkload w = RandomWorkload.draw(12, new LengthRange(4, 60), new LengthRange(1, 30), 5);
        var scheduler = command.engineOptions.scheduler.config(12, dev.ember.scheduler.SchedulePolicy.DECODE_FIRST);
        try (BenchEngine bench = BenchEngine.open(command.engineOptions, scheduler, w.peakTokens(12, 16), w.longest(), QUIET, Progress.NONE)) {
            // A 0.002 GiB cache holds fewer tokens than the workload: requests are preempted and recomputed, none lost.
            assertTrue(bench.kvTokenCapacity() < w.peakTokens(12, 16));
            OfflineBenchCommand.Run run = OfflineBenchCommand.run(bench, scheduler, w, w.prompts(bench.vocabSize()), 0.6f, -1, Progress.NONE);
            assertEquals(Arrays.stream(w.outputLengths()).sum(), run.outputTokens());
            assertTrue(run.preemptions() > 0, "the small cache forced preemption");
        }
    }

    @Test
    void serveWritesOneRowPerRunWithTheSeedsColumns() throws IOException {
        Path csv = dir.resolve("serve.csv");
        Path json = dir.resolve("serve.json");
        GenerateCommandTest.Run r = GenerateCommandTest.ember("bench", "serve", "--backend", "cpu", "--threads", "2",
                "--num-req", "6", "--batch-size", "2", "--prompt-len", "24", "--gen-len", "6", "--no-vary-gen", "--runs", "2",
                "--csv", csv.toString(), "--json", json.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(SERVE_COLUMNS, csvHeader(csv));
        List<String[]> rows = csvRows(csv);
        assertEquals(2, rows.size());
        for (String[] row : rows) {
            assertEquals(List.of("prefill_first", "6", "2", "24", "6", "false"), Arrays.asList(row).subList(0, 6));
            // Each request's first token comes from its prefill step; the other five from decode steps.
            assertEquals(6 * 5, Integer.parseInt(row[SERVE_COLUMNS.indexOf("gen_tokens")]));
            double decodeMs = Double.parseDouble(row[SERVE_COLUMNS.indexOf("decode_ms")]);
            double tokS = Double.parseDouble(row[SERVE_COLUMNS.indexOf("decode_tok_s")]);
            assertEquals(30 / (decodeMs / 1000), tokS, tokS * 0.01, "decode_tok_s = gen_tokens / decode_ms");
        }
        JsonNode root = JSON.readTree(json.toFile());
        assertEquals(SERVE_COLUMNS, keys(root.get("results").get(1)));
    }

    @Test
    void serveRefillsEachFreedSlotAtOnceAndNeverRunsMoreThanTheBatch() {
        ServeBenchCommand command = new ServeBenchCommand();
        new CommandLine(command).parseArgs("--backend", "cpu", "--threads", "2", "--num-req", "11", "--batch-size", "3",
                "--prompt-len", "10", "--gen-len", "8", "--schedule-policy", "decode_first");
        RandomWorkload w = command.workload();
        assertTrue(Arrays.stream(w.outputLengths()).distinct().count() > 1, "lengths vary by default");
        try (BenchEngine bench = command.openEngine(QUIET, Progress.NONE, w)) {
            ServeBenchCommand.Run run = command.run(bench, w, w.prompts(bench.vocabSize()), Progress.NONE);
            assertEquals(3, run.peakInFlight(), "never more than --batch-size in flight");
            assertEquals(3, run.lowInFlightWithBacklog(), "while requests wait, every slot is busy");
            assertEquals(w.outputTokens(), run.generatedTokens());
            assertTrue(run.decodeTokens() <= run.generatedTokens() - 11, "decode steps never produce first tokens");
        }
    }

    @Test
    void badWorkloadsAndOptionsGetOneClearError() {
        GenerateCommandTest.Run r = GenerateCommandTest.ember("bench", "offline", "--backend", "cpu", "--threads", "2",
                "--num-requests", "1", "--input-len", "1200", "--output-len", "1200");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("exceeds the context of 2048 tokens"), r.err());
        r = GenerateCommandTest.ember("bench", "serve", "--backend", "cpu", "--preset", "qwen3-0.6b", "--model", "models/ember-tiny");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("--model or --preset, not both"), r.err());
        r = GenerateCommandTest.ember("bench", "serve", "--backend", "cpu", "--preset", "gpt-5");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("unknown preset \"gpt-5\"; the presets are " + String.join(", ", Presets.names())), r.err());
        r = GenerateCommandTest.ember("bench", "serve", "--backend", "cpu", "--gpu-memory-utilization", "1.5");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("--gpu-memory-utilization must be in (0, 1]"), r.err());
        r = GenerateCommandTest.ember("bench", "offline", "--backend", "cpu", "--input-len", "5:2");
        assertNotEquals(0, r.exitCode());
        assertTrue(r.err().contains("1 <= MIN <= MAX"), r.err());
        r = GenerateCommandTest.ember("bench", "serve", "--backend", "cpu", "--schedule-policy", "fifo", "--num-req", "1");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("decode-first or prefill-first"), r.err());
        r = GenerateCommandTest.ember("bench", "offline", "--backend", "cpu", "--num-requests", "1", "--kernel-timeline", "kernels.csv");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("--kernel-timeline records the GPU's kernels; cpu"), r.err());
    }
}
