package dev.ember.backend.streaming;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A {@link Copier} that only records what it is asked, one line per call, and checks as it goes what a device would
 * need: a slot is written only after the compute released the group it held (and the copies were told to wait for
 * that), a staging buffer is refilled only after the host waited for its last copy, and the compute reads a slot
 * only after waiting for its fill, which holds the group it asks for.
 */
final class RecordingCopier implements Copier {
    final List<String> log = new ArrayList<>();
    /** The group each slot holds, or is being filled with. */
    private final Map<WindowSlot, WeightGroup> holder = new HashMap<>();
    private final Set<WindowSlot> released = new HashSet<>();
    private final Set<WindowSlot> copiesWaiting = new HashSet<>();
    private final Set<WindowSlot> filled = new HashSet<>();
    private final Set<WindowSlot> computeWaited = new HashSet<>();
    /** Staging buffers whose copy is queued and not yet waited for; what each holds. */
    private final Set<Integer> stagingBusy = new HashSet<>();
    private final Map<Integer, String> staged = new HashMap<>();
    /** Bytes of each group copied so far, by the slot being filled. */
    private final Map<WindowSlot, Long> bytesInto = new HashMap<>();
    private final ScheduleShape shape;
    int maxStagingInUse;

    RecordingCopier(ScheduleShape shape) {
        this.shape = shape;
    }

    @Override
    public void copiesWaitForRelease(WindowSlot slot) {
        assertTrue(released.contains(slot), slot + ": copies wait for a release the compute has not queued");
        copiesWaiting.add(slot);
        log.add("copies wait for release of " + slot);
    }

    private void startFill(WeightGroup group, WindowSlot slot) {
        WeightGroup before = holder.get(slot);
        if (before != null && !before.equals(group)) {
            assertTrue(copiesWaiting.remove(slot), "copy of " + group + " into " + slot + " while it holds " + before
                    + " without waiting for its release");
            released.remove(slot);
            filled.remove(slot);
            bytesInto.put(slot, 0L);
        }
        if (before == null) {
            bytesInto.put(slot, 0L);
        }
        assertEquals(group.kind(), slot.kind(), "a group goes to a slot of its kind");
        holder.put(slot, group);
    }

    @Override
    public void copyCached(WeightGroup group, WindowSlot slot) {
        assertTrue(group.layer() < shape.cachedLayers(), group + " is not in the host cache");
        startFill(group, slot);
        bytesInto.merge(slot, shape.bytes(group.kind()), Long::sum);
        log.add("copy " + group + " -> " + slot + " from the host cache");
    }

    @Override
    public void awaitStaging(int buffer) {
        assertTrue(stagingBusy.remove(buffer), "waits for staging buffer " + buffer + ", which has no copy queued");
        log.add("host waits for staging " + buffer);
    }

    @Override
    public void stage(int buffer, WeightGroup group, long from, long length) {
        assertTrue(!stagingBusy.contains(buffer), "staging buffer " + buffer + " refilled before its copy was waited for");
        assertTrue(group.layer() >= shape.cachedLayers(), group + " is in the host cache, yet staged");
        assertTrue(length <= shape.stagingBufferBytes() && length > 0, "a staged range fits a buffer");
        staged.put(buffer, group + "@" + from + "+" + length);
        log.add("stage " + group + " [" + from + ", " + (from + length) + ") in " + buffer);
    }

    @Override
    public void copyStaged(int buffer, WindowSlot slot, long offset, long length) {
        String what = staged.remove(buffer);
        assertNotNull(what, "copy out of staging buffer " + buffer + ", which was not filled");
        String groupName = what.substring(0, what.indexOf('@'));
        assertEquals(what, groupName + "@" + offset + "+" + length, "staged bytes land where they were read from");
        WeightGroup target = parse(groupName);
        startFill(target, slot);
        assertEquals(bytesInto.get(slot), offset, "ranges of a group are copied in order, without gaps");
        bytesInto.merge(slot, length, Long::sum);
        stagingBusy.add(buffer);
        maxStagingInUse = Math.max(maxStagingInUse, stagingBusy.size());
        log.add("copy staging " + buffer + " -> " + slot + " @" + offset);
    }

    private static WeightGroup parse(String name) {
        return name.startsWith("attn") ? new WeightGroup(Integer.parseInt(name.substring(4)), WeightGroup.Kind.ATTENTION)
                : new WeightGroup(Integer.parseInt(name.substring(3)), WeightGroup.Kind.MLP);
    }

    @Override
    public void slotFilled(WindowSlot slot) {
        WeightGroup group = holder.get(slot);
        assertEquals(shape.bytes(group.kind()), bytesInto.get(slot), "every byte of " + group + " copied");
        filled.add(slot);
        log.add("filled " + slot + " with " + group);
    }

    @Override
    public void computeWaitsForFill(WindowSlot slot) {
        assertTrue(filled.contains(slot), "compute waits for " + slot + ", whose fill is not queued");
        computeWaited.add(slot);
        log.add("compute waits for " + slot);
    }

    @Override
    public void computeReleases(WindowSlot slot) {
        assertTrue(computeWaited.remove(slot), "released " + slot + " without having waited for it");
        released.add(slot);
        log.add("release " + slot);
    }

    /** What the runner does between acquire and release: checks that the slot holds {@code group}. */
    void compute(WeightGroup group, WindowSlot slot) {
        assertEquals(group, holder.get(slot), slot + " holds the group being computed");
        assertTrue(computeWaited.contains(slot), "compute of " + group + " before waiting for its copy");
        log.add("compute " + group);
    }

    int indexOf(String line) {
        int i = log.indexOf(line);
        assertTrue(i >= 0, "never happened: " + line);
        return i;
    }
}
