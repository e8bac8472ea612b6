package dev.ember.backend.streaming;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The order of copies and compute that {@link StreamingSchedule} produces, recorded by {@link RecordingCopier}. */
class StreamingScheduleTest {
    private static final int LAYERS = 6;
    private static final long ATTENTION = 40_960, MLP = 90_112;

    private static ScheduleShape shape(int window, int distance, int depth, int warmup, int cached) {
        return new ScheduleShape(LAYERS, ATTENTION, MLP, window, distance, depth, warmup, cached, 3, 16_384);
    }

    /** Runs {@code steps} steps, each computing every group in order, checking the window after each call. */
    private static List<Integer> run(StreamingSchedule schedule, RecordingCopier copier, int steps) {
        List<Integer> occupancy = new ArrayList<>();
        for (int step = 0; step < steps; step++) {
            for (int l = 0; l < LAYERS; l++) {
                for (WeightGroup.Kind kind : WeightGroup.Kind.values()) {
                    WeightGroup g = new WeightGroup(l, kind);
                    WindowSlot slot = schedule.acquire(g);
                    occupancy.add(schedule.groupsInWindow());
                    copier.compute(g, slot);
                    schedule.release(g);
                    occupancy.add(schedule.groupsInWindow());
                }
            }
        }
        return occupancy;
    }

    /**
     * A knob out of range ({@code --prefetch-distance 0}) is a user's error naming the option and its value: it was an
     * IllegalArgumentException (a stack trace) printing the record as its compact constructor saw it, every field 0.
     */
    @Test
    void settingsOutOfRangeNameTheOptionAndTheValue() {
        dev.ember.EmberException e = assertThrows(dev.ember.EmberException.class, () -> new StreamingSettings(StreamingMode.STREAM,
                0, 0, 2, -1, 0, 4, 4, 64L << 20, null));
        assertTrue(e.getMessage().contains("--prefetch-distance") && e.getMessage().contains("not 0"), e.getMessage());
        e = assertThrows(dev.ember.EmberException.class, () -> new StreamingSettings(null, 0, 0, 0, -1, 6, 4, 4, 0, null));
        assertTrue(e.getMessage().contains("--staging-mb"), e.getMessage());
        e = assertThrows(dev.ember.EmberException.class, () -> StreamingSettings.AUTOMATIC.withBudget(-5));
        assertTrue(e.getMessage().contains("--gpu-weight-budget") && e.getMessage().contains("-5"), e.getMessage());
    }

    @Test
    void everyGroupIsCopiedBeforeItIsComputedAndTheWindowNeverOverflows() {
        ScheduleShape shape = shape(2, 6, 8, 2, 0);
        RecordingCopier copier = new RecordingCopier(shape);
        StreamingSchedule schedule = new StreamingSchedule(shape, copier, null);
        List<Integer> occupancy = run(schedule, copier, 3);
        assertTrue(occupancy.stream().allMatch(n -> n <= 4), "at most two layers (four groups) in the window: " + occupancy);
        assertEquals(4, occupancy.stream().mapToInt(Integer::intValue).max().orElseThrow(), "the window is used whole");
        assertEquals(3 * shape.bytesPerStep() + 4 * 0L, schedule.bytesCopied() - inFlightBytes(schedule, shape),
                "three steps copy every layer three times (and what is prefetched for the fourth)");
    }

    /** Bytes of the groups issued but not computed when the run ended: the next step's first groups. */
    private static long inFlightBytes(StreamingSchedule schedule, ScheduleShape shape) {
        long bytes = 0;
        for (int i = 0; i < schedule.groupsInWindow(); i++) {
            bytes += shape.bytes(WeightGroup.inOrder(i, LAYERS).kind());
        }
        return bytes;
    }

    @Test
    void copiesRunAheadOfComputeAsFarAsTheLimitsAllow() {
        ScheduleShape shape = shape(3, 6, 3, 0, LAYERS);  // depth 3: three groups copied ahead of the one computing
        RecordingCopier copier = new RecordingCopier(shape);
        run(new StreamingSchedule(shape, copier, null), copier, 1);
        for (int n = 0; n + 3 < 2 * LAYERS; n++) {
            WeightGroup computing = WeightGroup.inOrder(n, LAYERS), ahead = WeightGroup.inOrder(n + 3, LAYERS);
            int computed = copier.indexOf("compute " + computing);
            int copied = copier.log.indexOf("copy " + ahead + " -> " + slotOf(n + 3, 3) + " from the host cache");
            assertTrue(copied >= 0 && copied < computed, ahead + " is copied before " + computing + " is computed");
            WeightGroup tooFar = WeightGroup.inOrder(n + 4, LAYERS);
            int early = copier.log.indexOf("copy " + tooFar + " -> " + slotOf(n + 4, 3) + " from the host cache");
            assertTrue(n + 4 >= 2 * LAYERS || early > computed, tooFar + " waits past the depth limit");
        }
    }

