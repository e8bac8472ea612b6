package dev.ember.backend.cuda;

import java.lang.foreign.MemorySegment;

/** A marker in a stream: for timing device work and for waiting on part of a stream. */
public final class CudaEvent implements AutoCloseable {
    private final MemorySegment handle;
    private boolean closed;

    private CudaEvent(MemorySegment handle) {
        this.handle = handle;
    }

    public static CudaEvent create() {
        return new CudaEvent(Driver.eventCreate(0));
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
