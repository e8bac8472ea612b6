package dev.ember.backend.cuda;

import java.lang.foreign.MemorySegment;

/** A marker in a stream: for timing device work and for waiting on part of a stream. */
public final class CudaEvent implements AutoCloseable {
    private final MemorySegment handle;
    private boolean closed;

    private CudaEvent(MemorySegment handle) {
        this.handle = handle;
    }

    /** CU_EVENT_DISABLE_TIMING: an event only waited on records faster, and cannot be timed. */
    private static final int DISABLE_TIMING = 0x2;

    public static CudaEvent create() {
        return new CudaEvent(Driver.eventCreate(0));
    }

    /** An event for ordering work between streams (or the host) only: cheaper to record, not for timing. */
    public static CudaEvent forOrdering() {
        return new CudaEvent(Driver.eventCreate(DISABLE_TIMING));
    }

    MemorySegment handle() {
        return handle;
    }

    public void record(CudaStream stream) {
        Driver.eventRecord(handle, stream.handle());
    }

    public void synchronize() {
        Driver.eventSynchronize(handle);
    }

    /** Device time from {@code start} to this event, in milliseconds; both must have completed. */
    public float elapsedMillisSince(CudaEvent start) {
        return Driver.eventElapsedMillis(start.handle, handle);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Driver.eventDestroy(handle);
        }
    }
}
