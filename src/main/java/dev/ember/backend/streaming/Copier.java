package dev.ember.backend.streaming;

/**
 * What {@link StreamingSchedule} asks a backend to do, in the order it decides. On a GPU the copies go on a stream of
 * their own and every "wait" is the device's ({@code cuStreamWaitEvent}) but {@link #awaitStaging}, the one place the
 * host waits: before it overwrites a staging buffer whose last copy may still be running. A backend whose copies are
 * synchronous (the CPU) implements the waits as nothing.
 */
public interface Copier {
    /** The copies that follow wait until the compute has released {@code slot} (the group that held it is done). */
    void copiesWaitForRelease(WindowSlot slot);

    /** Queues the copy of {@code group}, held packed in the pinned host cache, into {@code slot}. */
    void copyCached(WeightGroup group, WindowSlot slot);

    /** Blocks the host until the last copy out of staging buffer {@code buffer} has finished. */
    void awaitStaging(int buffer);

    /** Fills staging buffer {@code buffer} with bytes {@code [from, from + length)} of {@code group}'s layout (on the host). */
    void stage(int buffer, WeightGroup group, long from, long length);

    /** Queues the copy of staging buffer {@code buffer}'s first {@code length} bytes to {@code offset} bytes into {@code slot}. */
    void copyStaged(int buffer, WindowSlot slot, long offset, long length);

    /** Marks the end of the copies into {@code slot} queued so far: the group it now holds is complete there. */
    void slotFilled(WindowSlot slot);

    /** The compute that follows waits until {@code slot} is filled. */
    void computeWaitsForFill(WindowSlot slot);

    /** Marks the end of the compute queued so far that reads {@code slot}: its group may be evicted. */
    void computeReleases(WindowSlot slot);
}
