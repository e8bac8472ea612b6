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

/** {@code ember bench latency} on the tiny model and the CPU: 003's columns exactly, GPU-only cells empty. */
class LatencyBenchCommandTest {

    @Test
    void writesTheSeedsColumnsForEachPromptLength(@TempDir Path dir) throws IOException {
        Run run = ember("bench", "latency", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--prompt-lens", "8,24", "--max-new-tokens", "4", "--iters", "2", "--warmup", "1",
                "--out-dir", dir.toString(), "--out-name", "tiny", "--monitor", "--trace", dir.resolve("trace.json").toString());
        assertEquals(0, run.exitCode(), run.err());
        List<String> csv = Files.readAllLines(dir.resolve("tiny.csv"));
        assertEquals(String.join(",", LatencyBenchCommand.COLUMNS), csv.get(0));
        assertEquals("benchmark,model,dtype,tp_size,prompt_len,max_new_tokens,prefill_tokens,iters,warmup,latency_ms_mean,"
                + "latency_ms_p50,latency_ms_p95,prefill_latency_ms_mean,prefill_latency_ms_p50,prefill_latency_ms_p95,"
                + "decode_tokens_per_s,peak_mem_bytes_mean,peak_mem_bytes_p95", csv.get(0));
        assertEquals(3, csv.size());
        for (int row = 1; row <= 2; row++) {
            String[] cells = csv.get(row).split(",", -1);
            assertEquals(LatencyBenchCommand.COLUMNS.size(), cells.length);
            assertEquals(row == 1 ? "8" : "24", cells[4]);
            for (int c = 9; c <= 15; c++) {
                assertTrue(Double.parseDouble(cells[c]) > 0, LatencyBenchCommand.COLUMNS.get(c) + " = " + cells[c]);
            }
            assertTrue(Double.parseDouble(cells[11]) >= Double.parseDouble(cells[10]), "p95 >= p50");
            assertEquals("", cells[16], "no GPU memory on the CPU");
            assertEquals("", cells[17]);
        }
        JsonNode json = new ObjectMapper().readTree(dir.resolve("tiny.json").toFile());
        assertEquals(2, json.get("results").size());
        assertTrue(json.get("header").get("device").asText().startsWith("cpu"));
        assertTrue(json.get("header").get("peak_mem_source").asText().startsWith("not measured"));
        JsonNode gpu = new ObjectMapper().readTree(dir.resolve("tiny_gpu.json").toFile()).get("gpu");
        if (!gpu.get("available").asBoolean()) {
            assertTrue(gpu.get("reason").asText().startsWith("no NVML: "), gpu.toString());
            assertTrue(run.err().contains("no NVML: "), run.err());
        }
        JsonNode trace = new ObjectMapper().readTree(dir.resolve("trace.json").toFile()).get("traceEvents");
        long prefillSteps = 0;
        for (JsonNode e : trace) {
            prefillSteps += e.get("name").asText().equals("submit") && e.get("args").get("tokens").asInt() > 1 ? 1 : 0;
        }
        assertEquals(2 * 2 * (1 + 2), prefillSteps, "2 lengths x (prefill + full) x (warmup + iters) requests, one prompt step each");
    }

    @Test
    void takesTheHarnesssTpSizeOption(@TempDir Path dir) throws IOException {
        // seed 003: "--tp-size：Tensor Parallel 切分，默认为 1"
        Run run = ember("bench", "latency", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--prompt-lens", "8", "--max-new-tokens", "2", "--iters", "1", "--warmup", "0", "--tp-size", "2",
                "--out-dir", dir.toString(), "--out-name", "tp");
        assertEquals(0, run.exitCode(), run.err());
        List<String> csv = Files.readAllLines(dir.resolve("tp.csv"));
        assertEquals("2", csv.get(1).split(",")[3], "tp_size: " + csv.get(1));
    }

    @Test
    void aPromptBeyondTheContextIsOneClearError(@TempDir Path dir) {
        Run run = ember("bench", "latency", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--prompt-lens", "4096", "--out-dir", dir.toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("ember: error: prompt lengths 4096 plus 64 new tokens do not fit the model's context of 2048"),
                run.err());
    }

    @Test
    void presetsAreNamedAndExclusiveOfModel() {
        Run unknown = ember("bench", "latency", "--backend", "cpu", "--preset", "gpt-5");
        assertEquals(1, unknown.exitCode());
        assertTrue(unknown.err().contains("unknown preset \"gpt-5\""), unknown.err());
        Run both = ember("report", "--backend", "cpu", "--preset", "qwen3-0.6b",
                "--model", "models/ember-tiny", "--out", "target/never");
        assertEquals(1, both.exitCode());
        assertTrue(both.err().contains("--model or --preset, not both"), both.err());
    }
}
