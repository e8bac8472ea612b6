package dev.ember.bench;

import dev.ember.backend.StepCounters;
import dev.ember.trace.Trace;
import dev.ember.trace.TraceRecorder;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@code bench spec}'s step times, from spans laid out by hand. */
class SpecStepTimesTest {

    private static void span(TraceRecorder trace, String name, long from, long to) {
        trace.span(Trace.ENGINE, name, from, to - from);
    }

    @Test
    void aRoundSplitsIntoAwaitsAndHostTimeAndCountsOnlyTheHostTimeWithNothingInFlightAsIdle() {
        TraceRecorder trace = new TraceRecorder();
        // A speculative round: two draft steps chained (the second built and submitted while the first runs), then the
        // verification submitted and awaited.
        span(trace, "draft_prepare", 1000, 1010);
        span(trace, "draft_chunks", 1010, 1020);
        span(trace, "draft_submit", 1020, 1030);
        span(trace, "draft_chunks", 1030, 1040);
        span(trace, "draft_submit", 1040, 1045);
        span(trace, "draft_await", 1045, 1100);
        span(trace, "draft_await", 1100, 1120);
        span(trace, "propose", 1000, 1150);
        span(trace, "schedule", 1150, 1160);
        span(trace, "submit", 1160, 1180);
        span(trace, "await", 1180, 1280);
        span(trace, "retire", 1280, 1295);
        span(trace, "engine_step", 1000, 1300);
        // Two overlapped steps of the target: the first leaves its step in flight, the second submits another before
        // awaiting it.
        span(trace, "schedule", 1400, 1405);
        span(trace, "submit", 1405, 1420);
        span(trace, "engine_step", 1400, 1500);
        span(trace, "schedule", 1600, 1605);
        span(trace, "submit", 1605, 1620);
        span(trace, "await", 1620, 1650);
        span(trace, "retire", 1650, 1660);
        span(trace, "engine_step", 1600, 1700);
        // Not the engine's: left out.
        trace.span(Trace.STAGE, "await", 1300, 50);
        StepCounters target = new StepCounters(3, 2, 0, 0, 0, 30, 0, 12, 0, 0);

        SpecStepTimes t = SpecStepTimes.of(trace, target, StepCounters.NONE);
        assertEquals(3, t.steps());
        assertEquals(300 + 100 + 100, t.stepNanos());
        assertEquals(150, t.draftNanos());
        assertEquals(100 + 30, t.targetNanos());
        assertEquals(55 + 20, t.draftAwaitNanos());
        assertEquals(10 + 5 + 5, t.scheduleNanos());
        assertEquals(20 + 15 + 15, t.submitNanos());
        assertEquals(15 + 10, t.retireNanos());
        assertEquals(500 - 130 - 75, t.hostNanos());
        assertEquals(150 - 75, t.draftHostNanos());
        assertEquals(t.hostNanos() - 20 - 75 - 50 - 25, t.otherHostNanos());
        // The round: up to the first draft submit's end, from the last draft await's end to the verification's submit's
        // end, and after its await (the second draft step's 15 ns of building and submitting ran beside the first's).
        // The first target step: up to its submit's end; the second: nothing, a step is in flight throughout.
        assertEquals(30 + 60 + 20 + 20, t.idleNanos());
        assertEquals(target, t.target());
    }

    @Test
    void aDraftStepAwaitedInsideTheTargetsAwaitCountsAsTheTargets() {
        TraceRecorder trace = new TraceRecorder();
        // A greedy round: the draft's last step left on the device, awaited after the verification's tokens.
        span(trace, "draft_submit", 1000, 1010);
        span(trace, "draft_submit", 1010, 1020);
        span(trace, "draft_await", 1020, 1050);
        span(trace, "propose", 1000, 1050);
        span(trace, "submit", 1050, 1060);
        span(trace, "draft_await", 1150, 1155);
        span(trace, "await", 1060, 1160);
        span(trace, "retire", 1160, 1170);
        span(trace, "engine_step", 1000, 1200);

        SpecStepTimes t = SpecStepTimes.of(trace, StepCounters.NONE, StepCounters.NONE);
        assertEquals(50, t.draftNanos());
        assertEquals(100, t.targetNanos());
        assertEquals(30, t.draftAwaitNanos());
        assertEquals(200 - 100 - 30, t.hostNanos());
        // Up to the first draft submit's end, after the verification's await; in flight in between.
        assertEquals(10 + 40, t.idleNanos());
    }
}
