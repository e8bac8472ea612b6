package dev.ember.backend.cuda;

import dev.ember.EmberException;
import dev.ember.backend.DeviceLink;

/**
 * Two GPUs (or one, as its own peer) and timed copies between them. Each device holds a buffer of the largest size;
 * staged copies go through two pinned host buffers. Copies are queued back to back and timed by the host clock around
 * the whole batch, so the per-copy figure holds no host wait: a peer copy is one device-to-device copy (the driver
 * takes NVLink or PCIe where peer access is enabled), a staged copy a device-to-host copy on the source's stream and a
 * host-to-device copy on the destination's, ordered by events, the next copy's first half waiting for the last one's
 * second (each pinned buffer used by one copy at a time).
 */
final class CudaDeviceLink implements DeviceLink {
    private final CudaContext first;
    private final CudaContext second;
    private final boolean peerToPeer;
    private final DeviceBuffer onFirst;
    private final DeviceBuffer onSecond;
    private final PinnedBuffer staging;
    private final CudaStream firstStream;
    private final CudaStream secondStream;
    private final CudaEvent[] staged;

    private CudaDeviceLink(CudaContext first, CudaContext second, long maxBytes) {
        this.first = first;
        this.second = second;
        this.peerToPeer = first.enablePeerAccess(second) && second.enablePeerAccess(first);
        first.makeCurrent();
        this.onFirst = DeviceBuffer.allocate(maxBytes);
        this.firstStream = CudaStream.create();
        this.staging = PinnedBuffer.allocate(maxBytes);
        CudaEvent[] events = new CudaEvent[4];
        events[0] = CudaEvent.forOrdering();  // the first device's half is done (recorded in its context)
        events[1] = CudaEvent.forOrdering();  // the second device's half is done, when it copies back
        second.makeCurrent();
        this.onSecond = DeviceBuffer.allocate(maxBytes);
        this.secondStream = CudaStream.create();
        events[2] = CudaEvent.forOrdering();
        events[3] = CudaEvent.forOrdering();
        this.staged = events;
    }

    /** Devices {@code first} and {@code second} (the same for copies within one GPU), with buffers of {@code maxBytes}. */
    static CudaDeviceLink open(int first, int second, long maxBytes) {
        Driver.init();
        int count = Driver.deviceCount();
        for (int d : new int[] {first, second}) {
            if (d < 0 || d >= count) {
                throw new EmberException("--gpus " + first + "," + second + " names GPU " + d + ", and this host has " + count
                        + (count == 1 ? " GPU (--gpus 0,0 measures copies within it)" : " GPUs"));
            }
        }
        CudaContext a = CudaContext.open(first);
        CudaContext b = first == second ? a : CudaContext.open(second);
        try {
            return new CudaDeviceLink(a, b, maxBytes);
        } catch (RuntimeException e) {
            if (b != a) {
                b.close();
            }
            a.close();
            throw e;
        }
    }

    @Override
    public String describe() {
        String from = first.device().describe(), to = second.device().describe();
        return (first == second ? from + ", to itself" : from + " -> " + to)
                + (peerToPeer ? ", peer to peer" : ", no peer access (peer copies are staged by the driver)");
    }

    @Override
    public boolean peerToPeer() {
        return peerToPeer;
    }

    @Override
    public double copyMicros(long bytes, Method method, boolean forward, int copies) {
        if (bytes > onFirst.byteSize()) {
            throw new IllegalArgumentException(bytes + " bytes is more than the link's buffers hold: " + onFirst.byteSize());
        }
        CudaContext from = forward ? first : second, to = forward ? second : first;
        DeviceBuffer source = forward ? onFirst : onSecond, target = forward ? onSecond : onFirst;
        CudaStream fromStream = forward ? firstStream : secondStream, toStream = forward ? secondStream : firstStream;
        CudaEvent fromDone = staged[forward ? 0 : 2], toDone = staged[forward ? 3 : 1];
        from.makeCurrent();
        from.synchronize();
        to.synchronize();
        long start = System.nanoTime();
        for (int c = 0; c < copies; c++) {
            if (method == Method.P2P) {
                Driver.memcpyDtoDAsync(target.address(), source.address(), bytes, fromStream.handle());
                continue;
            }
            from.makeCurrent();
            if (c > 0) {
                fromStream.waitFor(toDone);
            }
            source.copyToHostAsync(staging.segment().asSlice(0, bytes), fromStream);
            fromDone.record(fromStream);
            to.makeCurrent();
            toStream.waitFor(fromDone);
            target.copyFromHostAsync(staging.segment().asSlice(0, bytes), 0, toStream);
            toDone.record(toStream);
        }
        (method == Method.P2P ? fromStream : toStream).synchronize();
        return (System.nanoTime() - start) / 1e3 / copies;
    }

    /** The context of the first device ({@code first}) or the second, for tests that fill and read the buffers. */
    CudaContext context(boolean first) {
        return first ? this.first : second;
    }

    /** The buffer on the first device ({@code first}) or the second. */
    DeviceBuffer buffer(boolean first) {
        return first ? onFirst : onSecond;
    }

    @Override
    public void close() {
        second.makeCurrent();
        onSecond.close();
        secondStream.close();
        staged[2].close();
        staged[3].close();
        first.makeCurrent();
        onFirst.close();
        firstStream.close();
        staging.close();
        staged[0].close();
        staged[1].close();
        if (second != first) {
            second.close();
        }
        first.close();
    }
}
