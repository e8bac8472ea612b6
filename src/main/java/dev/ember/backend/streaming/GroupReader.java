package dev.ember.backend.streaming;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Where the bytes of groups that are not in the host cache come from: the mapped safetensors files (the page cache,
 * {@link MappedGroupReader}) or the disk itself ({@link DirectGroupReader}).
 */
public sealed interface GroupReader extends AutoCloseable permits MappedGroupReader, DirectGroupReader {
    /**
     * Bytes a staging buffer needs past the range it stages, for {@link #stage}'s alignment of each piece (a range
     * holds at most a group's dozen tensors, each read from a block boundary).
     */
    long STAGING_SLACK = 64 * 4096;

    /** Where staged bytes lie: {@code length} bytes at {@code bufferOffset} of the staging buffer are the group's at {@code groupOffset}. */
    record Placement(long bufferOffset, long groupOffset, long length) {
    }

    /** Fills {@code out} with bytes {@code [from, from + out.byteSize())} of {@code group}'s layout. */
    void read(WeightGroup group, long from, MemorySegment out);

    /**
     * Puts bytes {@code [from, from + length)} of {@code group}'s layout into {@code buffer} (of {@code length} plus
     * {@link #STAGING_SLACK} bytes, page-aligned) and says where each piece landed: for copies out of the buffer
     * piece by piece. A reader may place pieces apart so that each is read straight into the buffer (direct I/O reads
     * whole blocks); by default the range lies whole at the buffer's start.
     */
    default List<Placement> stage(WeightGroup group, long from, long length, MemorySegment buffer) {
        read(group, from, buffer.asSlice(0, length));
        return List.of(new Placement(0, from, length));
    }

    /** One line on how it reads, for logs. */
    String describe();

    @Override
    default void close() {
    }
}
