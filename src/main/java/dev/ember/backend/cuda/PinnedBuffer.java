package dev.ember.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * Page-locked host memory ({@code cuMemAllocHost}): the only host memory the GPU copies to and from
 * asynchronously, at full bus speed. Ember stages per-step metadata and logits through it.
 */
public final class PinnedBuffer implements AutoCloseable {
    /** What cuMemAllocHost returned, which close frees. */
    private final MemorySegment allocation;
    private final MemorySegment segment;
    private boolean freed;

    private PinnedBuffer(MemorySegment allocation, MemorySegment segment) {
        this.allocation = allocation;
        this.segment = segment;
    }

    public static PinnedBuffer allocate(long bytes) {
        MemorySegment allocation = Driver.memAllocHost(Math.max(bytes, 1));
        return new PinnedBuffer(allocation, allocation);
    }

    /**
     * {@code bytes} starting at a multiple of {@code alignment} (a power of two): what direct I/O reads into. The driver
     * gives small allocations out of a pool at finer alignments than a page.
     */
    public static PinnedBuffer allocateAligned(long bytes, long alignment) {
        MemorySegment allocation = Driver.memAllocHost(Math.max(bytes, 1) + alignment);
        long skip = (alignment - allocation.address() % alignment) % alignment;
        return new PinnedBuffer(allocation, allocation.asSlice(skip, Math.max(bytes, 1)));
    }

    /** The memory, valid until {@link #close()}. */
    public MemorySegment segment() {
        return segment;
    }

    @Override
    public void close() {
        if (!freed) {
            freed = true;
            Driver.memFreeHost(allocation);
        }
    }
}
