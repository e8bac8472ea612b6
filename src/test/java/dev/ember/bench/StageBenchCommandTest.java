package dev.ember.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.cli.GenerateCommandTest.Run;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static dev.ember.cli.GenerateCommandTest.ember;
import static org.junit.jupiter.api.Assertions.*;

/** {@code ember bench stage} on the tiny model and the CPU: seed 000's columns exactly; the stages add up to the wall. */
class StageBenchCommandTest {

    @Test
    void writesTheSeedsColumnsAndStagesSumToTheWallTime(@TempDir Path dir) throws IOException {
        Path csv = dir.resolve("stage.csv"), json = dir.resolve("stage.json");
        Run run = ember("bench", "stage", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--prompt-len", "48", "--decode-steps", "8", "--chunk-len", "32", "--iters", "3", "--warmup", "1",
                "--decode-with-sampling", "--csv", csv.toString(), "--json", json.toString());
        assertEquals(0, run.exitCode(), run.err());
        List<String> lines = Files.readAllLines(csv);
        assertEquals("phase,mode,gpus,split,prompt_len,decode_steps,chunk_len,overlap,decode_sampling,wall_ms,embedding_ms,"
                + "rmsnorm_ms,attention_ms,ffn_ms,p2p_ms,memcpy_h2d_ms,memcpy_d2h_ms,sampling_ms,lm_head_ms,profile_total_ms",
                lines.get(0));
        assertEquals(String.join(",", StageBenchCommand.COLUMNS), lines.get(0));
        assertEquals(3, lines.size());
        List<String> columns = StageBenchCommand.COLUMNS;
        for (int row = 1; row <= 2; row++) {
            String[] cells = lines.get(row).split(",", -1);
            assertEquals(columns.size(), cells.length);
            assertEquals(row == 1 ? "prefill" : "decode_per_token", cells[0]);
            assertEquals("48", cells[columns.indexOf("prompt_len")]);
            assertEquals("1", cells[columns.indexOf("decode_sampling")]);
            for (String empty : List.of("gpus", "p2p_ms", "memcpy_h2d_ms", "memcpy_d2h_ms")) {
                assertEquals("", cells[columns.indexOf(empty)], empty + " is not a CPU figure");
            }
            for (String timed : List.of("embedding_ms", "rmsnorm_ms", "attention_ms", "ffn_ms", "lm_head_ms")) {
                assertTrue(Double.parseDouble(cells[columns.indexOf(timed)]) > 0, timed);
            }
            assertFalse(cells[columns.indexOf("sampling_ms")].isEmpty(), "the prefill picks the first token, each decode step one");
            double wall = Double.parseDouble(cells[columns.indexOf("wall_ms")]);
            double total = Double.parseDouble(cells[columns.indexOf("profile_total_ms")]);
            assertTrue(Math.abs(total - wall) <= 0.10 * wall, cells[0] + ": stages " + total + " ms, wall " + wall + " ms");
        }
        assertTrue(run.out().contains("prefill: stages sum to"), run.out());
        JsonNode results = new ObjectMapper().readTree(json.toFile()).get("results");
        assertEquals(2, results.size());
        assertEquals("decode_per_token", results.get(1).get("phase").asText());
    }

    /** In pipeline stages (threads on the CPU) the rows say so, and p2p holds rank 0's wait for the later stages. */
    @Test
    void aPipelineSaysItsSplitAndTimesItsTransfers(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("stage.json");
        Run run = ember("bench", "stage", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--split", "3,4", "--prompt-len", "48", "--decode-steps", "8", "--chunk-len", "32", "--iters", "2",
                "--warmup", "1", "--json", json.toString());
        assertEquals(0, run.exitCode(), run.err());
        JsonNode results = new ObjectMapper().readTree(json.toFile()).get("results");
        assertEquals(2, results.size());
        for (JsonNode row : results) {
            assertEquals("pipeline", row.get("mode").asText());
            assertEquals("3,4", row.get("split").asText());
            assertTrue(row.get("p2p_ms").asDouble() > 0, row.toString());
        }
    }

    @Test
    void monitorAndTraceWriteTheirFilesAndTheTraceHoldsEveryStageOfEveryStep(@TempDir Path dir) throws IOException {
        Path csv = dir.resolve("stage.csv"), json = dir.resolve("stage.json"), trace = dir.resolve("trace.json");
        Run run = ember("bench", "stage", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--prompt-len", "48", "--decode-steps", "8", "--chunk-len", "32", "--iters", "2", "--warmup", "1",
                "--decode-with-sampling", "--monitor", "--trace", trace.toString(), "--csv", csv.toString(),
                "--json", json.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertEquals(String.join(",", StageBenchCommand.COLUMNS), Files.readAllLines(csv).getFirst());
        assertEquals(2, BenchFiles.assertResultColumns(json, StageBenchCommand.COLUMNS).size());
        BenchFiles.assertMonitorFiles(json, run, 1, MonitorOptions.PROMPT_GPU_COLUMNS);

        // The timed runs only (2), each 2 prefill chunks (48 tokens in chunks of 32) and 8 decode steps.
        List<JsonNode> spans = BenchFiles.spans(trace);
        List<JsonNode> steps = new java.util.ArrayList<>(BenchFiles.spans(spans, "engine", "prefill_chunk"));
        assertEquals(4, steps.size());
        steps.addAll(BenchFiles.spans(spans, "engine", "decode_step"));
        assertEquals(4 + 16, steps.size());
        int layers = BenchFiles.DEFAULT_MODEL_LAYERS;
        for (String stage : List.of("embedding", "lm_head")) {
            assertEquals(20, BenchFiles.spans(spans, "stage", stage).size(), stage + ": one per step");
        }
        assertEquals(20, BenchFiles.spans(spans, "stage", "sampling").size(), "sampling: one per step (the prompt's last chunk and each decode pick a token)");
        for (int l = 0; l < layers; l++) {
            assertEquals(20, BenchFiles.spans(spans, "stage", "layer " + l).size(), "layer " + l + ": one per step");
        }
        java.util.Set<Integer> attentionLayers = new java.util.TreeSet<>();
        for (JsonNode a : BenchFiles.spans(spans, "stage", "attention")) {
            if (a.has("args")) {
                attentionLayers.add(a.get("args").get("layer").asInt());
            }
        }
        assertEquals(layers, attentionLayers.size(), "attention spans in every layer: " + attentionLayers);
        for (JsonNode span : spans) {
            if (span.get("cat").asText().equals("stage")) {
                double start = span.get("ts").asDouble(), end = start + span.get("dur").asDouble();
                assertTrue(steps.stream().anyMatch(step -> step.get("ts").asDouble() <= start + 1e-3
                        && end <= step.get("ts").asDouble() + step.get("dur").asDouble() + 1e-3), "inside a step: " + span);
            }
        }
        assertTrue(run.err().contains("trace of"), run.err());
    }

    @Test
    void aPromptBeyondTheContextIsOneClearError() {
        Run run = ember("bench", "stage", "--model", "models/ember-tiny", "--backend", "cpu", "--prompt-len", "2000",
                "--decode-steps", "100");
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("exceed the model's context of 2048 tokens"), run.err());
    }

    @Test
    void agreementSaysWhetherTheStagesAccountForTheWall() {
        assertTrue(StageBenchCommand.agreement("prefill", 9.5, 10).endsWith(": within 10%"));
        assertTrue(StageBenchCommand.agreement("prefill", 8.5, 10).endsWith("NOT within 10%"));
    }
}
