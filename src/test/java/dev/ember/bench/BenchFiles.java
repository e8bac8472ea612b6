package dev.ember.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.cli.GenerateCommandTest.Run;
import dev.ember.model.ModelConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the bench commands' tests check of the files a run wrote: JSON results, the {@code _gpu} file, the trace. */
final class BenchFiles {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The decoder layers of models/ember-tiny, which the tests run: one span of each per step. */
    static final int DEFAULT_MODEL_LAYERS = ModelConfig.read(Path.of("models", "ember-tiny", "config.json")).numLayers();

    private BenchFiles() {
    }

    /** Every row of {@code json}'s {@code results} has exactly {@code columns}, in order; returns the rows. */
    static JsonNode assertResultColumns(Path json, List<String> columns) throws IOException {
        JsonNode results = JSON.readTree(json.toFile()).get("results");
        assertTrue(results.isArray() && !results.isEmpty(), json + " has results");
        for (JsonNode row : results) {
            assertEquals(columns, fieldNames(row), json + ": " + row);
        }
        return results;
    }

    /**
     * The monitor's files beside {@code json}: the results JSON's {@code gpu} section and the {@code _gpu.json}. Where
     * NVML is missing (the CPU runs of CI) both say why, as the run did on stderr; where the GPU was sampled, there is
     * a summary and {@code windows} per-part rows. Per-part rows have exactly {@code gpuColumns}.
     */
    static void assertMonitorFiles(Path json, Run run, int windows, List<String> gpuColumns) throws IOException {
        JsonNode gpu = JSON.readTree(json.toFile()).get("gpu");
        Path gpuFile = MonitorOptions.gpuFile(json);
        assertTrue(Files.exists(gpuFile), gpuFile + " written");
        JsonNode root = JSON.readTree(gpuFile.toFile());
        JsonNode rows = root.get("results");
        if (gpu.get("available").asBoolean()) {
            assertTrue(gpu.get("summary").get("duration_s").asDouble() > 0, gpu.toString());
            assertTrue(root.get("gpu").get("samples").isArray());
            assertEquals(windows, rows.size(), rows.toString());
        } else {
            assertTrue(gpu.get("reason").asText().startsWith("no NVML: "), gpu.toString());
            assertTrue(run.err().contains("no NVML: "), run.err());
            assertEquals(gpu.get("reason").asText(), root.get("gpu").get("reason").asText());
        }
        for (JsonNode row : rows) {
            assertEquals(gpuColumns, fieldNames(row), row.toString());
        }
    }

    /** The complete events ({@code "ph": "X"}) of a Chrome trace file, which must be valid JSON. */
    static List<JsonNode> spans(Path trace) throws IOException {
        JsonNode events = JSON.readTree(trace.toFile()).get("traceEvents");
        assertTrue(events.isArray(), "traceEvents");
        List<JsonNode> spans = new ArrayList<>();
        for (JsonNode e : events) {
            if (e.get("ph").asText().equals("X")) {
                assertTrue(e.get("dur").asDouble() >= 0, e.toString());
                spans.add(e);
            }
        }
        return spans;
    }

    /** The spans of {@code category} named {@code name}. */
    static List<JsonNode> spans(List<JsonNode> spans, String category, String name) {
        return spans.stream().filter(e -> e.get("cat").asText().equals(category) && e.get("name").asText().equals(name)).toList();
    }

    private static List<String> fieldNames(JsonNode row) {
        List<String> names = new ArrayList<>();
        for (Iterator<String> it = row.fieldNames(); it.hasNext(); ) {
            names.add(it.next());
        }
        return names;
    }
}
