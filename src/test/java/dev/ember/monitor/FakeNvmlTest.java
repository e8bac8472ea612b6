package dev.ember.monitor;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.StandIns;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The NVML bindings end to end without a GPU: a stand-in libnvidia-ml (src/test/resources/fake-nvml, built here with
 * gcc) that draws a constant 250 W, found through EMBER_CUDA_LIB_DIR by an {@code ember bench latency --monitor} in a
 * child JVM. Every figure must come through the bindings, and energy must agree with power times time.
 */
class FakeNvmlTest {

    @Test
    void monitorReadsEveryFigureThroughTheBindings(@TempDir Path dir) throws IOException, InterruptedException {
        StandIns.compile("src/test/resources/fake-nvml/fake_nvml.c", dir.resolve("libnvidia-ml.so.1"));
        String log = StandIns.ember(dir, Map.of("EMBER_CUDA_LIB_DIR", dir.toString()),
                "bench", "latency", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--prompt-lens", "16", "--max-new-tokens", "8", "--iters", "3", "--warmup", "1",
                "--out-dir", dir.toString(), "--out-name", "fake", "--monitor", "--monitor-interval", "0.01");

        JsonNode gpu = new ObjectMapper().readTree(dir.resolve("fake_gpu.json").toFile()).get("gpu");
        assertTrue(gpu.get("available").asBoolean(), gpu.toString());
        assertEquals("Fake GPU", gpu.get("device").asText());
        assertEquals("580.00 (fake)", gpu.get("driver_version").asText());
        JsonNode s = gpu.get("summary");
        assertEquals(250.0, s.get("power_mean_w").asDouble());
        assertEquals(87.0, s.get("gpu_util_mean_pct").asDouble());
        assertEquals(42.0, s.get("mem_util_mean_pct").asDouble());
        assertEquals(20L << 30, s.get("mem_used_peak_bytes").asLong());
        assertEquals(25.0, s.get("mem_used_mean_pct").asDouble(), 1e-9);
        assertEquals(61.0, s.get("temperature_peak_c").asDouble());
        assertEquals("nvml_energy_counter", s.get("energy_source").asText());
        // The counter grows at 250 W: energy is power times the window, to the counter's millijoule and the clocks' skew.
        double expected = 250.0 * s.get("duration_s").asDouble();
        assertEquals(expected, s.get("energy_j").asDouble(), 0.01 * expected + 0.01);
        assertEquals(s.get("energy_j").asDouble() / s.get("output_tokens").asLong(),
                s.get("energy_per_output_token_j").asDouble(), 1e-9);
        assertTrue(gpu.get("samples").size() >= 2);
        JsonNode row = new ObjectMapper().readTree(dir.resolve("fake_gpu.json").toFile()).get("results").get(0);
        assertEquals(16, row.get("prompt_len").asInt());
        assertEquals(24, row.get("output_tokens").asInt());
        assertTrue(row.get("energy_per_output_token_j").asDouble() > 0);
        assertTrue(log.contains("GPU monitor (Fake GPU"), log);
    }

    /**
     * {@code bench stage} and {@code bench kernel} with the monitor on the stand-in: stage reports energy per decoded
     * token over its timed runs; kernel reports energy per run, and no tokens at all.
     */
    @Test
    void stageGivesEnergyPerDecodedTokenAndKernelPerRun(@TempDir Path dir) throws IOException, InterruptedException {
        StandIns.compile("src/test/resources/fake-nvml/fake_nvml.c", dir.resolve("libnvidia-ml.so.1"));
        Map<String, String> fake = Map.of("EMBER_CUDA_LIB_DIR", dir.toString());
        Path stage = dir.resolve("stage.json");
        StandIns.ember(dir, fake, "bench", "stage", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--prompt-len", "32", "--decode-steps", "32", "--chunk-len", "32", "--iters", "2", "--warmup", "1",
                "--monitor", "--monitor-interval", "0.01", "--json", stage.toString());
        ObjectMapper json = new ObjectMapper();
        JsonNode summary = json.readTree(stage.toFile()).get("gpu").get("summary");
        assertEquals(3 * 32, summary.get("output_tokens").asLong(), "every run's decode steps, warm-up too");
        JsonNode window = json.readTree(dir.resolve("stage_gpu.json").toFile()).get("results").get(0);
        assertEquals(2 * 32, window.get("output_tokens").asLong(), "the timed runs' decode steps");
        assertEquals(window.get("energy_j").asDouble() / 64, window.get("energy_per_output_token_j").asDouble(), 1e-12);
        assertEquals(250.0, window.get("power_mean_w").asDouble());

        Path kernel = dir.resolve("kernel.json");
        StandIns.ember(dir, fake, "bench", "kernel", "--backend", "cpu", "--threads", "2", "--batch", "1", "--seq-len", "16",
                "--iters", "2", "--warmup", "1", "--monitor", "--monitor-interval", "0.01", "--json", kernel.toString());
        JsonNode root = json.readTree(kernel.toFile());
        assertFalse(root.get("gpu").get("summary").has("output_tokens"), "a kernel benchmark generates no tokens");
        assertTrue(root.get("header").get("energy_per").asText().startsWith("kernel run"));
        JsonNode rows = json.readTree(dir.resolve("kernel_gpu.json").toFile()).get("results");
        assertEquals(root.get("results").size(), rows.size(), "a window per measurement");
        for (JsonNode row : rows) {
            assertEquals(3, row.get("runs").asInt());
            // Milliseconds long: below the energy counter's resolution, so no energy is claimed.
            assertTrue(row.get("duration_s").asDouble() < 1 && row.get("energy_per_run_j").isNull(), row.toString());
        }
    }
}
