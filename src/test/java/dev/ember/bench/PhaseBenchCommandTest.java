package dev.ember.bench;

import dev.ember.cli.GenerateCommandTest.Run;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static dev.ember.cli.GenerateCommandTest.assertOneLineError;
import static dev.ember.cli.GenerateCommandTest.ember;
import static org.junit.jupiter.api.Assertions.*;

/** {@code ember bench phase} on the tiny model and the CPU: seed 000's columns, a row per layer and prompt length. */
class PhaseBenchCommandTest {

    /** A pipeline's first stage times only its own layers: the command says so rather than print empty rows. */
    @Test
    void aPipelineIsRefusedSayingWhichBenchmarkTimesIt() {
        assertOneLineError(ember("bench", "phase", "--model", "models/ember-tiny",
                "--backend", "cpu", "--split", "3,4"), "bench stage times a pipeline");
    }

    @Test
    void writesARowPerLayerAndPromptLengthWithTheSeedsColumns(@TempDir Path dir) throws IOException {
        Path csv = dir.resolve("phase.csv");
        Run run = ember("bench", "phase", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--prompt-lens", "16,40", "--decode-steps", "4", "--iters", "1", "--warmup", "1", "--output", csv.toString());
        assertEquals(0, run.exitCode(), run.err());
        List<String> lines = Files.readAllLines(csv);
        assertEquals("prompt_len,layer_id,prefill_time_ms,decode_time_ms,prefill_tflops,decode_tflops,prefill_bandwidth,"
                + "decode_bandwidth", lines.get(0));
        int layers = BenchFiles.DEFAULT_MODEL_LAYERS;
        assertEquals(1 + 2 * layers, lines.size());
        for (int i = 1; i < lines.size(); i++) {
            String[] cells = lines.get(i).split(",", -1);
            assertEquals(PhaseBenchCommand.COLUMNS.size(), cells.length);
            assertEquals(i <= layers ? "16" : "40", cells[0]);
            assertEquals(String.valueOf((i - 1) % layers), cells[1]);
            for (int c = 2; c < cells.length; c++) {
                assertTrue(Double.parseDouble(cells[c]) > 0, PhaseBenchCommand.COLUMNS.get(c) + " = " + cells[c]);
            }
        }
        assertTrue(run.out().contains("prompt_len=40 prefill: layers sum to"), run.out());
    }

    @Test
    void monitorAndTraceWriteTheirFilesAndTheTraceHoldsEveryLayerOfEveryStep(@TempDir Path dir) throws IOException {
        Path csv = dir.resolve("phase.csv"), json = dir.resolve("phase.json"), trace = dir.resolve("trace.json");
        Run run = ember("bench", "phase", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--prompt-lens", "16,24", "--decode-steps", "3", "--iters", "2", "--warmup", "1", "--monitor",
                "--trace", trace.toString(), "--output", csv.toString(), "--json", json.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertEquals(String.join(",", PhaseBenchCommand.COLUMNS), Files.readAllLines(csv).getFirst());
        assertEquals(2 * BenchFiles.DEFAULT_MODEL_LAYERS, BenchFiles.assertResultColumns(json, PhaseBenchCommand.COLUMNS).size());
        BenchFiles.assertMonitorFiles(json, run, 2, MonitorOptions.PROMPT_GPU_COLUMNS);

        // Timed runs only: 2 lengths x 2 runs, each a prefill step and 3 decode steps.
        List<com.fasterxml.jackson.databind.JsonNode> spans = BenchFiles.spans(trace);
        assertEquals(4, BenchFiles.spans(spans, "engine", "prefill_chunk").size());
        assertEquals(12, BenchFiles.spans(spans, "engine", "decode_step").size());
        for (int l = 0; l < BenchFiles.DEFAULT_MODEL_LAYERS; l++) {
            List<com.fasterxml.jackson.databind.JsonNode> layer = BenchFiles.spans(spans, "stage", "layer " + l);
            assertEquals(16, layer.size(), "layer " + l + ": one per step");
            for (com.fasterxml.jackson.databind.JsonNode span : layer) {
                assertEquals(l, span.get("args").get("layer").asInt());
                assertTrue(span.get("dur").asDouble() > 0, span.toString());
            }
        }
        assertEquals(16, BenchFiles.spans(spans, "stage", "embedding").size());
    }

    @Test
    void anotherDeviceIsOneClearError() {
        Run run = ember("bench", "phase", "--model", "models/ember-tiny", "--backend", "cpu", "--prompt-lens", "8",
                "--device", "1");
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("CUDA_VISIBLE_DEVICES=1"), run.err());
    }
}
