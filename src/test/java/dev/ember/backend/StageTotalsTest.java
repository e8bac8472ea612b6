package dev.ember.backend;

import dev.ember.nativelib.Nvtx;
import dev.ember.trace.Trace;
import dev.ember.trace.TraceRecorder;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Stage totals sum what they are told, per stage and per layer, and hand a recording trace every span and layer. */
class StageTotalsTest {

    @Test
    void sumsStagesAndLayersAndTracesEachSpanWithItsLayer() {
        TraceRecorder trace = new TraceRecorder();
        StageTotals totals = new StageTotals(trace, Nvtx.OFF);
        // One step: an embedding, two layers of two stages each, the output projection; start times on nanoTime's clock.
        totals.add(Stage.EMBEDDING, StageClock.NO_LAYER, 1_000, 100);
        totals.add(Stage.ATTENTION, 0, 1_100, 300);
        totals.add(Stage.FFN, 0, 1_400, 200);
        totals.add(Stage.ATTENTION, 1, 1_600, 310);
        totals.add(Stage.FFN, 1, 1_910, 190);
        totals.add(Stage.LM_HEAD, StageClock.NO_LAYER, 2_100, 400);

        assertEquals(610e-6, totals.millis(Stage.ATTENTION), 1e-12);
        assertEquals(500e-6, totals.layerMillis(0), 1e-12);
        assertEquals(500e-6, totals.layerMillis(1), 1e-12);
        assertEquals(2, totals.layers());
        assertFalse(totals.measured(Stage.SAMPLING));
        assertEquals(1500e-6, totals.totalMillis(), 1e-12);

        List<TraceRecorder.Event> events = trace.events();
        assertTrue(events.stream().allMatch(e -> e.category().equals(Trace.STAGE) && e.phase() == 'X'));
        assertEquals(List.of("embedding", "attention", "ffn", "layer 0", "attention", "ffn", "layer 1", "lm_head"),
                events.stream().map(TraceRecorder.Event::name).toList(), "a layer's span once its last stage is in");
        TraceRecorder.Event layer1 = events.get(6);
        assertEquals(1_600, layer1.startNanos());
        assertEquals(500, layer1.durationNanos(), "from its first stage's start to its last one's end");
        assertEquals("layer", layer1.argName());
        assertEquals(1, layer1.argValue());
        TraceRecorder.Event ffn0 = events.get(2);
        assertEquals(1_400, ffn0.startNanos());
        assertEquals(200, ffn0.durationNanos());
        assertEquals(0, ffn0.argValue());
        assertNull(events.getFirst().argName(), "outside the layers a stage has no layer");
    }

    @Test
    void untracedTotalsRecordNoSpansAndResetToUnmeasured() {
        StageTotals totals = new StageTotals();
        assertSame(Nvtx.OFF, totals.nvtx());
        totals.add(Stage.RMSNORM, 3, 0, 50);
        assertEquals(4, totals.layers());
        assertEquals(50e-6, totals.layerMillis(3), 1e-12);
        assertEquals(0, totals.layerMillis(2));
        totals.reset();
        assertFalse(totals.measured(Stage.RMSNORM));
        assertEquals(0, totals.layers());
        assertThrows(IllegalStateException.class, () -> StageProfile.OFF.add(Stage.FFN, 0, 0, 1));
    }

    @Test
    void theHostClockReportsTheTimeBetweenMarksToTheStageAndLayerCurrentAtTheFirst() {
        TraceRecorder trace = new TraceRecorder();
        StageTotals totals = new StageTotals(trace, Nvtx.OFF);
        StageClock clock = StageClock.onHost(totals);
        assertSame(StageClock.OFF, StageClock.onHost(StageProfile.OFF));
        clock.enter(Stage.EMBEDDING);
        clock.layer(0);
        clock.enter(Stage.FFN);
        clock.layer(StageClock.NO_LAYER);
        clock.enter(Stage.LM_HEAD);
        clock.end();
        clock.end();  // a second end marks nothing
        List<TraceRecorder.Event> events = trace.events();
        // A stage current at a layer mark goes on in the new layer (or after the layers) until the next stage begins.
        assertEquals(List.of("embedding", "embedding", "ffn", "layer 0", "ffn", "lm_head"),
                events.stream().map(TraceRecorder.Event::name).toList());
        for (int i = 1; i < events.size(); i++) {
            TraceRecorder.Event before = events.get(i - 1), e = events.get(i);
            if (!e.name().startsWith("layer") && !before.name().startsWith("layer")) {
                assertEquals(before.startNanos() + before.durationNanos(), e.startNanos(), "contiguous: " + e);
            }
        }
        assertEquals(0, events.get(1).argValue());
        assertTrue(totals.measured(Stage.LM_HEAD));
        assertEquals(1, totals.layers());
    }
}
