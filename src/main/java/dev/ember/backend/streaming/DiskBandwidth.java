package dev.ember.backend.streaming;

import dev.ember.EmberException;
import dev.ember.model.ModelLoader;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.BiConsumer;

/**
 * The disk's sequential read speed as weight streaming reads it: spans at evenly spaced offsets over all of a model's
 * weight files (taken as one run of bytes, each file to its last whole {@link DirectFile#ALIGNMENT}-byte block), each
 * read in staging-sized reads, with direct I/O where the file system allows (else through the page cache, which may
 * hold the files and say more than the disk can). A virtual disk's speed varies from minute to minute; the spans, read
 * one after the other over the whole model, say by how much it varied while they were read.
 *
 * @param bytesPerSecond every span's bytes over the time the spans took together
 * @param direct         whether every read bypassed the page cache
 * @param spans          the spans read, in order
 */
public record DiskBandwidth(double bytesPerSecond, boolean direct, List<Span> spans) {
    /** Spans read when the model is large enough: 2 GiB in all, from 8 places. */
    public static final int SPANS = 8;
    public static final long SPAN_BYTES = 256L << 20;

    /**
     * One span read.
     *
     * @param offset where it starts in the model's files taken one after the other (each to its last whole block)
     * @param bytes  bytes read
     * @param nanos  how long they took
     */
    public record Span(long offset, long bytes, long nanos) {
        public double bytesPerSecond() {
            return bytes / (nanos / 1e9);
        }
    }

    public DiskBandwidth {
        spans = List.copyOf(spans);
        if (spans.isEmpty()) {
            throw new IllegalArgumentException("a disk measurement needs at least one span");
        }
    }

    /** Bytes read in all. */
    public long bytes() {
        return spans.stream().mapToLong(Span::bytes).sum();
    }

    /** The slowest span's rate, bytes per second. */
    public double slowestSpan() {
        return spans.stream().mapToDouble(Span::bytesPerSecond).min().orElseThrow();
    }

    /** The fastest span's rate, bytes per second. */
    public double fastestSpan() {
        return spans.stream().mapToDouble(Span::bytesPerSecond).max().orElseThrow();
    }

    /** One line: the rate, the spans, their slowest and fastest rates, and whether the reads were direct. */
    public String describe() {
        return String.format(Locale.ROOT, "%.2f GB/s (%d spans of %.3g MiB over the weight files, slowest %.2f, fastest %.2f GB/s; %s)",
                bytesPerSecond / 1e9, spans.size(), spans.getFirst().bytes() / (double) (1 << 20), slowestSpan() / 1e9,
                fastestSpan() / 1e9, direct ? "direct I/O" : "through the page cache: may be the cache's speed");
    }

    /**
     * Reads {@link #SPANS} spans of {@link #SPAN_BYTES} from the weight files of the model in {@code modelDirectory}
     * ({@link ModelLoader#tensorFiles}), fewer and smaller ones where the model is smaller, in reads of
     * {@code readBytes} (the staging buffers' size).
     */
    public static DiskBandwidth measure(Path modelDirectory, long readBytes) {
        return measure(ModelLoader.tensorFiles(modelDirectory), SPANS, SPAN_BYTES, readBytes, (offset, bytes) -> { });
    }

    /**
     * Reads {@code spans} spans of {@code spanBytes} (both cut so that the spans never overlap, so never more than the
     * files hold) at evenly spaced block-aligned offsets over {@code files} taken one after the other, the first at
     * the start and the last ending at the end, in block-aligned reads of up to {@code readBytes}, none crossing from
     * one file into the next; {@code seen} gets each read's offset (as the spans' are counted) and bytes.
     */
    static DiskBandwidth measure(List<Path> files, int spans, long spanBytes, long readBytes,
                                 BiConsumer<Long, MemorySegment> seen) {
        long[] ends = new long[files.size()];
        long total = 0;
        for (int i = 0; i < files.size(); i++) {
            total += DirectFile.alignDown(files.get(i).toFile().length());
            ends[i] = total;
        }
        int count = (int) Math.min(spans, total / DirectFile.ALIGNMENT);
        if (count < 1) {
            throw new EmberException("the weight files " + files + " hold less than one " + DirectFile.ALIGNMENT
                    + "-byte block to read");
        }
        long span = Math.max(DirectFile.ALIGNMENT, DirectFile.alignDown(Math.min(spanBytes, total / count)));
        long read = Math.max(DirectFile.ALIGNMENT, DirectFile.alignDown(readBytes));
        List<DirectFile> opened = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            for (Path file : files) {
                opened.add(new DirectFile(file, 0));  // reads go straight into the buffer below, not through the file's own
            }
            MemorySegment buffer = arena.allocate(read, DirectFile.ALIGNMENT);
            List<Span> done = new ArrayList<>();
            long nanos = 0;
            for (int s = 0; s < count; s++) {
                long offset = count == 1 ? 0 : DirectFile.alignDown(s * (total - span) / (count - 1));
                int file = 0;
                long start = System.nanoTime();
                for (long at = offset; at < offset + span; ) {
                    while (ends[file] <= at) {
                        file++;
                    }
                    long fileStart = file == 0 ? 0 : ends[file - 1];
                    long length = Math.min(read, Math.min(offset + span, ends[file]) - at);
                    long placed = opened.get(file).readInto(at - fileStart, length, buffer, 0);
                    seen.accept(at, buffer.asSlice(placed, length));
                    at += length;
                }
                long took = System.nanoTime() - start;
                nanos += took;
                done.add(new Span(offset, span, took));
            }
            return new DiskBandwidth(count * span / (nanos / 1e9), opened.stream().allMatch(DirectFile::direct), done);
        } finally {
            opened.forEach(DirectFile::close);
        }
    }
}
