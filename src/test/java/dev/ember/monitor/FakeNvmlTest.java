package dev.ember.monitor;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The NVML bindings end to end without a GPU: a stand-in libnvidia-ml (src/test/resources/fake-nvml, built here with
 * gcc) that draws a constant 250 W, found through EMBER_CUDA_LIB_DIR by an {@code ember bench latency --monitor} in a
 * child JVM. Every figure must come through the bindings, and energy must agree with power times time.
 */
class FakeNvmlTest {

    @Test
    void monitorReadsEveryFigureThroughTheBindings(@TempDir Path dir) throws IOException, InterruptedException {
        Path library = dir.resolve("libnvidia-ml.so.1");
        Process gcc;
        try {
            gcc = new ProcessBuilder("gcc", "-shared", "-fPIC", "-o", library.toString(),
                    "src/test/resources/fake-nvml/fake_nvml.c").inheritIO().start();
        } catch (IOException e) {
            assumeTrue(false, "no gcc to build the stand-in NVML: " + e.getMessage());
            return;
        }
        assertEquals(0, gcc.waitFor(), "gcc");

        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), "dev.ember.cli.EmberCli",
                "bench", "latency", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--prompt-lens", "16", "--max-new-tokens", "8", "--iters", "3", "--warmup", "1",
                "--out-dir", dir.toString(), "--out-name", "fake", "--monitor", "--monitor-interval", "0.01"));
        ProcessBuilder child = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(dir.resolve("log.txt").toFile());
        child.environment().put("EMBER_CUDA_LIB_DIR", dir.toString());
        Process run = child.start();
        assertTrue(run.waitFor(120, TimeUnit.SECONDS), "the child JVM finished");
        String log = Files.readString(dir.resolve("log.txt"));
        assertEquals(0, run.exitValue(), log);

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
}
