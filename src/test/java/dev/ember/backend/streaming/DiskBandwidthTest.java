package dev.ember.backend.streaming;

import dev.ember.model.ModelLoader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The disk probe on a model of three shards of random bytes, none a whole number of blocks long: its spans lie evenly
 * over all of the shards taken one after the other, its reads are block-aligned, of at most the read size, within one
 * shard each, and give the shards' bytes; it never reads more than the model holds.
 */
class DiskBandwidthTest {
    private static final long A = DirectFile.ALIGNMENT;
    /** Shard sizes: each a few blocks and a ragged tail that the probe leaves out. */
    private static final int[] SIZES = {(int) (21 * A + 1234), (int) (5 * A + 17), (int) (40 * A + 4095)};

    /** Writes the shards and an index listing them (and a stray safetensors file the index does not list). */
    private static Path model(Path dir) throws IOException {
        SplittableRandom random = new SplittableRandom(7);
        StringBuilder map = new StringBuilder();
        for (int i = 0; i < SIZES.length; i++) {
            byte[] bytes = new byte[SIZES[i]];
            random.nextBytes(bytes);
            String name = "model-0000" + (i + 1) + "-of-0000" + SIZES.length + ".safetensors";
            Files.write(dir.resolve(name), bytes);
            map.append(i == 0 ? "" : ", ").append("\"t").append(i).append("\": \"").append(name).append('"');
        }
        Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\": {" + map + "}}");
        Files.write(dir.resolve("stray.safetensors"), new byte[(int) (64 * A)]);
        return dir;
    }

    /** The shards' whole blocks, one after the other: the bytes the probe's offsets count. */
    private static byte[] concatenated(List<Path> files) throws IOException {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        for (Path f : files) {
            byte[] bytes = Files.readAllBytes(f);
            all.write(bytes, 0, (int) (bytes.length / A * A));
        }
        return all.toByteArray();
    }

    @Test
    void spansLieEvenlyOverEveryShardAndReadTheirBytes(@TempDir Path dir) throws IOException {
        List<Path> files = ModelLoader.tensorFiles(model(dir));
        byte[] expected = concatenated(files);
        assertEquals(66 * A, expected.length, "the shards' whole blocks");
        long[] shardEnds = {21 * A, 26 * A, 66 * A};
        long spanBytes = 8 * A, readBytes = 3 * A;  // a span is two whole reads and a short one
        List<long[]> reads = new ArrayList<>();
        DiskBandwidth disk = DiskBandwidth.measure(files, 5, spanBytes, readBytes, (offset, bytes) -> {
            reads.add(new long[] {offset, bytes.byteSize()});
            assertArrayEquals(Arrays.copyOfRange(expected, Math.toIntExact(offset), Math.toIntExact(offset + bytes.byteSize())),
                    bytes.toArray(ValueLayout.JAVA_BYTE), "the bytes read at " + offset);
        });

        List<DiskBandwidth.Span> spans = disk.spans();
        assertEquals(5, spans.size());
        assertEquals(0, spans.getFirst().offset(), "the first span starts at the first shard's start");
        assertEquals(expected.length, spans.getLast().offset() + spans.getLast().bytes(), "the last ends at the last shard's end");
        double spacing = (expected.length - spanBytes) / 4.0;
        for (int i = 0; i < spans.size(); i++) {
            DiskBandwidth.Span s = spans.get(i);
            assertEquals(spanBytes, s.bytes());
            assertEquals(0, s.offset() % A, "span " + i + " starts on a block");
            assertTrue(Math.abs(s.offset() - i * spacing) < A, "span " + i + " at " + s.offset() + ", evenly spaced");
            assertTrue(s.nanos() > 0);
        }
        assertEquals(5 * spanBytes, disk.bytes());

        long covered = 0;
        int span = 0;
        for (long[] r : reads) {
            long offset = r[0], length = r[1];
            assertTrue(offset % A == 0 && length % A == 0 && length > 0 && length <= readBytes, "read " + Arrays.toString(r));
            for (long end : shardEnds) {
                assertTrue(offset >= end || offset + length <= end, "read " + Arrays.toString(r) + " crosses a shard's end");
            }
            if (covered == spanBytes) {
                span++;
                covered = 0;
            }
            assertEquals(spans.get(span).offset() + covered, offset, "reads follow one another through each span");
            covered += length;
        }
        assertEquals(spans.size() - 1, span);
        assertEquals(spanBytes, covered);
        assertTrue(reads.size() > 5 * 3, "a span crossing a shard's end is read in more reads: " + reads.size());

        assertTrue(disk.slowestSpan() <= disk.bytesPerSecond() && disk.bytesPerSecond() <= disk.fastestSpan(),
                "the aggregate lies between the slowest and the fastest span");
        assertTrue(disk.describe().startsWith(String.format(Locale.ROOT, "%.2f GB/s (5 spans of 0.0313 MiB over the weight files, "
                + "slowest %.2f, fastest %.2f GB/s; ", disk.bytesPerSecond() / 1e9, disk.slowestSpan() / 1e9,
                disk.fastestSpan() / 1e9)), disk.describe());
    }

    @Test
    void aSmallModelIsReadAtMostOnceInFewerSmallerSpans(@TempDir Path dir) throws IOException {
        long whole = 66 * A;
        DiskBandwidth disk = DiskBandwidth.measure(model(dir), 16L << 20);  // 8 spans of 256 MiB asked for
        assertEquals(DiskBandwidth.SPANS, disk.spans().size());
        long spanBytes = whole / DiskBandwidth.SPANS / A * A;
        long end = 0;
        for (DiskBandwidth.Span s : disk.spans()) {
            assertEquals(spanBytes, s.bytes(), "each span an eighth of the model, to the block");
            assertTrue(s.offset() >= end, "spans do not overlap");
            end = s.offset() + s.bytes();
        }
        assertEquals(whole, end, "the last span ends at the end of the listed shards (the stray file is not read)");
        assertTrue(disk.bytes() <= whole);

        Path tiny = Files.createDirectory(dir.resolve("tiny"));
        Files.write(tiny.resolve("model.safetensors"), new byte[(int) (3 * A + 100)]);
        DiskBandwidth three = DiskBandwidth.measure(tiny, 16L << 20);
        assertEquals(List.of(0L, A, 2 * A), three.spans().stream().map(DiskBandwidth.Span::offset).toList(),
                "a model of three blocks: three spans of one block");
        assertEquals(3 * A, three.bytes());
    }
}
