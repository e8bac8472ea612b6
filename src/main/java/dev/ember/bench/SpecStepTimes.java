package dev.ember.bench;

import dev.ember.backend.StepCounters;
import dev.ember.trace.Trace;
import dev.ember.trace.TraceRecorder;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Where one {@code bench spec} pass's engine steps spent their time, summed from the engine's spans ({@link Trace#ENGINE},
 * {@code LlmEngine.setTrace}, {@code DraftModelProposer}) and the runners' own counters. A step's time is the
 * target's await, the draft's awaits and the rest, the host's: scheduling, drafting outside the draft's awaits
 * (preparing its chunks, submitting its steps), submitting the target's step, retiring its tokens, and what lies
 * between those spans. Where a step drafts, the engine does not overlap it with the next, so the host's time is what
 * the device waits for, except where a draft step is built and submitted while the one before it runs; {@link #idleNanos}
 * counts only the host time with no submitted step of either runner left to await.
 *
 * @param steps           engine steps ({@code engine_step} spans)
 * @param stepNanos       time in them
 * @param draftNanos      of it, drafting ({@code propose}), the draft's awaits included
 * @param targetNanos     of it, awaiting the target's steps ({@code await})
 * @param draftAwaitNanos of the drafting, awaiting the draft's steps ({@code draft_await})
 * @param scheduleNanos   of it, scheduling ({@code schedule})
 * @param submitNanos     of it, submitting the target's steps ({@code submit}: samplers, the runner's submit)
 * @param retireNanos     of it, retiring the target's tokens after its await ({@code retire}: the scheduler's update, listeners)
 * @param idleNanos       of it, host time with no step submitted and not awaited: from an await's end to the next
 *                        submit's end, so each submit's own preparation and launch is in it
 * @param target          the target runner's counters over the pass ({@link StepCounters#NONE} where it counts nothing)
 * @param draft           the draft runner's ({@link StepCounters#NONE} without a draft model, or where it counts nothing)
 */
record SpecStepTimes(long steps, long stepNanos, long draftNanos, long targetNanos, long draftAwaitNanos, long scheduleNanos,
                     long submitNanos, long retireNanos, long idleNanos, StepCounters target, StepCounters draft) {
    private static final String STEP = "engine_step";
    private static final List<String> SUBMITS = List.of("submit", "draft_submit");
    private static final List<String> AWAITS = List.of("await", "draft_await");

    /** The pass's figures from the spans {@code trace} recorded and the runners' counters over it. */
    static SpecStepTimes of(TraceRecorder trace, StepCounters target, StepCounters draft) {
        long steps = 0;
        long[] nanos = new long[7];
        List<String> names = List.of(STEP, "propose", "await", "draft_await", "schedule", "submit", "retire");
        List<long[]> points = new ArrayList<>();  // {time, kind}: 0 a step begins, 1 a submit ends, 2 an await ends, 3 a step ends
        for (TraceRecorder.Event e : trace.events()) {
            int i = names.indexOf(e.name());
            if (e.phase() != 'X' || !e.category().equals(Trace.ENGINE)) {
                continue;
            }
            if (i >= 0) {
                nanos[i] += e.durationNanos();
            }
            long end = e.startNanos() + e.durationNanos();
            if (i == 0) {
                steps++;
                points.add(new long[] {e.startNanos(), 0});
                points.add(new long[] {end, 3});
            } else if (SUBMITS.contains(e.name())) {
                points.add(new long[] {end, 1});
            } else if (AWAITS.contains(e.name())) {
                points.add(new long[] {end, 2});
            }
        }
        return new SpecStepTimes(steps, nanos[0], nanos[1], nanos[2], nanos[3], nanos[4], nanos[5], nanos[6], idle(points),
                target, draft);
    }

    /** Time inside steps with nothing in flight, over the points of {@link #of} (a step's end after what ends with it). */
    private static long idle(List<long[]> points) {
        points.sort(Comparator.<long[]>comparingLong(p -> p[0]).thenComparingLong(p -> p[1]));
        long idle = 0, last = 0;
        int inFlight = 0;
        boolean inStep = false;
        for (long[] p : points) {
            if (inStep && inFlight == 0) {
                idle += p[0] - last;
            }
            last = p[0];
            switch ((int) p[1]) {
                case 0 -> inStep = true;
                case 1 -> inFlight++;
                case 2 -> inFlight = Math.max(0, inFlight - 1);
                default -> inStep = false;
            }
        }
        return idle;
    }

    /** Step time outside the runners' awaits: the host's own. */
    long hostNanos() {
        return stepNanos - targetNanos - draftAwaitNanos;
    }

    /** Drafting outside the draft's awaits. */
    long draftHostNanos() {
        return draftNanos - draftAwaitNanos;
    }

    /** Host time in none of the spans of scheduling, drafting, submitting and retiring. */
    long otherHostNanos() {
        return hostNanos() - scheduleNanos - draftHostNanos() - submitNanos - retireNanos;
    }
}
