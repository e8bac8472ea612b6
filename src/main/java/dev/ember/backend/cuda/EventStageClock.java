package dev.ember.backend.cuda;

import dev.ember.backend.Stage;
import dev.ember.backend.StageClock;
import dev.ember.backend.StageProfile;

import java.util.ArrayList;
import java.util.List;

/**
 * Marks a stream between the stages (and layers) of a step with CUDA events and, once the stream has passed them,
 * reports the device time between consecutive marks to the stage and layer current at the first. Events are reused
 * from step to step; the pool grows to the most marks a step has made.
 */
final class EventStageClock implements StageClock, AutoCloseable {
    private final StageProfile profile;
    private final CudaStream stream;
    private final List<CudaEvent> events = new ArrayList<>();
    /** The stage and layer from mark i to mark i + 1; null and NO_LAYER after an end. */
    private final List<Stage> stages = new ArrayList<>();
    private int[] layers = new int[64];
    private Stage stage;
    private int layer = NO_LAYER;
    private int marks;

    EventStageClock(StageProfile profile, CudaStream stream) {
        this.profile = profile;
        this.stream = stream;
    }

    @Override
    public void enter(Stage next) {
        stage = next;
        mark();
    }

    @Override
    public void layer(int index) {
        layer = index;
        mark();
    }

    @Override
    public void end() {
        if (stage != null) {
            stage = null;
            layer = NO_LAYER;
            mark();
        }
    }

    private void mark() {
        if (marks == events.size()) {
            events.add(CudaEvent.create());
        }
        if (marks == layers.length) {
            layers = java.util.Arrays.copyOf(layers, 2 * marks);
        }
        events.get(marks).record(stream);
        stages.add(stage);
        layers[marks++] = layer;
    }

    /** Reports the intervals between the marks recorded so far (the stream must have passed them) and starts afresh. */
    void collect() {
        for (int i = 0; i + 1 < marks; i++) {
            if (stages.get(i) == null) {
                continue;
            }
            long nanos = Math.round(events.get(i + 1).elapsedMillisSince(events.get(i)) * 1e6);
            profile.add(stages.get(i), nanos);
            if (layers[i] != NO_LAYER) {
                profile.addLayer(layers[i], nanos);
            }
        }
        stages.clear();
        marks = 0;
    }

    @Override
    public void close() {
        events.forEach(CudaEvent::close);
        events.clear();
    }
}
