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
import java.util.List;

import static dev.ember.cli.GenerateCommandTest.ember;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code ember bench infer} on the tiny model and the CPU: 002's summary block and JSON, streamed and not. */
class InferBenchCommandTest {
    private static final List<String> JSON_FIELDS = List.of("batch_size", "max_new_tokens", "prompt_lens",
            "prefill_tokens_total", "decode_tokens_total", "prefill_ms", "first_token_decode_ms", "ttft_ms", "decode_ms",
            "e2e_ms", "throughput_tok_s", "end_to_end_tok_s", "io_bw_MBps", "gpu_mem_GB", "mode", "device", "streaming");

    @Test
    void mixedModeStreamsFromTheDiskAndWritesTheSeedsJson(@TempDir Path dir) throws IOException {
        Path prompts = dir.resolve("prompts.txt");
        Files.writeString(prompts, "The quick brown fox jumps over the lazy dog, again and again and again.\nHello\n");
        Path json = dir.resolve("infer.json");
        Run run = ember("bench", "infer", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--mode", "mixed", "--gpu-cached-layers", "2", "--staging-mb", "1", "--prompts", prompts.toString(),
                "--batch-size", "3", "--max-new-tokens", "5", "--max-seq-len", "12", "--warmup-rounds", "1",
                "--out-json", json.toString(), "--verbose");
        assertEquals(0, run.exitCode(), run.err());
        for (String line : List.of("ttft_ms", "prefill_ms", "first_token_decode_ms", "decode_ms", "e2e_ms", "throughput_tok_s",
                "end_to_end_tok_s")) {
            assertTrue(run.out().contains(line + ": "), "summary line " + line + " in\n" + run.out());
        }
        assertTrue(run.out().contains("% of the streaming bound"), run.out());
        int lastLayer = new ObjectMapper().readTree(Path.of("models", "ember-tiny", "config.json").toFile())
                .get("num_hidden_layers").asInt() - 1;
        assertTrue(run.err().contains("[stream] prefetch attn0 -> attn-slot0") && run.err().contains("[stream] evict mlp" + lastLayer),
                "--verbose shows prefetches and evictions");
        JsonNode root = new ObjectMapper().readTree(json.toFile());
        List<String> fields = new ArrayList<>();
        root.fieldNames().forEachRemaining(fields::add);
        assertEquals(JSON_FIELDS, fields);
        assertEquals(3, root.get("batch_size").asInt());
        assertEquals(7, root.get("prompt_lens").get(0).asInt(), "a long prompt keeps its last max-seq-len - max-new-tokens tokens");
        assertTrue(root.get("prompt_lens").get(1).asInt() < 7, "a short prompt is kept whole");
        assertEquals(3 * 4, root.get("decode_tokens_total").asInt(), "tokens after each request's first");
        assertEquals("mixed", root.get("mode").asText());
        assertTrue(root.get("io_bw_MBps").get("weight_h2d_MBps").asDouble() > 0);
        JsonNode streaming = root.get("streaming");
        assertTrue(streaming.get("enabled").asBoolean());
        assertEquals(2, streaming.get("gpu_cached_layers").asInt());
        assertTrue(streaming.get("most_groups_in_window").asInt() <= 4, "the window holds at most its four slots");
        assertTrue(streaming.get("bound_tok_s").asDouble() > 0 && streaming.get("disk_GBps").asDouble() > 0);
        assertTrue(root.get("ttft_ms").asDouble() >= root.get("prefill_ms").asDouble());
        assertTrue(root.get("e2e_ms").asDouble() >= root.get("decode_ms").asDouble());
    }

    @Test
    void fullModeStreamsNothing(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("full.json");
        Run run = ember("bench", "infer", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--prompt-len", "6", "--max-new-tokens", "3", "--warmup-rounds", "0", "--temperature", "0",
                "--out-json", json.toString());
        assertEquals(0, run.exitCode(), run.err());
        JsonNode root = new ObjectMapper().readTree(json.toFile());
        assertEquals("full", root.get("mode").asText());
        assertEquals(0.0, root.get("io_bw_MBps").get("weight_h2d_MBps").asDouble());
        assertTrue(!root.get("streaming").get("enabled").asBoolean());
    }

    @Test
    void aBatchSweepWritesOneJsonPerSizeThatPlotDrawsPerMode(@TempDir Path dir) throws Exception {
        Run run = ember("bench", "infer", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--mode", "preload", "--batch-sizes", "1,3", "--prompt-len", "6", "--max-new-tokens", "3",
                "--warmup-rounds", "0", "--temperature", "0", "--out-json", dir.resolve("preload.json").toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("[bench infer] batch size 1") && run.out().contains("[bench infer] batch size 3"), run.out());
        for (int size : new int[] {1, 3}) {
            JsonNode root = new ObjectMapper().readTree(dir.resolve("preload-b" + size + ".json").toFile());
            assertEquals(size, root.get("batch_size").asInt());
            assertEquals(size, root.get("prompt_lens").size());
            assertEquals(size * 2, root.get("decode_tokens_total").asInt(), "tokens after each request's first");
            assertEquals("preload", root.get("mode").asText());
            assertTrue(root.get("streaming").get("bound_tok_s").asDouble() > 0);
        }
        assertTrue(Files.notExists(dir.resolve("preload.json")), "a sweep writes only the per-size files");

        Run plot = ember("plot", dir.resolve("preload-b1.json").toString(), dir.resolve("preload-b3.json").toString());
        assertEquals(0, plot.exitCode(), plot.err());
        ReportCommandsTest.assertPng(dir.resolve("preload-b1_modes.png"));

        Run both = ember("bench", "infer", "--model", "models/ember-tiny", "--batch-size", "2", "--batch-sizes", "1,2");
        assertEquals(1, both.exitCode());
        assertTrue(both.err().contains("give --batch-size or --batch-sizes, not both"), both.err());
    }
}
