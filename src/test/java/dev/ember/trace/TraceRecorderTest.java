package dev.ember.trace;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class TraceRecorderTest {

    @Test
    void offRecordsNothingAndReadsNoClock() {
        assertFalse(Trace.OFF.enabled());
        assertEquals(0, Trace.OFF.start());
        assertEquals(0, Trace.OFF.end(Trace.ENGINE, "x", 123));
    }

    @Test
    void writesChromeTraceEventsThatNestInTime(@TempDir Path dir) throws IOException, InterruptedException {
        TraceRecorder trace = new TraceRecorder();
        long outer = trace.start();
        long inner = trace.start();
        Thread.sleep(2);
        long next = trace.end(Trace.ENGINE, "prefill_chunk", inner, "tokens", 16);
        trace.end(Trace.ENGINE, "sample", next);
        trace.span(Trace.STAGE, "attention", inner, 1_000);
        trace.counter("power_w", 250.5);
        trace.counter("power_w", Double.NaN);
        trace.end(Trace.ENGINE, "generate", outer);
        Path file = dir.resolve("t.json");
        trace.write(file);

        JsonNode events = new ObjectMapper().readTree(file.toFile()).get("traceEvents");
        List<String> names = new ArrayList<>();
        JsonNode prefill = null;
        JsonNode generate = null;
        for (JsonNode e : events) {
            names.add(e.get("name").asText());
            if (e.get("name").asText().equals("prefill_chunk")) {
                prefill = e;
            }
            if (e.get("name").asText().equals("generate")) {
                generate = e;
            }
        }
        assertEquals(List.of("process_name", "thread_name", "prefill_chunk", "sample", "attention", "power_w", "generate"), names);
        assertEquals("X", prefill.get("ph").asText());
        assertEquals("engine", prefill.get("cat").asText());
        assertEquals(16, prefill.get("args").get("tokens").asInt());
        assertTrue(prefill.get("dur").asDouble() >= 2000, "at least the 2 ms slept, in microseconds");
        // The outer span holds the inner one, as Perfetto nests them.
        assertTrue(generate.get("ts").asDouble() <= prefill.get("ts").asDouble());
        assertTrue(generate.get("ts").asDouble() + generate.get("dur").asDouble()
                >= prefill.get("ts").asDouble() + prefill.get("dur").asDouble());
        JsonNode counter = events.get(5);
        assertEquals("C", counter.get("ph").asText());
        assertEquals(250.5, counter.get("args").get("power_w").asDouble());
    }

    @Test
    void writesSeveralRecordersAsNamedProcessesOnOneClock(@TempDir Path dir) throws IOException, InterruptedException {
        TraceRecorder first = new TraceRecorder();
        first.end(Trace.ENGINE, "engine_step", first.start());
        Thread.sleep(2);
        TraceRecorder second = new TraceRecorder();
        second.end(Trace.ENGINE, "engine_step", second.start());
        Path file = dir.resolve("passes.json");
        Map<String, TraceRecorder> passes = new LinkedHashMap<>();
        passes.put("target, run 1", first);
        passes.put("gamma 1, run 1", second);
        TraceRecorder.write(file, passes);

        JsonNode events = new ObjectMapper().readTree(file.toFile()).get("traceEvents");
        Map<Integer, String> processes = new LinkedHashMap<>();
        Map<Integer, JsonNode> steps = new LinkedHashMap<>();
        for (JsonNode e : events) {
            if (e.get("name").asText().equals("process_name")) {
                processes.put(e.get("pid").asInt(), e.get("args").get("name").asText());
            } else if (e.get("name").asText().equals("engine_step")) {
                steps.put(e.get("pid").asInt(), e);
            }
        }
        assertEquals(Map.of(1, "target, run 1", 2, "gamma 1, run 1"), processes);
        // One clock from the first recorder's creation: the second's span starts at least the 2 ms slept later.
        assertTrue(steps.get(1).get("ts").asDouble() >= 0);
        assertTrue(steps.get(2).get("ts").asDouble() >= steps.get(1).get("ts").asDouble() + 2000, steps.toString());
    }
}
