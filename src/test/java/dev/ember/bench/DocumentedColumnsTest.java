package dev.ember.bench;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/benchmarks.md writes out each benchmark's CSV header on a line of its own; every such line must be the header a
 * command writes, so that a column added to a command cannot leave its documentation behind.
 */
class DocumentedColumnsTest {
    private static final Pattern HEADER_LINE = Pattern.compile("^`([a-z0-9_]+(?:,[a-z0-9_]+){3,})`$", Pattern.MULTILINE);

    private static final Map<String, List<String>> COMMANDS = Map.of(
            "e2e", E2eBenchCommand.COLUMNS, "kernel", KernelBenchCommand.COLUMNS, "latency", LatencyBenchCommand.COLUMNS,
            "stage", StageBenchCommand.COLUMNS, "phase", PhaseBenchCommand.COLUMNS, "host", HostBenchCommand.COLUMNS,
            "spec", SpecBenchCommand.COLUMNS, "offline", OfflineBenchCommand.COLUMNS, "serve", ServeBenchCommand.COLUMNS,
            "p2p", P2pBenchCommand.COLUMNS);

    @Test
    void everyDocumentedHeaderIsOneACommandWrites() throws IOException {
        String docs = Files.readString(Path.of("docs/benchmarks.md"));
        Matcher m = HEADER_LINE.matcher(docs);
        int found = 0;
        while (m.find()) {
            String header = m.group(1);
            found++;
            assertTrue(COMMANDS.values().stream().anyMatch(columns -> String.join(",", columns).equals(header)),
                    "docs/benchmarks.md documents a header no command writes: " + header);
        }
        assertFalse(found == 0, "no CSV header found in docs/benchmarks.md");
    }
}
