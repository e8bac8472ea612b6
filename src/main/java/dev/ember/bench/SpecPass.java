package dev.ember.bench;

import dev.ember.Progress;
import dev.ember.backend.StepCounters;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.RequestListener;
import dev.ember.engine.Speculation;
import dev.ember.engine.StepObserver;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.ScheduledStep;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.scheduler.Sequence;
import dev.ember.scheduler.SpeculationStats;
import dev.ember.trace.TraceRecorder;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntFunction;

/**
 * One pass of {@code bench spec}'s requests through a fresh engine, plainly or speculating: each request added at its
 * arrival time (all at the start for a fixed count), the engine stepped until every one is done. Besides each request's
 * timings and tokens it keeps what speculation did, counted per verification as the steps retire (drafted and accepted
 * tokens by position, and the verifications that ended at a rejection, which the per-token acceptance alpha needs),
 * and where the steps' time went, from the engine's own spans and the runners' counters ({@link SpecStepTimes}):
 * drafting ({@code propose}), the target's computation ({@code await}) and the rest, the engine's host work. A greedy
 * draft's last step is awaited inside the target's {@code await}, since the verification takes its tokens on the
 * device: its time counts there.
 *
 * @param seconds       from the start to the last request's last token
 * @param ttftMs        per request, from its arrival to its first token
 * @param e2eMs         per request, from its arrival to its last token
 * @param tpotMs        per request with at least two tokens: the time between its first and last token over the tokens after the first
 * @param outputs       each request's generated tokens, in request order
 * @param rejections    verifications in which the target rejected a drafted token
 * @param plainDecodes  decodes of one sequence without a draft while speculating (the proposer had none, or the batch was above the limit)
 * @param times         where the engine steps' time went
 * @param trace         the pass's spans, where they were asked to be kept; else null
 */
