package dev.ember.backend.cpu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The size of the host's last-level data cache, as Linux describes it (sysfs, cpu0's caches), or
 * {@value #ASSUMED_MIB} MiB where it does not say: whether a model's weights can stay cached between steps or
 * stream from memory every step, which decides how the matrix-vector product reads them.
 */
final class LastLevelCache {
    private static final long ASSUMED_MIB = 32;
    static final long BYTES = read(Path.of("/sys/devices/system/cpu/cpu0/cache"));

    private LastLevelCache() {
    }

    /** The largest data or unified cache of the highest level under {@code caches} (sysfs's index0, index1, ...). */
    static long read(Path caches) {
        int bestLevel = 0;
        long bytes = 0;
        for (int i = 0; Files.isDirectory(caches.resolve("index" + i)); i++) {
            Path index = caches.resolve("index" + i);
            try {
                if (Files.readString(index.resolve("type")).strip().equals("Instruction")) {
                    continue;
                }
                int level = Integer.parseInt(Files.readString(index.resolve("level")).strip());
                long size = parseSize(Files.readString(index.resolve("size")).strip());
                if (level > bestLevel || level == bestLevel && size > bytes) {
                    bestLevel = level;
                    bytes = size;
                }
            } catch (IOException | NumberFormatException e) {
                // a cache this kernel describes partly: the others still say enough
            }
        }
        return bytes > 0 ? bytes : ASSUMED_MIB << 20;
    }

    /** sysfs's sizes: "32768K", "2M", "512". */
    static long parseSize(String text) {
        String s = text.toUpperCase(Locale.ROOT);
        long unit = switch (s.isEmpty() ? ' ' : s.charAt(s.length() - 1)) {
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            case 'G' -> 1L << 30;
            default -> 1;
        };
        return Long.parseLong(unit == 1 ? s : s.substring(0, s.length() - 1)) * unit;
    }
}
