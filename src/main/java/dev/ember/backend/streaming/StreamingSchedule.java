package dev.ember.backend.streaming;

import java.util.function.Consumer;

/**
 * The order of a streamed model's copies. A step computes the groups attention 0, MLP 0, attention 1, ... and the
 * next step the same again, so the schedule sees one endless sequence of groups ({@link WeightGroup#inOrder}) and
 * prefetches across a step's end into the next one's first layers. Group {@code n} goes to slot
 * {@code (n / 2) mod windowLayers} of its kind, which the group {@code 2 windowLayers} before it held: its copy waits
 * (on the device) until the compute has released that one. The runner brackets each group's work with
 * {@link #acquire} (the compute waits for the group's copy) and {@link #release} (the slot may be refilled once the
 * compute is done); between them, and at the start, the schedule issues every copy the limits allow
 * ({@link ScheduleShape#groupsInFlight}). Groups of cached layers are copied straight from the pinned host cache;
 * the others are filled through the staging ring, buffer by buffer in turn, the host waiting only for a buffer's
 * previous copy. Not thread-safe: the engine thread drives it.
 */
public final class StreamingSchedule {
    private final ScheduleShape shape;
    private final Copier copier;
    private final Consumer<String> verbose;
    /** Groups whose copies were issued, acquired and released so far, counted over all steps. */
    private long issued, acquired, released;
    /** Staging buffers filled so far: the next is {@code staged mod stagingBuffers}. */
    private long staged;
    private long bytesCopied, bytesStaged;
    private int mostInWindow;

    /** A schedule that issues the warm-up copies at once; {@code verbose} hears of each copy and eviction (or null). */
    public StreamingSchedule(ScheduleShape shape, Copier copier, Consumer<String> verbose) {
        this.shape = shape;
        this.copier = copier;
        this.verbose = verbose;
        long warmup = Math.min(2L * shape.warmupLayers(), 2L * shape.windowLayers());
        while (issued < warmup) {
            issue();
        }
        pump();
    }

    public ScheduleShape shape() {
        return shape;
    }

    /**
     * The slot that holds {@code group} once the compute queued after this call runs: issues its copy if the limits
     * held it back, and the copies the limits now allow, then makes the compute wait for its copy.
     */
    public WindowSlot acquire(WeightGroup group) {
        WeightGroup expected = WeightGroup.inOrder(acquired, shape.layers());
        if (!group.equals(expected) || acquired != released) {
            throw new IllegalStateException("groups are computed in order, each released before the next: expected "
                    + expected + (acquired != released ? " released" : "") + ", got " + group);
        }
        while (issued <= acquired) {
            issue();
        }
        pump();
        WindowSlot slot = slotOf(acquired);
        copier.computeWaitsForFill(slot);
        acquired++;
        return slot;
    }

    /** Ends the compute on {@code group} (queued so far): it leaves the window, and the copies it held back are issued. */
    public void release(WeightGroup group) {
        if (acquired != released + 1 || !group.equals(WeightGroup.inOrder(released, shape.layers()))) {
            throw new IllegalStateException(group + " is not the group being computed");
        }
        WindowSlot slot = slotOf(released);
        copier.computeReleases(slot);
        released++;
        if (verbose != null) {
            verbose.accept("evict " + group + " from " + slot);
        }
        pump();
    }

    /** Bytes copied into the window so far, and the part of them that went through the staging ring. */
    public long bytesCopied() {
        return bytesCopied;
    }

    public long bytesStaged() {
        return bytesStaged;
    }

    /** The most groups the window held at once so far. */
    public int mostGroupsInWindow() {
        return mostInWindow;
    }

    /** Groups copied into the window and not yet evicted: never more than the window's slots. */
    public int groupsInWindow() {
        return (int) (issued - released);
    }

    private void pump() {
        while (issued < released + shape.groupsInFlight()) {
            issue();
        }
    }

    private WindowSlot slotOf(long n) {
        return new WindowSlot(WeightGroup.inOrder(n, shape.layers()).kind(), (int) ((n / 2) % shape.windowLayers()));
    }

    private void issue() {
        long n = issued;
        WeightGroup group = WeightGroup.inOrder(n, shape.layers());
        WindowSlot slot = slotOf(n);
        if (n >= 2L * shape.windowLayers()) {
            copier.copiesWaitForRelease(slot);
        }
        long bytes = shape.bytes(group.kind());
        boolean cached = group.layer() < shape.cachedLayers();
        if (cached) {
            copier.copyCached(group, slot);
        } else {
            for (long from = 0; from < bytes; from += shape.stagingBufferBytes()) {
                long length = Math.min(shape.stagingBufferBytes(), bytes - from);
                int buffer = (int) (staged % shape.stagingBuffers());
                if (staged >= shape.stagingBuffers()) {
                    copier.awaitStaging(buffer);
                }
                copier.stage(buffer, group, from, length);
                copier.copyStaged(buffer, slot, from, length);
                staged++;
            }
            bytesStaged += bytes;
        }
        copier.slotFilled(slot);
        bytesCopied += bytes;
        issued++;
        mostInWindow = Math.max(mostInWindow, groupsInWindow());
        if (verbose != null) {
            verbose.accept(String.format("prefetch %s -> %s from %s (%.1f MB; computing %s; %d groups in the window)",
                    group, slot, cached ? "the host cache" : "staging", bytes / 1e6,
                    WeightGroup.inOrder(acquired, shape.layers()), issued - released));
        }
    }
}
