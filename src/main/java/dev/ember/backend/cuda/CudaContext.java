package dev.ember.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * The primary context of one GPU: the context the CUDA runtime, and so cuBLASLt, also uses, which is why
 * Ember retains it rather than creating its own. A context is current per thread: every thread that
 * issues work calls {@link #makeCurrent()} first.
 */
public final class CudaContext implements AutoCloseable {
    private final CudaDevice device;
    private final int deviceHandle;
    private final MemorySegment handle;
    private boolean closed;

    private CudaContext(CudaDevice device, int deviceHandle, MemorySegment handle) {
        this.device = device;
        this.deviceHandle = deviceHandle;
        this.handle = handle;
    }

    /** Initialises the driver, retains device {@code ordinal}'s primary context and makes it current. */
    public static CudaContext open(int ordinal) {
        Driver.init();
        int count = Driver.deviceCount();
        if (ordinal < 0 || ordinal >= count) {
            throw new IllegalArgumentException("no CUDA device " + ordinal + " (this host has " + count + ")");
        }
        CudaDevice device = CudaDevice.query(ordinal);
        int d = Driver.device(ordinal);
        MemorySegment context = Driver.primaryContextRetain(d);
        Driver.contextSetCurrent(context);
        return new CudaContext(device, d, context);
    }

    public CudaDevice device() {
        return device;
    }

    public void makeCurrent() {
        Driver.contextSetCurrent(handle);
    }

    /** Free and total device memory, in bytes. */
    public MemoryInfo memoryInfo() {
        long[] info = Driver.memoryInfo();
        if (limit <= 0 || limit >= info[1]) {
            return new MemoryInfo(info[0], info[1]);
        }
        // A device of `limit` bytes, of which what is in use now (by anyone) is taken.
        long used = info[1] - info[0];
        return new MemoryInfo(Math.max(0, limit - used), limit);
    }

    /**
     * Makes {@link #memoryInfo} report a device of at most {@code bytes} (0: the whole device), so that everything that
     * sizes itself by it (the fits check, the KV cache) keeps within it: {@code --gpu-memory-limit}.
     */
    public void limitMemory(long bytes) {
        this.limit = bytes;
    }

    /**
     * Lets this context's work read and write {@code peer}'s device memory directly, where the two GPUs are linked (it
     * is then made current); false where they are not, and copies between them go through the host. The same GPU is
     * its own peer.
     */
    public boolean enablePeerAccess(CudaContext peer) {
        if (peer.deviceHandle == deviceHandle) {
            return true;
        }
        if (!Driver.canAccessPeer(deviceHandle, peer.deviceHandle)) {
            return false;
        }
        makeCurrent();
        Driver.enablePeerAccess(peer.handle);
        return true;
    }

    /** Waits for all work of this context, on every stream. */
    public void synchronize() {
        Driver.contextSynchronize();
    }

    /** Bytes {@link #memoryInfo} reports at most, or 0 for the whole device. */
    private volatile long limit;

    public record MemoryInfo(long free, long total) {
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Driver.primaryContextRelease(deviceHandle);
        }
    }
}
