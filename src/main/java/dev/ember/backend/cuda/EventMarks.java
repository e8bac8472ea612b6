package dev.ember.backend.cuda;

import dev.ember.backend.WorkMarks;

/** {@link WorkMarks} as CUDA events on a runner's stream: the device's time between the points. */
final class EventMarks implements WorkMarks {
    private final CudaEvent[] events;
    private final boolean[] marked;
    private final CudaStream stream;

    EventMarks(CudaStream stream, int points) {
        this.stream = stream;
        this.events = new CudaEvent[points];
        this.marked = new boolean[points];
        try {
            for (int i = 0; i < points; i++) {
                events[i] = CudaEvent.create();
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    @Override
    public void mark(int point) {
        events[point].record(stream);
        marked[point] = true;
    }

    @Override
    public double millisBetween(int from, int to) {
        if (!marked[from] || !marked[to]) {
            throw new IllegalStateException("point " + (marked[from] ? to : from) + " was not marked");
        }
        events[to].synchronize();
        return events[to].elapsedMillisSince(events[from]);
    }

    @Override
    public String method() {
        return "CUDA events on the runner's stream";
    }

    @Override
    public void close() {
        for (CudaEvent e : events) {
            if (e != null) {
                e.close();
            }
        }
    }
}
