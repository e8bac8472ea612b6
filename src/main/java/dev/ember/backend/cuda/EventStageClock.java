package dev.ember.backend.cuda;

import dev.ember.backend.Stage;
import dev.ember.backend.StageClock;
import dev.ember.backend.StageProfile;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Marks a stream between the stages (and layers) of a step with CUDA events and, once the stream has passed them,
 * reports the device time between consecutive marks to the stage and layer current at the first. Events are reused
 * from step to step; the pool grows to the most marks a step has made.
 *
 * <p>The spans are placed on the host's clock from the moment of the first mark: the stream is idle then (the step
 * before ended with a synchronize), so its event completes as it is recorded, and the later marks follow it by their
 * device times. A trace therefore shows each stage where the GPU ran it, to within a launch latency.
 */
final class EventStageClock extends StageClock.Marking implements AutoCloseable {
    private final StageProfile profile;
    private final CudaStream stream;
    private final List<CudaEvent> events = new ArrayList<>();
    /** The stage and layer of the time from mark i - 1 to mark i; null before the first stage and after an end. */
    private Stage[] stages = new Stage[64];
    private int[] layers = new int[64];
    private int marks;
    /** The host's clock at the first mark. */
    private long firstMarkNanos;

    EventStageClock(StageProfile profile, CudaStream stream) {
        super(profile);
        this.profile = profile;
        this.stream = stream;
    }

    @Override
    protected void mark() {
        if (marks == events.size()) {
            events.add(CudaEvent.create());
        }
        if (marks == layers.length) {
            layers = Arrays.copyOf(layers, 2 * marks);
            stages = Arrays.copyOf(stages, 2 * marks);
        }
        if (marks == 0) {
            firstMarkNanos = System.nanoTime();
        }
        events.get(marks).record(stream);
        stages[marks] = stage;
        layers[marks++] = layer;
    }

    /** Reports the intervals between the marks recorded so far (the stream must have passed them) and starts afresh. */
    void collect() {
        long start = firstMarkNanos;
        for (int i = 1; i < marks; i++) {
            long nanos = Math.round(events.get(i).elapsedMillisSince(events.get(i - 1)) * 1e6);
            if (stages[i] != null) {
                profile.add(stages[i], layers[i], start, nanos);
            }
            start += nanos;
        }
        marks = 0;
    }

    @Override
    public void close() {
        events.forEach(CudaEvent::close);
        events.clear();
    }
}
