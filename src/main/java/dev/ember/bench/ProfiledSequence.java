package dev.ember.bench;

import dev.ember.backend.ModelRunner;
import dev.ember.backend.StageTotals;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.RequestListener;
import dev.ember.engine.StepObserver;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.ScheduledStep;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.trace.Trace;

import java.util.function.Consumer;

/**
 * One sequence through the engine one step at a time, each step awaited before the next is prepared, so that the
 * runner's stage profile ({@link ModelRunner#profileStages}) and the wall time of a phase are that phase's own: what
 * {@code bench stage} and {@code bench phase} time.
 */
final class ProfiledSequence {

    /** The prefill's wall time, and the mean wall time of a decode step, in milliseconds. */
    record Walls(double prefillMs, double decodeMsPerStep) {
    }

    private ProfiledSequence() {
    }

    /**
     * Prefills {@code prompt} in chunks of at most {@code chunkLen} tokens, then runs {@code decodeSteps} decode steps.
     * {@code totals} is reset at the start; once the prompt's last chunk is done, {@code atPrefillEnd} reads it and it is
     * reset again, so that at the end it holds the decode steps' stages.
     *
     * @param params how each token is picked; its max tokens must be {@code decodeSteps + 1} (the prefill picks one)
     */
    static Walls run(ModelRunner runner, int[] prompt, int chunkLen, int decodeSteps, SamplingParams params,
                     StageTotals totals, Consumer<StageTotals> atPrefillEnd, StepSpans spans, Trace trace) {
        if (params.maxTokens() != decodeSteps + 1) {
            throw new IllegalArgumentException("max tokens " + params.maxTokens() + " for " + decodeSteps + " decode steps");
        }
        LlmEngine engine = LlmEngine.tokensOnly(runner,
                new SchedulerConfig(1, chunkLen, chunkLen, SchedulePolicy.PREFILL_FIRST, false, false));
        engine.setTrace(trace);
        engine.add(prompt, params.withIgnoreEos(true), RequestListener.NONE);
        long[] phaseStart = {0};
        double[] prefillMs = {-1};
        engine.setObserver(new StepObserver() {
            @Override
            public void retired(ScheduledStep step) {
                ScheduledStep.Work w = step.work().getFirst();
                if (w.samples() && w.start() < prompt.length) {  // the prompt's last chunk, which picks the first token
                    long now = System.nanoTime();
                    prefillMs[0] = (now - phaseStart[0]) / 1e6;
                    atPrefillEnd.accept(totals);
                    totals.reset();
                    phaseStart[0] = now;
                }
            }
        });
        totals.reset();
        phaseStart[0] = System.nanoTime();
        while (engine.hasWork()) {
            String name = prefillMs[0] < 0 ? "prefill_chunk" : "decode_step";
            long span = spans.begin(name);
            engine.step();
            spans.end(name, span, "step", engine.steps());
        }
        return new Walls(prefillMs[0], (System.nanoTime() - phaseStart[0]) / 1e6 / decodeSteps);
    }
}
