package dev.ember.trace;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.ember.EmberException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link Trace} that keeps every span and counter in memory and writes them as a Chrome trace-event JSON file
 * ({@code {"traceEvents": [...]}} with complete events {@code "ph": "X"} and counters {@code "ph": "C"}, times in
 * microseconds from the recorder's creation), which Perfetto (ui.perfetto.dev) and chrome://tracing open. Each thread
 * that reports gets its own track, named after the thread. Thread-safe: the engine and a GPU monitor can share one.
 */
public final class TraceRecorder implements Trace {
    /** One recorded event; {@code phase} is 'X' (a span) or 'C' (a counter value, in {@code value}). */
    public record Event(char phase, String category, String name, long startNanos, long durationNanos, long threadId,
                        String argName, long argValue, double value) {
    }

    private final long originNanos = System.nanoTime();
    private final List<Event> events = new ArrayList<>();
    private final Map<Long, String> threadNames = new LinkedHashMap<>();
    /** Named tracks of {@link #spanOnTrack}, numbered far above any thread id. */
    private final Map<String, Long> trackIds = new LinkedHashMap<>();
    private static final long FIRST_TRACK_ID = 1L << 40;

    @Override
    public boolean enabled() {
        return true;
    }

    @Override
    public long start() {
        return System.nanoTime();
    }

    @Override
    public long end(String category, String name, long startNanos) {
        return end(category, name, startNanos, null, 0);
    }

    @Override
    public long end(String category, String name, long startNanos, String argName, long argValue) {
        long now = System.nanoTime();
        add(new Event('X', category, name, startNanos, now - startNanos, threadId(), argName, argValue, 0));
        return now;
    }

    @Override
    public void span(String category, String name, long startNanos, long durationNanos) {
        span(category, name, startNanos, durationNanos, null, 0);
    }

    @Override
    public void span(String category, String name, long startNanos, long durationNanos, String argName, long argValue) {
        add(new Event('X', category, name, startNanos, durationNanos, threadId(), argName, argValue, 0));
    }

    /**
     * Records a span timed elsewhere on a track of its own, named {@code track}, rather than the calling thread's: for
     * work that belongs to no thread, such as the requests a load generator keeps in flight. Spans on one track must
     * nest or follow one another.
     */
    public void spanOnTrack(String track, String category, String name, long startNanos, long durationNanos,
                            String argName, long argValue) {
        synchronized (events) {
            Long id = trackIds.get(track);
            if (id == null) {
                id = FIRST_TRACK_ID + trackIds.size();
                trackIds.put(track, id);
                threadNames.put(id, track);
            }
            events.add(new Event('X', category, name, startNanos, durationNanos, id, argName, argValue, 0));
        }
    }

    /** Records a counter value; one that was not measured (NaN) is left out, as JSON has no NaN. */
    @Override
    public void counter(String name, double value) {
        if (!Double.isFinite(value)) {
            return;
        }
        add(new Event('C', "counter", name, System.nanoTime(), 0, threadId(), null, 0, value));
    }

    private long threadId() {
        Thread t = Thread.currentThread();
        long id = t.threadId();
        synchronized (events) {
            threadNames.putIfAbsent(id, t.getName());
        }
        return id;
    }

    private void add(Event e) {
        synchronized (events) {
            events.add(e);
        }
    }

    /** The events so far, in the order they were recorded. */
    public List<Event> events() {
        synchronized (events) {
            return List.copyOf(events);
        }
    }

    /** Writes the Chrome trace-event JSON to {@code file}. */
    public void write(Path file) {
        write(file, Map.of("ember", this));
    }

    /**
     * Writes several recorders into one Chrome trace-event JSON file, each as a process of its own named by its key
     * (in the map's order, process ids 1, 2, ...), all on one clock from the earliest recorder's creation: runs recorded
     * one after another lie one after another on the timeline, each under its own name.
     */
    public static void write(Path file, Map<String, TraceRecorder> processes) {
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            long origin = processes.values().stream().mapToLong(r -> r.originNanos).min().orElse(0);
            try (JsonGenerator json = new JsonFactory().createGenerator(file.toFile(), JsonEncoding.UTF8)) {
                json.writeStartObject();
                json.writeStringField("displayTimeUnit", "ms");
                json.writeArrayFieldStart("traceEvents");
                int pid = 1;
                for (Map.Entry<String, TraceRecorder> p : processes.entrySet()) {
                    p.getValue().writeEvents(json, pid++, p.getKey(), origin);
                }
                json.writeEndArray();
                json.writeEndObject();
            }
        } catch (IOException e) {
            throw new EmberException("cannot write the trace " + file + ": " + e.getMessage());
        }
    }

    /** This recorder's events as process {@code pid} named {@code process}, times in microseconds from {@code origin}. */
    private void writeEvents(JsonGenerator json, int pid, String process, long origin) throws IOException {
        List<Event> snapshot;
        Map<Long, String> threads;
        synchronized (events) {
            snapshot = List.copyOf(events);
            threads = new LinkedHashMap<>(threadNames);
        }
        writeMetadata(json, "process_name", pid, 0, process);
        for (Map.Entry<Long, String> t : threads.entrySet()) {
            writeMetadata(json, "thread_name", pid, t.getKey(), t.getValue());
        }
        for (Event e : snapshot) {
            json.writeStartObject();
            json.writeStringField("name", e.name());
            json.writeStringField("cat", e.category());
            json.writeStringField("ph", String.valueOf(e.phase()));
            json.writeNumberField("ts", (e.startNanos() - origin) / 1e3);
            if (e.phase() == 'X') {
                json.writeNumberField("dur", e.durationNanos() / 1e3);
            }
            json.writeNumberField("pid", pid);
            json.writeNumberField("tid", e.threadId());
            if (e.phase() == 'C') {
                json.writeObjectFieldStart("args");
                json.writeNumberField(e.name(), e.value());
                json.writeEndObject();
            } else if (e.argName() != null) {
                json.writeObjectFieldStart("args");
                json.writeNumberField(e.argName(), e.argValue());
                json.writeEndObject();
            }
            json.writeEndObject();
        }
    }

    private static void writeMetadata(JsonGenerator json, String kind, int pid, long threadId, String name) throws IOException {
        json.writeStartObject();
        json.writeStringField("name", kind);
        json.writeStringField("ph", "M");
        json.writeNumberField("pid", pid);
        json.writeNumberField("tid", threadId);
        json.writeObjectFieldStart("args");
        json.writeStringField("name", name);
        json.writeEndObject();
        json.writeEndObject();
    }
}
