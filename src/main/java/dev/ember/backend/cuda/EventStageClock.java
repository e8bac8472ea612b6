package dev.ember.backend.cuda;

import dev.ember.backend.Stage;
import dev.ember.backend.StageClock;
import dev.ember.backend.StageProfile;

import java.util.ArrayList;
import java.util.List;

/**
 * Marks a stream between the stages of a step with CUDA events and, once the stream has passed them, reports the
 * device time between consecutive marks. Events are reused from step to step; the pool grows to the most marks a step
 * has made.
 */
final class EventStageClock implements StageClock, AutoCloseable {
    private final StageProfile profile;
    private final CudaStream stream;
    private final List<CudaEvent> events = new ArrayList<>();
    private final List<Stage> stages = new ArrayList<>();
    /** Marks recorded this step: the stage that starts at events.get(i) is stages.get(i), null after an end. */
    private int marks;

    EventStageClock(StageProfile profile, CudaStream stream) {
        this.profile = profile;
        this.stream = stream;
    }

    @Override
    public void enter(Stage stage) {
        mark();
        stages.add(stage);
    }

    @Override
    public void end() {
        if (!stages.isEmpty() && stages.getLast() != null) {
            mark();
            stages.add(null);  // the time up to the next enter is nobody's
        }
    }

    private void mark() {
        if (marks == events.size()) {
            events.add(CudaEvent.create());
        }
        events.get(marks++).record(stream);
    }

    /** Reports the stages of the marks recorded so far (the stream must have passed them) and starts afresh. */
    void collect() {
        for (int i = 0; i + 1 < marks; i++) {
            if (stages.get(i) == null) {
                continue;
            }
            double ms = events.get(i + 1).elapsedMillisSince(events.get(i));
            profile.add(stages.get(i), Math.round(ms * 1e6));
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
