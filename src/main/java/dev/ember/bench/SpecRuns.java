package dev.ember.bench;

import dev.ember.backend.StepCounters;
import dev.ember.cli.Stats;

import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import java.util.function.ToLongFunction;

/**
 * What one kind of {@code bench spec} run measured over its timed runs: the target alone ({@code gamma} null), or
 * speculation at one gamma. Durations are medians over the runs; per-request figures are pooled over them; counts of
 * drafted and accepted tokens are summed.
 */
record SpecRuns(String mode, String draft, Integer gamma, List<SpecPass> passes) {
    boolean speculates() {
        return gamma != null;
    }

    SpecPass first() {
        return passes.getFirst();
    }

    double seconds() {
        return Stats.of(passes.stream().mapToDouble(SpecPass::seconds).toArray()).median();
    }

    /** Generated tokens per second of the median run. */
    double throughput() {
        return first().generatedTokens() / seconds();
    }

    double mean(Function<SpecPass, double[]> samples) {
        return Stats.of(pooled(samples)).mean();
    }

    double quantile(Function<SpecPass, double[]> samples, double q) {
        return Stats.quantile(pooled(samples), q);
    }

    private double[] pooled(Function<SpecPass, double[]> samples) {
        return passes.stream().flatMapToDouble(p -> Arrays.stream(samples.apply(p))).toArray();
    }

    long sum(ToLongFunction<SpecPass> count) {
        return passes.stream().mapToLong(count).sum();
    }

    /** Accepted over drafted tokens, as vLLM and {@code SpeculationStats} count it. */
    double acceptanceRate() {
        return ratio(sum(SpecPass::accepted), sum(SpecPass::proposed));
    }

    /**
     * Leviathan's alpha, the chance that a drafted token is accepted when those before it were: accepted tokens over the
     * tokens judged (the accepted ones and the one rejected in each verification that rejected one). The acceptance rate
     * is lower, since it counts the drafted tokens after a rejection, which nobody judged, as not accepted.
     */
    double alpha() {
        return ratio(sum(SpecPass::accepted), sum(SpecPass::accepted) + sum(SpecPass::rejections));
    }

    /** Tokens a verification adds, the target's own included. */
    double meanAcceptedLength() {
        return ratio(sum(SpecPass::accepted) + sum(SpecPass::verifications), sum(SpecPass::verifications));
    }

    double[] acceptanceByPosition() {
        int n = passes.stream().mapToInt(p -> p.proposedAt().length).max().orElse(0);
        double[] rates = new double[n];
        for (int i = 0; i < n; i++) {
            int at = i;
            rates[i] = ratio(sum(p -> at < p.acceptedAt().length ? p.acceptedAt()[at] : 0),
                    sum(p -> at < p.proposedAt().length ? p.proposedAt()[at] : 0));
        }
        return rates;
    }

    /** The percentage of the engine's step time spent in {@code part}. */
    double share(ToLongFunction<SpecStepTimes> part) {
        return 100 * ratio(times(part), times(SpecStepTimes::stepNanos));
    }

    /** The percentage of the engine's step time neither drafting nor awaiting the target: its own host work. */
    double hostShare() {
        return 100 * ratio(times(SpecStepTimes::stepNanos) - times(SpecStepTimes::draftNanos) - times(SpecStepTimes::targetNanos),
                times(SpecStepTimes::stepNanos));
    }

    /** Microseconds of {@code part} per engine step, over every run. */
    double microsPerStep(ToLongFunction<SpecStepTimes> part) {
        return ratio(times(part), times(SpecStepTimes::steps)) / 1e3;
    }

    /**
     * Microseconds of {@code part} of a runner's counters ({@code runner} picks the target's or the draft's) per engine
     * step, over every run; null where that runner counted no step (the CPU's counts nothing; no draft model).
     */
    Double runnerMicrosPerStep(Function<SpecStepTimes, StepCounters> runner, ToLongFunction<StepCounters> part) {
        if (times(t -> runner.apply(t).steps()) == 0) {
            return null;
        }
        return microsPerStep(t -> part.applyAsLong(runner.apply(t)));
    }

    /** A runner's count {@code part} summed over every run; null where that runner counted no step. */
    Long runnerCount(Function<SpecStepTimes, StepCounters> runner, ToLongFunction<StepCounters> part) {
        if (times(t -> runner.apply(t).steps()) == 0) {
            return null;
        }
        return times(t -> part.applyAsLong(runner.apply(t)));
    }

    private long times(ToLongFunction<SpecStepTimes> part) {
        return sum(p -> part.applyAsLong(p.times()));
    }

    private static double ratio(double a, double b) {
        return b == 0 ? Double.NaN : a / b;
    }
}
