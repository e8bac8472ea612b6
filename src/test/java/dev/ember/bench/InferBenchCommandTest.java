package dev.ember.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.backend.streaming.DiskBandwidth;
import dev.ember.backend.streaming.ScheduleShape;
import dev.ember.backend.streaming.StreamingMode;
import dev.ember.backend.streaming.StreamingPlan;
import dev.ember.cli.GenerateCommandTest.Run;
import dev.ember.report.ReportCommandsTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.ember.cli.GenerateCommandTest.ember;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code ember bench infer} on the tiny model and the CPU: 002's summary block and JSON, streamed and not; the bound's arithmetic. */
class InferBenchCommandTest {
    private static final List<String> JSON_FIELDS = List.of("batch_size", "max_new_tokens", "prompt_lens",
            "prefill_tokens_total", "decode_tokens_total", "prefill_ms", "first_token_decode_ms", "ttft_ms", "decode_ms",
            "e2e_ms", "throughput_tok_s", "end_to_end_tok_s", "io_bw_MBps", "gpu_mem_GB", "mode", "device", "wsm", "streaming");

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
        assertTrue(run.out().contains(", disk reads ") && run.out().contains(" spans of ")
                && run.out().contains("the bound uses their mean") && run.out().contains("GB/s, mean of before and after the timed round)"),
                "the disk before and after, and the mean:\n" + run.out());
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
        JsonNode wsm = root.get("wsm");
        assertEquals(List.of("enabled", "ssd_enabled", "gpu_max_groups"), fieldNames(wsm), "002's wsm object, its keys");
        assertTrue(wsm.get("enabled").asBoolean());
        assertTrue(wsm.get("ssd_enabled").asBoolean(), "mixed reads the layers from the disk");
        assertEquals(streaming.get("gpu_max_groups").asInt(), wsm.get("gpu_max_groups").asInt());
        assertTrue(streaming.get("most_groups_in_window").asInt() <= 4, "the window holds at most its four slots");
        assertTrue(streaming.get("bound_tok_s").asDouble() > 0 && streaming.get("disk_GBps").asDouble() > 0);
        double before = streaming.get("disk_GBps_before").asDouble(), after = streaming.get("disk_GBps_after").asDouble();
        assertTrue(before > 0 && after > 0, streaming.toString());
        assertEquals((before + after) / 2, streaming.get("disk_GBps").asDouble(), 1e-9 * (before + after), "disk_GBps is the mean");
        assertEquals("mean of before and after the timed round", streaming.get("disk_GBps_basis").asText());
        assertTrue(streaming.get("disk_GBps_min_span").asDouble() <= Math.min(before, after)
                && streaming.get("disk_GBps_max_span").asDouble() >= Math.max(before, after), streaming.toString());
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
        JsonNode wsm = root.get("wsm");
        assertTrue(!wsm.get("enabled").asBoolean() && !wsm.get("ssd_enabled").asBoolean(), wsm.toString());
        assertTrue(wsm.get("gpu_max_groups").isNull(), "no window without streaming");
    }

    private static List<String> fieldNames(JsonNode node) {
        List<String> names = new ArrayList<>();
        node.fieldNames().forEachRemaining(names::add);
        return names;
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
            assertTrue(root.get("streaming").get("disk_GBps_after").isNull(), "preload reads no disk while timed: one measurement");
        }
        assertTrue(Files.notExists(dir.resolve("preload.json")), "a sweep writes only the per-size files");

        Run plot = ember("plot", dir.resolve("preload-b1.json").toString(), dir.resolve("preload-b3.json").toString());
        assertEquals(0, plot.exitCode(), plot.err());
        ReportCommandsTest.assertPng(dir.resolve("preload-b1_modes.png"));

        Run both = ember("bench", "infer", "--model", "models/ember-tiny", "--batch-size", "2", "--batch-sizes", "1,2");
        assertEquals(1, both.exitCode());
        assertTrue(both.err().contains("give --batch-size or --batch-sizes, not both"), both.err());
    }

    @Test
    void theBoundTakesTheMeanOfTheDiskBeforeAndAfter() {
        // 4 layers of 1 + 3 MB, the first in the host cache: 4 MB a step at the copy rate, 12 MB at the disk's
        ScheduleShape shape = new ScheduleShape(4, 1_000_000, 3_000_000, 2, 1, 1, 0, 1, 4, 16L << 20);
        DiskBandwidth before = disk(1.5e9, 1_200_000_000L, 1_800_000_000L), after = disk(2.5e9, 2_000_000_000L, 3_000_000_000L);
        InferBenchCommand.Bound start =
                new InferBenchCommand.Bound(new StreamingPlan(StreamingMode.MIXED, shape, 0, 0), 50e9, before, null);
        assertTrue(start.readsDisk());
        assertEquals(1 / (4e6 / 50e9 + 12e6 / 1.5e9), start.tokensPerSecond(1), 1e-9, "before the timed round: the one measurement");

        InferBenchCommand.Bound timed = start.after(after);
        assertEquals(2e9, timed.diskBytesPerSecond(), 1e-3);
        assertEquals(1 / (4e6 / 50e9 + 12e6 / 2e9), timed.tokensPerSecond(1), 1e-9, "staged bytes at the mean, 2 GB/s");
        assertEquals(4 * timed.tokensPerSecond(1), timed.tokensPerSecond(4), 1e-9, "a step serves the batch");
        Map<String, Object> json = new LinkedHashMap<>();
        timed.putJson(json, 4);
        assertEquals(List.of("h2d_GBps", "disk_GBps", "disk_direct_io", "disk_GBps_basis", "disk_GBps_before", "disk_GBps_after",
                "disk_GBps_min_span", "disk_GBps_max_span", "bound_tok_s"), List.copyOf(json.keySet()));
        assertEquals(2.0, (double) json.get("disk_GBps"), 1e-12);
        assertEquals(1.5, (double) json.get("disk_GBps_before"), 1e-12);
        assertEquals(2.5, (double) json.get("disk_GBps_after"), 1e-12);
        assertEquals(1.2, (double) json.get("disk_GBps_min_span"), 1e-12, "the slowest span of either measurement");
        assertEquals(3.0, (double) json.get("disk_GBps_max_span"), 1e-12, "the fastest span of either measurement");
        assertEquals("mean of before and after the timed round", json.get("disk_GBps_basis"));
        assertEquals(timed.tokensPerSecond(4), (double) json.get("bound_tok_s"), 1e-12);

        InferBenchCommand.Bound next = timed.next();
        assertEquals(after, next.disk(), "the measurement after one round is the one before the next");
        assertEquals(2.5e9, next.diskBytesPerSecond(), 1e-3);

        InferBenchCommand.Bound stream =
                new InferBenchCommand.Bound(new StreamingPlan(StreamingMode.STREAM, shape, 0, 0), 50e9, before, null);
        assertTrue(!stream.readsDisk());
        assertEquals(1 / (16e6 / 50e9), stream.tokensPerSecond(1), 1e-9, "stream copies every byte from host memory");
    }

    /** A measurement of two equal spans at {@code slow} and {@code fast} bytes a second, said to average {@code rate}. */
    private static DiskBandwidth disk(double rate, long slow, long fast) {
        return new DiskBandwidth(rate, true, List.of(new DiskBandwidth.Span(0, slow, 1_000_000_000L),
                new DiskBandwidth.Span(1L << 30, fast, 1_000_000_000L)));
    }
}