    private static WindowSlot slotOf(long n, int window) {
        return new WindowSlot(WeightGroup.inOrder(n, LAYERS).kind(), (int) ((n / 2) % window));
    }

    @Test
    void theNextStepsFirstLayersArePrefetchedDuringTheLastOnes() {
        ScheduleShape shape = shape(2, 1, 4, 0, LAYERS);
        RecordingCopier copier = new RecordingCopier(shape);
        run(new StreamingSchedule(shape, copier, null), copier, 1);
        int lastCompute = copier.indexOf("compute mlp" + (LAYERS - 1));
        int nextFirst = copier.indexOf("copy attn0 -> " + slotOf(2L * LAYERS, 2) + " from the host cache");
        assertTrue(nextFirst < lastCompute, "layer 0 of the next step is copied while the last layer computes");
    }

    @Test
    void warmUpCopiesTheFirstLayersBeforeAnyCompute() {
        ScheduleShape shape = shape(4, 1, 1, 3, LAYERS);
        RecordingCopier copier = new RecordingCopier(shape);
        new StreamingSchedule(shape, copier, null);
        assertEquals(List.of("attn0", "mlp0", "attn1", "mlp1", "attn2", "mlp2"), copier.log.stream()
                .filter(l -> l.startsWith("copy ")).map(l -> l.split(" ")[1]).toList(), "three warm-up layers, in order");
    }

    @Test
    void unCachedLayersGoThroughTheStagingRingInTurn() {
        ScheduleShape shape = shape(2, 6, 4, 1, 2);  // layers 0-1 cached, 2-5 staged through 3 buffers of 16 KiB
        RecordingCopier copier = new RecordingCopier(shape);
        StreamingSchedule schedule = new StreamingSchedule(shape, copier, null);
        run(schedule, copier, 2);
        List<Integer> buffers = copier.log.stream().filter(l -> l.startsWith("stage ")).map(l -> Integer.parseInt(l.substring(l.lastIndexOf(' ') + 1))).toList();
        for (int i = 0; i < buffers.size(); i++) {
            assertEquals(i % 3, buffers.get(i), "buffers are used in turn");
        }
        assertTrue(copier.log.contains("host waits for staging 0"), "a buffer is reused only after its copy");
        assertEquals(3, copier.maxStagingInUse, "the whole ring is in use while copies run");
        long stagedPerStep = 4 * (ATTENTION + MLP);
        assertTrue(schedule.bytesStaged() >= 2 * stagedPerStep, "the four un-cached layers go through staging every step");
        assertTrue(copier.log.stream().noneMatch(l -> l.startsWith("stage attn0") || l.startsWith("stage mlp1")),
                "cached layers are never staged");
    }

    @Test
    void groupsMustBeComputedInOrderAndReleasedBeforeTheNext() {
        ScheduleShape shape = shape(2, 2, 2, 0, LAYERS);
        StreamingSchedule schedule = new StreamingSchedule(shape, new RecordingCopier(shape), null);
        assertThrows(IllegalStateException.class, () -> schedule.acquire(new WeightGroup(0, WeightGroup.Kind.MLP)));
        schedule.acquire(new WeightGroup(0, WeightGroup.Kind.ATTENTION));
        assertThrows(IllegalStateException.class, () -> schedule.acquire(new WeightGroup(0, WeightGroup.Kind.MLP)));
        assertThrows(IllegalStateException.class, () -> schedule.release(new WeightGroup(1, WeightGroup.Kind.ATTENTION)));
    }

    @Test
    void verboseOutputNamesEachPrefetchAndEviction() {
        ScheduleShape shape = shape(1, 1, 1, 1, LAYERS);
        List<String> lines = new ArrayList<>();
        RecordingCopier copier = new RecordingCopier(shape);
        run(new StreamingSchedule(shape, copier, lines::add), copier, 1);
        assertTrue(lines.getFirst().startsWith("prefetch attn0 -> attn-slot0 from the host cache"), lines.getFirst());
        assertTrue(lines.contains("evict mlp5 from mlp-slot0"), String.join("\n", lines));
    }
}
