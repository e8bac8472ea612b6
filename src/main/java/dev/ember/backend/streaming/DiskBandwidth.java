package dev.ember.backend.streaming;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * The disk's sequential read speed as weight streaming reads it: the start of a model file in staging-sized reads,
 * with direct I/O where the file system allows (else through the page cache, which may hold the file and say more
 * than the disk can).
 *
 * @param bytesPerSecond what was read over the time it took
 * @param direct         whether the reads bypassed the page cache
 */
public record DiskBandwidth(double bytesPerSecond, boolean direct) {
    private static final long READ = 16L << 20;

    /** Reads up to {@code bytes} from the start of {@code file}. */
    public static DiskBandwidth measure(Path file, long bytes) {
        try (DirectFile f = new DirectFile(file, READ); Arena arena = Arena.ofConfined()) {
            long size = file.toFile().length();
            long total = Math.min(bytes, size) / DirectFile.ALIGNMENT * DirectFile.ALIGNMENT;
            MemorySegment buffer = arena.allocate(READ, DirectFile.ALIGNMENT);
            long start = System.nanoTime();
            for (long at = 0; at < total; at += READ) {
                f.read(at, buffer.asSlice(0, Math.min(READ, total - at)));
            }
            return new DiskBandwidth(total / ((System.nanoTime() - start) / 1e9), f.direct());
        }
    }
}
