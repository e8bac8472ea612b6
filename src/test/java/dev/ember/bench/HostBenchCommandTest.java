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

/**
 * bench host writes a row per batch size and overlap setting, with measured times and, under pressure, preemptions; with
 * speculation, a row per speculative round.
 */
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

    /** A speculative round's host time: the draft (computing nothing) drafts what the target accepts, gamma + 1 tokens a round. */
    @Test
    void aSpeculativeRoundIsAStep(@TempDir Path dir) throws IOException {
        for (String source : List.of("draft", "ngram")) {
            Path csv = dir.resolve(source + ".csv");
            Run r = GenerateCommandTest.ember("bench", "host", "--batch", "1,3", "--prompt-len", "24", "--steps", "50",
                    "--speculative", source, "--gamma", "3", "--iters", "1", "--warmup", "1", "--csv", csv.toString());
            assertEquals(0, r.exitCode(), r.err());
            List<String> lines = Files.readAllLines(csv);
            assertEquals(1 + 2 * 2, lines.size(), String.join("\n", lines));
            for (String line : lines.subList(1, lines.size())) {
                String[] cells = line.split(",", -1);
                assertEquals(source, cells[HostBenchCommand.COLUMNS.indexOf("speculative")], line);
                assertEquals("3", cells[HostBenchCommand.COLUMNS.indexOf("gamma")], line);
                double tokens = Double.parseDouble(cells[HostBenchCommand.COLUMNS.indexOf("tokens_per_step")]);
                // The draft's every draft accepted (the step in flight as timing starts may add a token); n-gram lookup
                // drafts what followed the last match, which in an output of one repeated token is what is left after it.
                assertTrue(source.equals("draft") ? tokens > 3.9 && tokens < 4.1 : tokens > 1.5 && tokens < 4.1, line);
                assertTrue(Double.parseDouble(cells[HostBenchCommand.COLUMNS.indexOf("host_us_per_step")]) > 0, line);
            }
        }
        Run bad = GenerateCommandTest.ember("bench", "host", "--speculative", "eagle");
        assertEquals(1, bad.exitCode());
        assertTrue(bad.err().contains("--speculative eagle is not one of none, draft, ngram"), bad.err());
    }

    @Test
    void badOptionsGiveOneClearError() {
        Run r = GenerateCommandTest.ember("bench", "host", "--prompt-len", "64", "--kv-tokens-per-sequence", "32");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("--kv-tokens-per-sequence must exceed --prompt-len"), r.err());
        // A batch whose cache would pass 2^31 tokens: named, not an ArithmeticException's stack trace.
        GenerateCommandTest.assertOneLineError(GenerateCommandTest.ember("bench", "host", "--batch", "100000000",
                "--iters", "1", "--warmup", "0", "--steps", "2"), "--batch 100000000");
    }
}
