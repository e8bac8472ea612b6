package dev.ember.backend;

/**
 * Two devices of a backend and the copies between them, timed: what {@code ember bench p2p} measures (seed 000's
 * {@code p2p_bandwidth}), the activations' road from one pipeline stage to the next.
 */
public interface DeviceLink extends AutoCloseable {

    /** How bytes cross: device to device (NVLink or PCIe peer to peer), or through pinned host memory. */
    enum Method {
        P2P, STAGED;

        public String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** The two devices, for the benchmark's header ("cuda:0 NVIDIA H200 -> cuda:1 NVIDIA H200, peer to peer"). */
    String describe();

    /** Whether the devices reach each other's memory directly; where not, {@link Method#P2P} copies are staged too. */
    boolean peerToPeer();

    /**
     * Microseconds one copy of {@code bytes} takes from the first device to the second ({@code forward}) or back: the
     * time of {@code copies} copies queued back to back, each after the one before, divided by their number.
     */
    double copyMicros(long bytes, Method method, boolean forward, int copies);

    @Override
    void close();
}
