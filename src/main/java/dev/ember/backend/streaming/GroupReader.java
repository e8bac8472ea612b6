package dev.ember.backend.streaming;

import java.lang.foreign.MemorySegment;

/**
 * Where the bytes of groups that are not in the host cache come from: the mapped safetensors files (the page cache,
 * {@link MappedGroupReader}) or the disk itself ({@link DirectGroupReader}).
 */
public sealed interface GroupReader extends AutoCloseable permits MappedGroupReader, DirectGroupReader {
    /** Fills {@code out} with bytes {@code [from, from + out.byteSize())} of {@code group}'s layout. */
    void read(WeightGroup group, long from, MemorySegment out);

    /** One line on how it reads, for logs. */
    String describe();

    @Override
    default void close() {
    }
}
