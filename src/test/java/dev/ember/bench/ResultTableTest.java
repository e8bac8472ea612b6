package dev.ember.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class ResultTableTest {
    @Test
    void csvKeepsTheColumnsAndLeavesUnmeasuredCellsEmpty(@TempDir Path dir) throws IOException {
        ResultTable t = ResultTable.of("mode", "ttft_ms", "note", "gpu_only")
                .add("single", 12.3456, "a, b", null)
                .add("batch", 3.0, "plain", Double.NaN);
        t.writeCsv(dir.resolve("r.csv"));
        assertEquals("mode,ttft_ms,note,gpu_only\nsingle,12.346,\"a, b\",\nbatch,3,plain,\n", Files.readString(dir.resolve("r.csv")));
        t.writeJson(dir.resolve("r.json"), Map.of("gpu", "none"));
        JsonNode json = new ObjectMapper().readTree(dir.resolve("r.json").toFile());
        assertEquals("none", json.get("header").get("gpu").asText());
        assertTrue(json.get("results").get(1).get("gpu_only").isNull());
        assertEquals(12.3456, json.get("results").get(0).get("ttft_ms").asDouble());
    }

    @Test
    void aRowMustFillEveryColumn() {
        assertThrows(IllegalArgumentException.class, () -> ResultTable.of("a", "b").add(1));
    }
}
