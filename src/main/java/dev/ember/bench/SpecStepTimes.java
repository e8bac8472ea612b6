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
 * the device waits for, except where a draft step is built and submitted while the one before it runs, or the draft's
 * catch-up (queued behind a verification, {@code draft_catch_up} inside the engine's {@code submit}) runs while the host
 * judges the verification; {@link #idleNanos} counts only the host time with no submitted step of either runner left
 * to await.
 *
 * @param steps           engine steps ({@code engine_step} spans)
 * @param stepNanos       time in them
 * @param draftNanos      of it, drafting ({@code propose}), the draft's awaits included
 * @param targetNanos     of it, awaiting the target's steps ({@code await}); a greedy draft's last step, which the
 *                        verification takes on the device, is awaited inside it and counts here
 * @param draftAwaitNanos of the drafting, awaiting the draft's steps ({@code draft_await} outside the target's {@code await})
 * @param scheduleNanos   of it, scheduling ({@code schedule})
 * @param submitNanos     of it, submitting the target's steps ({@code submit}: samplers, the runner's submit, the
 *                        draft's catch-up behind a verification)
 * @param retireNanos     of it, retiring the target's tokens after its await ({@code retire}: the scheduler's update, listeners)
 * @param idleNanos       of it, host time with no step submitted and not awaited: from an await's end to the next
 *                        submit's end, so each submit's own preparation and launch is in it
 * @param target          the target runner's counters over the pass ({@link StepCounters#NONE} where it counts nothing)
 * @param draft           the draft runner's ({@link StepCounters#NONE} without a draft model, or where it counts nothing)
 */
record SpecStepTimes(long steps, long stepNanos, long draftNanos, long targetNanos, long draftAwaitNanos, long scheduleNanos,
                     long submitNanos, long retireNanos, long idleNanos, StepCounters target, StepCounters draft) {
    private static final String STEP = "engine_step";
    private static final List<String> SUBMITS = List.of("submit", "draft_submit", "draft_catch_up");
    private static final List<String> AWAITS = List.of("await", "draft_await");

    /** The pass's figures from the spans {@code trace} recorded and the runners' counters over it. */
    static SpecStepTimes of(TraceRecorder trace, StepCounters target, StepCounters draft) {
        long steps = 0;
        long[] nanos = new long[7];
        List<String> names = List.of(STEP, "propose", "await", "draft_await", "schedule", "submit", "retire");
        List<long[]> points = new ArrayList<>();  // {time, kind}: 0 a step begins, 1 a submit ends, 2 an await ends, 3 a step ends
        List<long[]> targetAwaits = new ArrayList<>();  // {start, end} of each await of the target
        for (TraceRecorder.Event e : trace.events()) {
            if (e.phase() == 'X' && e.category().equals(Trace.ENGINE) && e.name().equals("await")) {
                targetAwaits.add(new long[] {e.startNanos(), e.startNanos() + e.durationNanos()});
            }
        }
        targetAwaits.sort(Comparator.comparingLong(a -> a[0]));
        for (TraceRecorder.Event e : trace.events()) {
            int i = names.indexOf(e.name());
            if (e.phase() != 'X' || !e.category().equals(Trace.ENGINE)) {
                continue;
            }
            if (i == 3 && within(targetAwaits, e)) {
                i = -1;  // a draft step awaited inside the target's await: its time is in the target's
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

    /** Whether {@code e} lies inside one of {@code intervals} ({start, end}, sorted by start, not overlapping). */
    private static boolean within(List<long[]> intervals, TraceRecorder.Event e) {
        int lo = 0, hi = intervals.size() - 1, last = -1;  // the last interval starting at or before e
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (intervals.get(mid)[0] <= e.startNanos()) {
                last = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return last >= 0 && e.startNanos() + e.durationNanos() <= intervals.get(last)[1];
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
