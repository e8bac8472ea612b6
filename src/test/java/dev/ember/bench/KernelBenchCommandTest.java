package dev.ember.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.cli.GenerateCommandTest;
import dev.ember.cli.GenerateCommandTest.Run;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ember bench kernel} on the CPU backend with the tiny model (hidden 256, 8 heads of 32, 4 KV heads,
 * intermediate 768, vocabulary 6144): the documented columns, byte counts worked out by hand, and rates that are
 * the byte counts over the measured times against the ceiling.
 */
class KernelBenchCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Decode batches 1 and 2 and a prefill of 16 tokens, results in {@code dir}. */
    private static Run kernelBench(Path dir, String... extra) {
        return kernelBenchOf(dir, "1,2", "16", extra);
    }

    private static Run kernelBenchOf(Path dir, String batch, String seqLen, String... extra) {
        List<String> args = new java.util.ArrayList<>(List.of("bench", "kernel", "--backend", "cpu", "--threads", "2",
                "--batch", batch, "--seq-len", seqLen, "--iters", "2", "--warmup", "1",
                "--csv", dir.resolve("kernel.csv").toString(), "--json", dir.resolve("kernel.json").toString()));
        args.addAll(List.of(extra));
        return GenerateCommandTest.ember(args.toArray(String[]::new));
    }

    @Test
    void timesEveryCpuKernelWithTheDocumentedColumns(@TempDir Path dir) throws IOException {
        Run r = kernelBench(dir, "--include-embedding");
        assertEquals(0, r.exitCode(), r.err());
        List<String> lines = Files.readAllLines(dir.resolve("kernel.csv"));
        assertEquals("kernel,implementation,phase,shape,rows,elapsed_us,min_us,max_us,bytes_moved,effective_gbps,"
                + "efficiency_pct,tflops,matmul_pct", lines.get(0));
        Set<String> kernels = new TreeSet<>();
        for (String line : lines.subList(1, lines.size())) {
            String[] cells = line.split(",", -1);
            assertEquals(13, cells.length, line);
            kernels.add(cells[0]);
            for (int i = 5; i <= 10; i++) {
                assertTrue(Double.parseDouble(cells[i]) > 0, "column " + i + " of " + line);
            }
            boolean arithmetic = cells[0].startsWith("matmul") || cells[0].equals("lm_head") || cells[0].endsWith("attention");
            assertEquals(arithmetic, !cells[11].isEmpty(), "tflops of " + line);
            assertEquals(arithmetic, !cells[12].isEmpty(), "matmul_pct of " + line);
        }
        assertEquals(new TreeSet<>(List.of("embedding", "rmsnorm", "matmul_q", "matmul_k", "matmul_v", "rope", "decode_attention",
                "prefill_attention", "matmul_o", "residual_add", "matmul_gate", "matmul_up", "silu_mul", "matmul_down", "lm_head")), kernels);
        // Two decode steps of 14 kernels (lm_head only after decode) and a prefill step of 13.
        assertEquals(2 * 14 + 13, lines.size() - 1);
        assertTrue(r.out().contains("# efficiency against"), r.out());
    }

    @Test
    void bytesMovedAreTheHandWorkedFigures(@TempDir Path dir) throws IOException {
        Run r = kernelBench(dir, "--include-embedding");
        assertEquals(0, r.exitCode(), r.err());
        Map<String, Long> bytes = new HashMap<>();
        for (JsonNode row : JSON.readTree(dir.resolve("kernel.json").toFile()).get("results")) {
            bytes.put(row.get("kernel").asText() + " " + row.get("phase").asText() + " " + row.get("rows").asInt(),
                    row.get("bytes_moved").asLong());
        }
        // One row of 256 f32 read and one written, and the f32 weight: 256*4*2 + 256*4.
        assertEquals(3072L, bytes.get("rmsnorm decode 1"));
        // A bf16 256x256 weight, one f32 input row and one f32 output row: 256*256*2 + 256*4 + 256*4.
        assertEquals(133_120L, bytes.get("matmul_q decode 1"));
        // The tied 6144x256 output projection at two rows: 6144*256*2 + 2*256*4 + 2*6144*4.
        assertEquals(3_196_928L, bytes.get("lm_head decode 2"));
        // Two sequences of 16 cached tokens, keys and values of 4 heads of 32 in f32, plus 2 rows of q and out (8 heads of 32):
        // 2*16*128*2*4 + 2*256*2*4.
        assertEquals(36_864L, bytes.get("decode_attention decode 2"));
        // The prefill chunk's 16 tokens of keys and values once, and 16 rows of q and out: 16*128*2*4 + 16*256*2*4.
        assertEquals(49_152L, bytes.get("prefill_attention prefill 16"));
        // Gate and up read, the product written, 768 f32 each: 3*768*4.
        assertEquals(9_216L, bytes.get("silu_mul decode 1"));
        // q and k of one row rotated in place (256 + 128 f32 read and written), a cosine and a sine per pair: 384*8 + 32*4.
        assertEquals(3_200L, bytes.get("rope decode 1"));
        // A bf16 table row read, an f32 row written.
        assertEquals(256L * (2 + 4), bytes.get("embedding decode 1"));
    }

    @Test
    void efficiencyIsTheEffectiveBandwidthOverTheCeiling(@TempDir Path dir) throws IOException {
        Run measured = kernelBench(dir);
        assertEquals(0, measured.exitCode(), measured.err());
        JsonNode root = JSON.readTree(dir.resolve("kernel.json").toFile());
        double ceiling = root.get("header").get("hw_bw_gbps").asDouble();
        assertEquals(root.get("header").get("copy_bandwidth_gbps").asDouble(), ceiling, 0, "default ceiling: the measured copy rate");
        double matmul = root.get("header").get("matmul_tflops").asDouble();
        for (JsonNode row : root.get("results")) {
            double seconds = row.get("elapsed_us").asDouble() / 1e6;
            double gbps = row.get("bytes_moved").asLong() / seconds / 1e9;
            assertEquals(gbps, row.get("effective_gbps").asDouble(), 1e-9 * gbps, row.toString());
            assertEquals(100 * gbps / ceiling, row.get("efficiency_pct").asDouble(), 1e-9 * gbps, row.toString());
            assertTrue(row.get("min_us").asDouble() <= row.get("elapsed_us").asDouble()
                    && row.get("elapsed_us").asDouble() <= row.get("max_us").asDouble(), row.toString());
            if (!row.get("tflops").isNull()) {
                assertEquals(100 * row.get("tflops").asDouble() / matmul, row.get("matmul_pct").asDouble(), 1e-9, row.toString());
            }
        }

        Run given = kernelBenchOf(dir, "1", "16", "--hw-bw", "1000");
        assertEquals(0, given.exitCode(), given.err());
        root = JSON.readTree(dir.resolve("kernel.json").toFile());
        assertEquals(1000.0, root.get("header").get("hw_bw_gbps").asDouble());
        for (JsonNode row : root.get("results")) {
            assertEquals(row.get("effective_gbps").asDouble() / 10, row.get("efficiency_pct").asDouble(), 1e-9, row.toString());
        }
    }

    @Test
    void monitorAndTraceGiveEveryMeasurementItsSpanAndSayEnergyIsPerRun(@TempDir Path dir) throws IOException {
        Path trace = dir.resolve("trace.json");
        Run r = kernelBenchOf(dir, "1", "16", "--monitor", "--trace", trace.toString());
        assertEquals(0, r.exitCode(), r.err());
        List<String> csv = Files.readAllLines(dir.resolve("kernel.csv"));
        assertEquals(String.join(",", KernelBenchCommand.COLUMNS), csv.getFirst());
        Path json = dir.resolve("kernel.json");
        JsonNode rows = BenchFiles.assertResultColumns(json, KernelBenchCommand.COLUMNS);
        assertEquals(csv.size() - 1, rows.size());
        BenchFiles.assertMonitorFiles(json, r, rows.size(), KernelBenchCommand.GPU_COLUMNS);
        JsonNode header = JSON.readTree(json.toFile()).get("header");
        assertTrue(header.get("energy_per").asText().startsWith("kernel run"), header.toString());
        JsonNode summary = JSON.readTree(json.toFile()).get("gpu").get("summary");
        assertTrue(summary == null || !summary.has("output_tokens"), "a kernel benchmark generates no tokens: " + summary);

        List<JsonNode> spans = BenchFiles.spans(trace);
        assertEquals(rows.size(), spans.size(), "one span per measurement");
        for (int i = 0; i < rows.size(); i++) {
            JsonNode row = rows.get(i), span = spans.get(i);
            assertEquals("kernel", span.get("cat").asText());
            assertEquals(row.get("kernel").asText() + " " + row.get("shape").asText() + " ("
                    + row.get("implementation").asText() + ")", span.get("name").asText());
            assertEquals(1 + 2, span.get("args").get("runs").asInt(), "warm-up and timed runs");
            assertTrue(span.get("dur").asDouble() >= 2 * row.get("min_us").asDouble(), "the span holds its timed runs: " + span);
        }
    }

    @Test
    void badOptionsGiveOneClearError(@TempDir Path dir) {
        Run dtype = kernelBench(dir, "--dtype", "f32");
        assertEquals(1, dtype.exitCode());
        assertTrue(dtype.err().contains("bench kernel times bfloat16 or float16 kernels, not --dtype float32"), dtype.err());

        Run tooLong = kernelBenchOf(dir, "1", "4096");
        assertEquals(1, tooLong.exitCode());
        assertTrue(tooLong.err().contains("--seq-len 4096 exceeds the model's context of 2048 tokens"), tooLong.err());

        Run batch = kernelBenchOf(dir, "0", "16");
        assertEquals(1, batch.exitCode());
        assertTrue(batch.err().contains("--batch takes decode batch sizes of at least 1"), batch.err());
        assertFalse(Files.exists(dir.resolve("kernel.csv")), "no file written after an error");
    }
}