record SpecPass(double seconds, long promptTokens, long generatedTokens, double[] ttftMs, double[] e2eMs, double[] tpotMs,
                List<int[]> outputs, long verifications, long proposed, long accepted, long rejections, long plainDecodes,
                long[] proposedAt, long[] acceptedAt, SpecStepTimes times, TraceRecorder trace) {

    /**
     * Runs {@code prompts} (arriving {@code arrivals} seconds after the start) with {@code params} per request through a
     * new engine of {@code bench} under {@code scheduler}, speculating with {@code speculation} unless it is null; keeps
     * the pass's spans if {@code keepTrace}.
     */
    static SpecPass run(BenchEngine bench, SchedulerConfig scheduler, Speculation speculation, List<int[]> prompts,
                        double[] arrivals, IntFunction<SamplingParams> params, String label, Progress progress,
                        boolean keepTrace) {
        LlmEngine engine = bench.newEngine(scheduler);
        TraceRecorder trace = new TraceRecorder();
        engine.setTrace(trace);
        if (speculation != null) {
            engine.speculate(speculation);
        }
        Verifications verifications = new Verifications();
        engine.setObserver(verifications);
        long expected = 0;
        for (int i = 0; i < prompts.size(); i++) {
            expected += params.apply(i).maxTokens();
        }
        Sequence[] sequences = new Sequence[prompts.size()];
        StepCounters targetBefore = bench.runner().counters();
        StepCounters draftBefore = speculation == null ? StepCounters.NONE : speculation.proposer().counters();
        long start = System.nanoTime();
        int next = 0;
        while (true) {
            long now = System.nanoTime();
            while (next < sequences.length && start + nanos(arrivals[next]) <= now) {
                sequences[next] = engine.add(prompts.get(next), params.apply(next), RequestListener.NONE);
                next++;
            }
            if (!engine.hasWork()) {
                if (next == sequences.length) {
                    break;
                }
                LockSupport.parkNanos(start + nanos(arrivals[next]) - now);
                continue;
            }
            engine.step();
            progress.update(label, engine.generatedTokens(), expected);
        }
        SpecStepTimes times = SpecStepTimes.of(trace, bench.runner().counters().minus(targetBefore),
                speculation == null ? StepCounters.NONE : speculation.proposer().counters().minus(draftBefore));
        BenchEngine.release(engine);
        long end = 0;
        long promptTokens = 0;
        long generated = 0;
        double[] ttft = new double[sequences.length];
        double[] e2e = new double[sequences.length];
        List<Double> tpot = new ArrayList<>();
        List<int[]> outputs = new ArrayList<>(sequences.length);
        for (int i = 0; i < sequences.length; i++) {
            Sequence s = sequences[i];
            long arrival = start + nanos(arrivals[i]);
            ttft[i] = (s.firstTokenNanos() - arrival) / 1e6;
            e2e[i] = (s.finishNanos() - arrival) / 1e6;
            if (s.generatedCount() > 1) {
                tpot.add((s.finishNanos() - s.firstTokenNanos()) / 1e6 / (s.generatedCount() - 1));
            }
            end = Math.max(end, s.finishNanos());
            promptTokens += s.promptLength();
            generated += s.generatedCount();
            outputs.add(s.generatedTokens());
        }
        if (generated != expected) {
            throw new IllegalStateException("the engine generated " + generated + " tokens where " + expected
                    + " were asked for with EOS ignored");
        }
        verifications.check(engine.scheduler().speculation());
        return new SpecPass((end - start) / 1e9, promptTokens, generated, ttft, e2e,
                tpot.stream().mapToDouble(Double::doubleValue).toArray(), outputs, verifications.count, verifications.proposed,
                verifications.accepted, verifications.rejections, verifications.plainDecodes,
                Arrays.copyOf(verifications.proposedAt, verifications.positions),
                Arrays.copyOf(verifications.acceptedAt, verifications.positions), times, keepTrace ? trace : null);
    }

    private static long nanos(double seconds) {
        return Math.round(seconds * 1e9);
    }

    /**
     * Counts each verification as its step retires: the tokens drafted, how many the sequence kept (it grew by those and
     * the target's own token), and whether a drafted token was rejected.
     */
    private static final class Verifications implements StepObserver {
        private final Map<Sequence, int[]> pending = new HashMap<>();
        long count;
        long proposed;
        long accepted;
        long rejections;
        long plainDecodes;
        long[] proposedAt = new long[8];
        long[] acceptedAt = new long[8];
        int positions;

        @Override
        public void submitted(ScheduledStep step) {
            for (ScheduledStep.Work w : step.work()) {
                if (w.drafted() > 0) {
                    pending.put(w.sequence(), new int[] {w.sequence().length(), w.drafted()});
                } else if (w.samples() && w.count() == 1 && w.start() >= w.sequence().promptLength()) {
                    plainDecodes++;
                }
            }
        }

        @Override
        public void retired(ScheduledStep step) {
            for (ScheduledStep.Work w : step.work()) {
                int[] before = pending.remove(w.sequence());
                if (before == null) {
                    continue;
                }
                int drafted = before[1];
                int kept = w.sequence().length() - before[0] - 1;
                count++;
                proposed += drafted;
                accepted += kept;
                if (kept < drafted) {
                    rejections++;
                }
                if (drafted > proposedAt.length) {
                    proposedAt = Arrays.copyOf(proposedAt, drafted);
                    acceptedAt = Arrays.copyOf(acceptedAt, drafted);
                }
                positions = Math.max(positions, drafted);
                for (int i = 0; i < drafted; i++) {
                    proposedAt[i]++;
                    acceptedAt[i] += i < kept ? 1 : 0;
                }
            }
        }

        /** The counts must be the scheduler's own. */
        void check(SpeculationStats stats) {
            if (stats.verifications() != count || stats.proposed() != proposed || stats.accepted() != accepted) {
                throw new IllegalStateException("verifications counted as the steps retired (" + count + ", " + proposed
                        + " drafted, " + accepted + " accepted) differ from the scheduler's (" + stats.verifications() + ", "
                        + stats.proposed() + ", " + stats.accepted() + ")");
            }
        }
    }
}
