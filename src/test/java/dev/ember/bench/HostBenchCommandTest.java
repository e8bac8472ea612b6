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
import static org.junit.jupiter.api.Assertions.assertTrue;

/** bench host writes a row per batch size and overlap setting, with measured times and, under pressure, preemptions. */
class HostBenchCommandTest {

    @Test
    void rowsPerBatchAndOverlapWithMeasuredTimes(@TempDir Path dir) throws IOException {
        Path csv = dir.resolve("host.csv"), json = dir.resolve("host.json");
        Run r = GenerateCommandTest.ember("bench", "host", "--batch", "4,16", "--prompt-len", "40", "--steps", "60",
                "--kv-tokens-per-sequence", "64", "--iters", "2", "--warmup", "1", "--csv", csv.toString(), "--json", json.toString());
        assertEquals(0, r.exitCode(), r.err());
        List<String> lines = Files.readAllLines(csv);
        assertEquals(String.join(",", HostBenchCommand.COLUMNS), lines.getFirst());
        assertEquals(1 + 2 * 2, lines.size(), String.join("\n", lines));
        BenchFiles.assertResultColumns(json, HostBenchCommand.COLUMNS);
        for (String line : lines.subList(1, lines.size())) {
            String[] cells = line.split(",", -1);
            double median = Double.parseDouble(cells[HostBenchCommand.COLUMNS.indexOf("host_us_per_step")]);
            double min = Double.parseDouble(cells[HostBenchCommand.COLUMNS.indexOf("min_us")]);
            double max = Double.parseDouble(cells[HostBenchCommand.COLUMNS.indexOf("max_us")]);
            assertTrue(min > 0 && min <= median && median <= max, line);
            // 40 prompt tokens and 60 steps in 64 slots per sequence: the cache runs short and the engine preempts.
            assertTrue(Long.parseLong(cells[HostBenchCommand.COLUMNS.indexOf("preemptions")]) > 0, line);
        }
        assertTrue(r.out().contains("host_us_per_step"), r.out());
    }

    @Test
    void badOptionsGiveOneClearError() {
        Run r = GenerateCommandTest.ember("bench", "host", "--prompt-len", "64", "--kv-tokens-per-sequence", "32");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("--kv-tokens-per-sequence must exceed --prompt-len"), r.err());
    }
}
