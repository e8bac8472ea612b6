package dev.ember.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * An ordered queue of device work. Non-blocking: it does not wait on the legacy default stream, which
 * would otherwise serialise it with anything else using the GPU through the runtime's default stream.
 */
public final class CudaStream implements AutoCloseable {
    private final MemorySegment handle;
    private boolean closed;

    private CudaStream(MemorySegment handle) {
        this.handle = handle;
    }

    public static CudaStream create() {
        return new CudaStream(Driver.streamCreate(Driver.CU_STREAM_NON_BLOCKING));
    }

    MemorySegment handle() {
        return handle;
    }

    /**
     * Makes the work queued on this stream from now on wait, on the device and without blocking the host, until the
     * work before {@code event}'s last recording (on any stream) has finished.
     */
    public void waitFor(CudaEvent event) {
        Driver.streamWaitEvent(handle, event.handle());
    }

    /** Blocks until everything queued so far has finished; device faults surface here. */
    public void synchronize() {
        Driver.streamSynchronize(handle);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Driver.streamDestroy(handle);
        }
    }
}
