package dev.ember.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.cli.GenerateCommandTest.Run;
import dev.ember.report.ReportCommandsTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;

import static dev.ember.cli.GenerateCommandTest.ember;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code ember bench spec} on the CPU with the default model and its shipped draft, at tiny workloads. */
class SpecBenchCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> FILES = List.of("benchmark_results.json", "benchmark_results_speculative.json",
            "benchmark_results_target.json", "benchmark_results_gpu.json");

    @TempDir
    Path dir;

    /** The warm-up's requests: the shortest and the longest prompts, so that its sequences reach the timed runs' widths. */
    @Test
    void theWarmUpTakesTheShortestAndLongestPrompts() {
        List<int[]> prompts = List.of(new int[5], new int[40], new int[12], new int[3], new int[27], new int[9]);
        List<Integer> lengths = SpecBenchCommand.warmUpPrompts(prompts, 2).stream().map(p -> p.length).toList();
        assertEquals(List.of(3, 5, 27, 40), lengths);
        // No more prompts than two batches: all of them, shortest first.
        assertEquals(List.of(3, 5, 9, 12, 27, 40), SpecBenchCommand.warmUpPrompts(prompts, 3).stream().map(p -> p.length).toList());
    }

    private Run spec(String... args) {
        String[] all = new String[args.length + 6];
        System.arraycopy(new String[] {"bench", "spec", "--backend", "cpu", "--threads", "2"}, 0, all, 0, 6);
        System.arraycopy(args, 0, all, 6, args.length);
        return ember(all);
    }

    @Test
    void writesTheFourFilesAndPrintsTheMeasuredAndPredictedSpeedUp() throws IOException {
        Run r = spec("--num-prompts", "2", "--batch-size", "2", "--gen-len", "12", "--runs", "1", "--monitor", "--out-dir", dir.toString());
        assertEquals(0, r.exitCode(), r.err());
        for (String file : FILES) {
            assertTrue(Files.exists(dir.resolve(file)), file + " written");
        }
        JsonNode results = BenchFiles.assertResultColumns(dir.resolve("benchmark_results.json"), SpecBenchCommand.COLUMNS);
        assertEquals(2, results.size());
        JsonNode plain = results.get(0);
        JsonNode speculative = results.get(1);
        assertEquals("target", plain.get("mode").asText());
        assertEquals("speculative", speculative.get("mode").asText());
        assertEquals("draft model ember-tiny-draft", speculative.get("draft").asText(), "the default model's shipped draft");
        for (JsonNode row : results) {
            assertEquals(24, row.get("generated_tokens").asInt(), row.toString());
            assertEquals(row.get("prompt_tokens").asInt() + 24, row.get("total_tokens").asInt());
            for (String field : List.of("ttft_ms_mean", "e2e_latency_ms_mean", "throughput_tok_s", "duration_s")) {
                assertTrue(row.get(field).asDouble() > 0, field + " in " + row);
            }
        }
        assertTrue(plain.get("acceptance_rate").isNull() && plain.get("speedup").isNull());
        double acceptance = speculative.get("acceptance_rate").asDouble();
        assertTrue(acceptance > 0 && acceptance <= 1, speculative.toString());
        assertTrue(speculative.get("alpha").asDouble() >= acceptance, "alpha counts only the drafted tokens judged");
        assertTrue(speculative.get("cost_ratio_c").asDouble() > 0 && speculative.get("speedup").asDouble() > 0);
        double predicted = SpecBenchCommand.predictedSpeedup(speculative.get("alpha").asDouble(), 4,
                speculative.get("cost_ratio_c").asDouble(), 1);
        assertEquals(predicted, speculative.get("predicted_speedup").asDouble(), 1e-9);
        assertTrue(speculative.get("identical_to_target").asBoolean(), "greedy speculation gives the target's tokens");

        assertEquals(1, JSON.readTree(dir.resolve("benchmark_results_speculative.json").toFile()).get("results").size());
        assertEquals(1, JSON.readTree(dir.resolve("benchmark_results_target.json").toFile()).get("results").size());
        JsonNode root = JSON.readTree(dir.resolve("benchmark_results.json").toFile());
        assertEquals(4, root.get("acceptance_by_position").get("4").size());
        assertEquals("same", root.get("header").get("placement").asText(), "auto places the draft on the target's device");
        assertTrue(r.out().contains("# draft: draft model ember-tiny-draft, placement same; gamma 4"), r.out());
        assertTrue(root.get("cost").get("draft_decode_ms").asDouble() > 0, root.get("cost").toString());
        // A GPU window for each run (the target's and speculation's) where NVML is, else the reason in both files.
        BenchFiles.assertMonitorFiles(dir.resolve("benchmark_results.json"), r, 2, MonitorOptions.withKeys(List.of("mode", "gamma", "run")));

        assertTrue(r.out().contains("speed-up, measured (throughput)"), r.out());
        assertTrue(r.out().contains("speed-up, predicted (Leviathan)"), r.out());
        String kept = String.format(java.util.Locale.ROOT, "%.0f%%", 100 * speculative.get("speedup").asDouble() / predicted);
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("measured / predicted (Leviathan)") && l.contains(kept)),
                "the share of the prediction kept, " + kept + ": " + r.out());
        assertTrue(r.out().contains("# cost of a step: "), r.out());
        assertTrue(r.out().contains("outputs identical to the target's: yes"), r.out());
        assertFalse(r.err().contains("trace of"), "no --trace, no trace file: " + r.err());
    }

    @Test
    void traceWritesEachTimedPassAsAProcessWithTheDraftsSpansAndTheSummarySplitsAStepIntoAwaitsAndHostTime() throws IOException {
        Path file = dir.resolve("trace").resolve("spec.json");
        Run r = spec("--model", "models/ember-tiny", "--speculative-model", "models/ember-tiny-draft", "--num-prompts", "2",
                "--batch-size", "1", "--gen-len", "8", "--runs", "1", "--gamma", "1,2", "--trace", file.toString(),
                "--out-dir", dir.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.err().contains("in 3 passes written to " + file), r.err());

        Map<Integer, String> processes = new TreeMap<>();
        Map<Integer, List<JsonNode>> spans = new TreeMap<>();
        for (JsonNode e : JSON.readTree(file.toFile()).get("traceEvents")) {
            int pid = e.get("pid").asInt();
            if (e.get("name").asText().equals("process_name")) {
                processes.put(pid, e.get("args").get("name").asText());
            } else if (e.get("ph").asText().equals("X")) {
                assertEquals("engine", e.get("cat").asText(), e.toString());
                assertTrue(e.get("dur").asDouble() >= 0, e.toString());
                spans.computeIfAbsent(pid, p -> new ArrayList<>()).add(e);
            }
        }
        assertEquals(Map.of(1, "target, run 1", 2, "gamma 1, run 1", 3, "gamma 2, run 1"), processes, "a process per timed pass, in the order run");
        assertEquals(processes.keySet(), spans.keySet());
        List<String> engine = List.of("engine_step", "schedule", "submit", "await", "retire");
        List<String> drafting = List.of("propose", "draft_prepare", "draft_chunks", "draft_submit", "draft_await");
        double previousEnd = 0;
        for (int pid : spans.keySet()) {
            List<JsonNode> pass = spans.get(pid);
            Map<String, Double> total = new HashMap<>();
            pass.forEach(e -> total.merge(e.get("name").asText(), e.get("dur").asDouble(), Double::sum));
            for (String name : pid == 1 ? engine : Stream.concat(engine.stream(), drafting.stream()).toList()) {
                assertTrue(total.getOrDefault(name, 0.0) > 0, processes.get(pid) + ": " + name + " in " + total.keySet());
            }
            if (pid == 1) {
                assertTrue(drafting.stream().noneMatch(total::containsKey), "the target alone drafts nothing: " + total.keySet());
            }
            // Each of the draft's spans lies inside the engine's propose span, but the await of a greedy draft's last
            // step, which the verification takes on the device: that one lies inside the engine's await; and the
            // catch-up queued behind a verification, inside the engine's submit.
            List<JsonNode> proposes = pass.stream().filter(e -> e.get("name").asText().equals("propose")).toList();
            List<JsonNode> awaits = pass.stream().filter(e -> e.get("name").asText().equals("await")).toList();
            List<JsonNode> submits = pass.stream().filter(e -> e.get("name").asText().equals("submit")).toList();
            int lastOnDevice = 0, catchUps = 0;
            for (JsonNode e : pass) {
                String name = e.get("name").asText();
                if (name.startsWith("draft_")) {
                    boolean inPropose = inside(e, proposes);
                    boolean inAwait = name.equals("draft_await") && inside(e, awaits);
                    boolean inSubmit = name.equals("draft_catch_up") && inside(e, submits);
                    assertTrue(inPropose || inAwait || inSubmit, e + " inside a propose span, a draft's await inside an await "
                            + "span or a catch-up inside a submit span");
                    lastOnDevice += inAwait ? 1 : 0;
                    catchUps += inSubmit ? 1 : 0;
                }
            }
            assertEquals(pid != 1, lastOnDevice > 0, processes.get(pid) + ": greedy drafts' last steps awaited in the engine's await");
            // On the CPU a step computes when it is awaited, so the draft does not catch up behind verifications there.
            assertEquals(0, catchUps, processes.get(pid) + ": no catch-up on the CPU");
            Set<Integer> steps = new TreeSet<>();
            pass.stream().filter(e -> e.get("name").asText().equals("draft_await")).forEach(e -> steps.add(e.get("args").get("step").asInt()));
            assertEquals(pid == 2 ? Set.of(0) : pid == 3 ? Set.of(0, 1) : Set.of(), steps, "a draft step awaited per drafted position");
            // The passes ran one after another, and lie so on the trace's one timeline.
            double start = pass.stream().mapToDouble(e -> e.get("ts").asDouble()).min().orElseThrow();
            assertTrue(start >= previousEnd, processes.get(pid) + " starts after the pass before ends");
            previousEnd = pass.stream().mapToDouble(SpecBenchCommandTest::end).max().orElseThrow();
        }

        assertTrue(r.out().contains("per step (us): step = target await + draft awaits + host"), r.out());
        assertTrue(r.out().contains("host: schedule / drafting / submit / retire / rest"), r.out());
        assertTrue(r.out().contains("host with no step in flight"), r.out());
        JsonNode rows = BenchFiles.assertResultColumns(dir.resolve("benchmark_results.json"), SpecBenchCommand.COLUMNS);
        for (JsonNode row : rows) {
            double step = row.get("step_us_mean").asDouble(), host = row.get("host_us_per_step").asDouble();
            double draftAwait = row.get("draft_await_us_per_step").asDouble();
            assertTrue(row.get("engine_steps").asLong() > 0 && host > 0, row.toString());
            assertEquals(step, row.get("target_await_us_per_step").asDouble() + draftAwait + host, 1e-6 * step, row.toString());
            assertEquals(host, row.get("host_schedule_us_per_step").asDouble() + row.get("host_drafting_us_per_step").asDouble()
                    + row.get("host_submit_us_per_step").asDouble() + row.get("host_retire_us_per_step").asDouble()
                    + row.get("host_other_us_per_step").asDouble(), 1e-6 * step, row.toString());
            double idle = row.get("host_idle_us_per_step").asDouble();
            assertTrue(idle > 0 && idle <= host + 1e-6, row.toString());
            boolean speculative = row.get("mode").asText().equals("speculative");
            // At gamma 1 a greedy draft's one step is awaited inside the target's await and counts there (but for a
            // catch-up queued behind a request's last verification, which the next request's round awaits unused).
            if (speculative && row.get("gamma").asInt() > 1) {
                assertTrue(draftAwait > 0, row.toString());
            }
            if (!speculative) {
                assertEquals(0, draftAwait, row.toString());
            }
            assertTrue(row.get("target_prepare_us_per_step").isNull(), "the CPU runner counts nothing: " + row);
        }
    }

    private static boolean inside(JsonNode e, List<JsonNode> spans) {
        return spans.stream().anyMatch(s -> s.get("ts").asDouble() <= e.get("ts").asDouble() + 1e-3 && end(s) + 1e-3 >= end(e));
    }

    private static double end(JsonNode span) {
        return span.get("ts").asDouble() + span.get("dur").asDouble();
    }

    @Test
    void aGammaSweepWithASelfDraftDrawsTheSpeedUpChart() throws IOException {
        Run r = spec("--num-prompts", "2", "--batch-size", "2", "--gen-len", "8", "--runs", "1", "--gamma", "1,3",
                "--speculative-model", "self:2", "--out-dir", dir.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode rows = JSON.readTree(dir.resolve("benchmark_results_speculative.json").toFile()).get("results");
        assertEquals(List.of(1, 3), List.of(rows.get(0).get("gamma").asInt(), rows.get(1).get("gamma").asInt()));
        assertEquals("draft model self:2", rows.get(0).get("draft").asText());
        Path png = dir.resolve(SpecBenchCommand.CHART_PREFIX + "_speedup.png");
        assertTrue(r.out().contains("wrote " + png), r.out());
        ReportCommandsTest.assertPng(png);
    }

    @Test
    void requestsArriveAtARateWithNgramLookupAndPromptsFromAShareGptFile() throws IOException {
        Path data = dir.resolve("sharegpt.jsonl");
        Files.writeString(data, """
                {"conversations": [{"from": "human", "value": "And God said, Let there be light: and there was light."}, {"from": "gpt", "value": "And God saw the light, that it was good."}]}
                {"conversation": [{"human": "Blessed are the meek: for they shall inherit the earth.", "assistant": "Blessed are they which do hunger and thirst."}]}
                """);
        Run r = spec("--request-rate", "50", "--duration", "0.1", "--gen-len", "6", "--runs", "1", "--dataset", data.toString(),
                "--speculative-method", "ngram", "--no-target", "--out-dir", dir.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode root = JSON.readTree(dir.resolve("benchmark_results.json").toFile());
        JsonNode row = root.get("results").get(0);
        assertEquals("speculative", row.get("mode").asText());
        assertEquals(0, row.get("cost_ratio_c").asDouble(), "n-gram lookup runs no model");
        assertTrue(row.get("speedup").isNull(), "no target run to compare with");
        assertEquals(50.0, root.get("header").get("workload").get("request_rate").asDouble());
        assertTrue(root.get("header").get("workload").get("prompts").asText().contains("ShareGPT"));
        assertTrue(r.out().contains("outputs identical to the target's: not checked (no target run"), r.out());
        assertTrue(JSON.readTree(dir.resolve("benchmark_results_target.json").toFile()).get("results").isEmpty());
        JsonNode gpu = JSON.readTree(dir.resolve("benchmark_results_gpu.json").toFile()).get("gpu");
        assertFalse(gpu.get("available").asBoolean(), "no --monitor: " + gpu);
    }

    @Test
    void badOptionsGiveOneClearErrorLine() {
        List<List<String>> cases = List.of(
                List.of("--gamma", "0"),
                List.of("--gamma", "2,x"),
                List.of("--gamma", "4", "--num-speculative-tokens", "3"),
                List.of("--no-speculative", "--no-target"),
                List.of("--request-rate", "2"),
                List.of("--num-prompts", "3", "--request-rate", "1", "--duration", "1"),
                List.of("--gen-len", "600"),
                List.of("--runs", "0"));
        for (List<String> args : cases) {
            Run r = spec(args.toArray(String[]::new));
            assertEquals(1, r.exitCode(), args + ": " + r.err());
            List<String> lines = r.err().strip().lines().toList();
            assertEquals(1, lines.size(), args + ": " + r.err());
            assertTrue(lines.getFirst().startsWith("ember: error: "), args + ": " + r.err());
        }
        Run late = spec("--speculative-method", "ngram", "--speculative-model", "self:2", "--num-prompts", "1", "--gen-len", "2",
                "--out-dir", dir.toString());
        assertEquals(1, late.exitCode(), late.err());
        assertTrue(late.err().contains("ember: error: --speculative-method ngram takes no --speculative-model"), late.err());
        assertFalse(late.err().contains("\tat "), late.err());
    }

    @Test
    void thePredictionIsLeviathansFormula() {
        assertEquals(1 / (4 * 0.25 + 1), SpecBenchCommand.predictedSpeedup(0, 4, 0.25, 1), 1e-12, "nothing accepted");
        assertEquals(5 / (4 * 0.25 + 1), SpecBenchCommand.predictedSpeedup(1, 4, 0.25, 1), 1e-12, "everything accepted");
        // a = 0.8, gamma = 4, c = 0.1: (1 - 0.8^5) / (0.2 * 1.4) = 2.4286.
        assertEquals((1 - Math.pow(0.8, 5)) / (0.2 * 1.4), SpecBenchCommand.predictedSpeedup(0.8, 4, 0.1, 1), 1e-12);
        assertEquals((1 - Math.pow(0.8, 5)) / (0.2 * 2.4), SpecBenchCommand.predictedSpeedup(0.8, 4, 0.1, 2), 1e-12);
    }
}
