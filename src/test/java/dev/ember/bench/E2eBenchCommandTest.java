package dev.ember.bench;

import dev.ember.cli.GenerateCommandTest;
import dev.ember.cli.GenerateCommandTest.Run;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code ember bench e2e} on the CPU with the default tiny model: the seeds' CSV columns, measured figures, clear errors. */
class E2eBenchCommandTest {

    @Test
    void writesOneRowOfTheSeedsColumnsWithMeasuredFigures(@TempDir Path dir) throws IOException {
        Path csv = dir.resolve("e2e.csv");
        Run r = GenerateCommandTest.ember("bench", "e2e", "--backend", "cpu", "--threads", "2", "--prompt-len", "24", "--gen-len", "6",
                "--chunk-len", "16", "--decode-batch", "2", "--iters", "2", "--warmup", "1", "--csv", csv.toString());
        assertEquals(0, r.exitCode(), r.err());
        List<String> lines = Files.readAllLines(csv);
        assertEquals(2, lines.size(), String.join("\n", lines));
        assertEquals("mode,prompt_len,gen_len,chunk_len,batch_size,ttft_ms,prefill_ms,decode_ms,decode_tok_s", lines.get(0));
        String[] cells = lines.get(1).split(",", -1);
        assertEquals(List.of("batch", "24", "6", "16", "2"), List.of(cells).subList(0, 5));
        for (int i = 5; i < cells.length; i++) {
            assertTrue(Double.parseDouble(cells[i]) > 0, "column " + i + " = " + cells[i]);
        }
        assertTrue(r.out().contains("# measured ceilings: copy"), r.out());
        assertTrue(r.out().contains("of the roofline"), r.out());
        assertTrue(r.out().contains("decode_tok_s"), r.out());
    }

    @Test
    void monitorAndTraceWriteTheirFilesWithASpanPerStep(@TempDir Path dir) throws IOException {
        Path csv = dir.resolve("e2e.csv"), json = dir.resolve("e2e.json"), trace = dir.resolve("trace.json");
        Run r = GenerateCommandTest.ember("bench", "e2e", "--backend", "cpu", "--threads", "2", "--prompt-len", "24",
                "--gen-len", "6", "--chunk-len", "16", "--decode-batch", "2", "--iters", "2", "--warmup", "1", "--monitor",
                "--trace", trace.toString(), "--csv", csv.toString(), "--json", json.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(String.join(",", E2eBenchCommand.COLUMNS), Files.readAllLines(csv).getFirst());
        BenchFiles.assertResultColumns(json, E2eBenchCommand.COLUMNS);
        BenchFiles.assertMonitorFiles(json, r, 1, List.of("iters", "output_tokens"));
        com.fasterxml.jackson.databind.JsonNode header = new com.fasterxml.jackson.databind.ObjectMapper().readTree(json.toFile())
                .get("header");
        assertTrue(header.get("timing").asText().startsWith("host clock"), "the CPU runner is timed with the host clock");
        assertTrue(header.get("overlap").asBoolean(), "decode steps overlap by default");
        // Timed runs only (2): 48 prompt tokens in steps of at most 16, then 5 decode steps of both sequences; overlapped,
        // the engine's last call only awaits the last step.
        List<com.fasterxml.jackson.databind.JsonNode> spans = BenchFiles.spans(trace);
        List<com.fasterxml.jackson.databind.JsonNode> prefill = BenchFiles.spans(spans, "engine", "prefill_step");
        assertEquals(2 * 3, prefill.size());
        for (com.fasterxml.jackson.databind.JsonNode step : prefill) {
            assertEquals(16, step.get("args").get("tokens").asInt());
        }
        List<com.fasterxml.jackson.databind.JsonNode> decode = BenchFiles.spans(spans, "engine", "decode_step");
        assertEquals(2 * (5 + 1), decode.size());
        assertEquals(2 * 5 * 2, decode.stream().mapToInt(s -> s.get("args").get("tokens").asInt()).sum());
        assertEquals(2 * (3 + 5), BenchFiles.spans(spans, "engine", "submit").size(), "the engine's own spans are there too");
        assertTrue(spans.stream().noneMatch(s -> "stage".equals(s.get("cat").asText())), "stages are not profiled in e2e");
    }

    /** Overlapped decode steps (their tokens carried from the step in flight) and serial ones write the same row. */
    @Test
    void noOverlapAwaitsEachDecodeStep(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("e2e.json");
        Run r = GenerateCommandTest.ember("bench", "e2e", "--backend", "cpu", "--threads", "2", "--prompt-len", "12",
                "--gen-len", "5", "--decode-batch", "3", "--iters", "1", "--warmup", "0", "--no-overlap", "--json", json.toString());
        assertEquals(0, r.exitCode(), r.err());
        BenchFiles.assertResultColumns(json, E2eBenchCommand.COLUMNS);
        assertFalse(new com.fasterxml.jackson.databind.ObjectMapper().readTree(json.toFile()).get("header").get("overlap").asBoolean());
    }

    @Test
    void badOptionsAndOversizedPresetsGiveOneClearError() {
        Run tooShort = GenerateCommandTest.ember("bench", "e2e", "--backend", "cpu", "--gen-len", "1");
        assertEquals(1, tooShort.exitCode());
        assertTrue(tooShort.err().contains("--gen-len must be at least 2"), tooShort.err());

        Run big = GenerateCommandTest.ember("bench", "e2e", "--backend", "cpu", "--preset", "llama-3.1-8b");
        assertEquals(1, big.exitCode());
        assertTrue(big.err().contains("limited to") && big.err().contains("use a GPU"), big.err());

        Run unknown = GenerateCommandTest.ember("bench", "e2e", "--backend", "cpu", "--preset", "gpt-5");
        assertEquals(1, unknown.exitCode());
        assertTrue(unknown.err().contains("unknown preset \"gpt-5\"; the presets are "), unknown.err());

        Run timeline = GenerateCommandTest.ember("bench", "e2e", "--backend", "cpu", "--kernel-timeline", "kernels.csv");
        assertEquals(1, timeline.exitCode());
        assertTrue(timeline.err().contains("--kernel-timeline records the GPU's kernels; cpu"), timeline.err());
    }
}
