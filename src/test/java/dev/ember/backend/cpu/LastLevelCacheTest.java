package dev.ember.backend.cpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

class LastLevelCacheTest {
    @TempDir
    Path caches;

    private void index(int i, String type, int level, String size) throws IOException {
        Path dir = Files.createDirectories(caches.resolve("index" + i));
        Files.writeString(dir.resolve("type"), type + "\n");
        Files.writeString(dir.resolve("level"), level + "\n");
        Files.writeString(dir.resolve("size"), size + "\n");
    }

    /** The highest level's data or unified cache, as sysfs lists an EPYC's: L1d, L1i, L2, L3. */
    @Test
    void takesTheHighestLevelsCache() throws IOException {
        index(0, "Data", 1, "32K");
        index(1, "Instruction", 1, "32K");
        index(2, "Unified", 2, "1024K");
        index(3, "Unified", 3, "32768K");
        assertEquals(32L << 20, LastLevelCache.read(caches));
    }

    /** A host whose caches sysfs does not describe is taken to have a server's last level, 32 MiB. */
    @Test
    void assumesThirtyTwoMebibytesWhereSysfsSaysNothing() throws IOException {
        assertEquals(32L << 20, LastLevelCache.read(caches.resolve("absent")));
        index(0, "Instruction", 1, "64K");
        assertEquals(32L << 20, LastLevelCache.read(caches), "an instruction cache is not where weights stay");
    }

    @Test
    void readsSysfsSizes() {
        assertEquals(512, LastLevelCache.parseSize("512"));
        assertEquals(48L << 10, LastLevelCache.parseSize("48K"));
        assertEquals(2L << 20, LastLevelCache.parseSize("2M"));
    }
}
