package dev.ember.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * A recorded sequence of stream work, replayed with one launch. Replaying a decode step this way removes
 * the per-kernel launch cost (a few microseconds each, hundreds per step) from the critical path. The
 * replay uses the same device addresses and launch shapes as the capture, so the captured work must read
 * everything that varies between steps from device memory.
 */
public final class CudaGraph implements AutoCloseable {
    private final MemorySegment graph;
    private final MemorySegment exec;
    private boolean destroyed;

    private CudaGraph(MemorySegment graph, MemorySegment exec) {
        this.graph = graph;
        this.exec = exec;
    }

    /**
     * Records what {@code work} queues on {@code stream} (nothing runs), instantiates it and queues its upload to the
     * device on {@code stream}: otherwise the first launch uploads it, inside the first step that replays it (and the
     * graphs captured at warm-up are first launched by timed or served steps).
     */
    public static CudaGraph capture(CudaStream stream, Runnable work) {
        Driver.streamBeginCapture(stream.handle());
        MemorySegment graph;
        try {
            work.run();
        } catch (RuntimeException | Error e) {
            try {
                Driver.graphDestroy(Driver.streamEndCapture(stream.handle()));
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
        graph = Driver.streamEndCapture(stream.handle());
        MemorySegment exec;
        try {
            exec = Driver.graphInstantiate(graph);
        } catch (RuntimeException e) {
            Driver.graphDestroy(graph);
            throw e;
        }
        CudaGraph captured = new CudaGraph(graph, exec);
        try {
            Driver.graphUpload(exec, stream.handle());
        } catch (RuntimeException e) {
            captured.close();
            throw e;
        }
        return captured;
    }

    /** Queues one replay on {@code stream}. */
    public void launch(CudaStream stream) {
        Driver.graphLaunch(exec, stream.handle());
    }

    @Override
    public void close() {
        if (!destroyed) {
            destroyed = true;
            Driver.graphExecDestroy(exec);
            Driver.graphDestroy(graph);
        }
    }
}
