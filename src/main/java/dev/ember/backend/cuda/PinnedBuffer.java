package dev.ember.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * Page-locked host memory ({@code cuMemAllocHost}): the only host memory the GPU copies to and from
 * asynchronously, at full bus speed. Ember stages per-step metadata and logits through it.
 */
public final class PinnedBuffer implements AutoCloseable {
    private final MemorySegment segment;
    private boolean freed;

    private PinnedBuffer(MemorySegment segment) {
        this.segment = segment;
    }

    public static PinnedBuffer allocate(long bytes) {
        return new PinnedBuffer(Driver.memAllocHost(Math.max(bytes, 1)));
    }

    /** The memory, valid until {@link #close()}. */
    public MemorySegment segment() {
        return segment;
    }

    @Override
    public void close() {
        if (!freed) {
            freed = true;
            Driver.memFreeHost(segment);
        }
    }
}
