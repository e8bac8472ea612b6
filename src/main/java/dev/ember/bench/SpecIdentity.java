package dev.ember.bench;

import dev.ember.backend.GreedyAgreement;
import dev.ember.backend.ModelRunner;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Whether each speculative run's outputs are the target's, request for request: checked for greedy runs beside a target
 * run, where speculative decoding must give the target's own tokens. Where a GPU rounds a verification chunk otherwise
 * than a decode step, a run may leave the target's tokens at a near-tie of its logits; that is reported, and only a
 * difference that is not a near-tie fails the benchmark ({@link GreedyAgreement}).
 *
 * @param notChecked why it was not checked, or null
 * @param judged     each speculative run beside the target's first run
 */
record SpecIdentity(String notChecked, List<Judged> judged, int requests) {

    /** One speculative run at {@code gamma} judged against the target's outputs. */
    record Judged(int gamma, GreedyAgreement agreement) {
    }

    static SpecIdentity of(SpecRuns plain, List<SpecRuns> measured, float temperature, ModelRunner target, List<int[]> prompts) {
        if (temperature > 0) {
            return new SpecIdentity("not checked (sampled at temperature " + temperature
                    + ": the same distribution, not the same tokens)", List.of(), 0);
        }
        if (plain == null) {
            return new SpecIdentity("not checked (no target run: --no-target)", List.of(), 0);
        }
        List<int[]> reference = plain.first().outputs();
        List<Judged> judged = new ArrayList<>();
        for (SpecRuns m : measured) {
            if (m.speculates()) {
                for (SpecPass p : m.passes()) {
                    judged.add(new Judged(m.gamma(), GreedyAgreement.judge(target, prompts, reference, p.outputs())));
                }
            }
        }
        return new SpecIdentity(null, List.copyOf(judged), reference.size());
    }

    /** Whether some run left the target's tokens other than at a near-tie: a defect, which fails the benchmark. */
    boolean differs() {
        return judged.stream().anyMatch(j -> !j.agreement().nearTiesOnly());
    }

    String firstDifference() {
        List<String> real = new ArrayList<>();
        for (Judged j : judged) {
            j.agreement().realDifferences().forEach(d -> real.add("gamma " + j.gamma() + ", " + d));
        }
        return real.isEmpty() ? "none" : real.getFirst() + (real.size() > 1 ? " (and " + (real.size() - 1) + " more)" : "");
    }

    /** Whether {@code m}'s outputs were the target's token for token, for its row: null where not checked. */
    Boolean of(SpecRuns m) {
        if (notChecked != null || !m.speculates()) {
            return null;
        }
        return judged.stream().filter(j -> j.gamma() == m.gamma()).allMatch(j -> j.agreement().differences().isEmpty());
    }

    String summary() {
        if (notChecked != null) {
            return notChecked;
        }
        if (judged.isEmpty()) {
            return "not checked (no speculative run: --no-speculative)";
        }
        if (differs()) {
            return "NO: " + firstDifference();
        }
        String runs = judged.size() == 1 ? "the speculative run" : "each of " + judged.size() + " speculative runs";
        int fewest = judged.stream().mapToInt(j -> j.agreement().identical()).min().orElse(requests);
        if (fewest == requests) {
            return "yes (" + requests + " of " + requests + " requests, greedy, in " + runs + ")";
        }
        double gap = judged.stream().mapToDouble(j -> j.agreement().largestRelativeGap()).max().orElse(0);
        return String.format(Locale.ROOT, "up to near-ties (at least %d of %d requests identical in %s; the others first "
                        + "differ where the target's two best logits are within %.1e of the largest, under the %.0e of a "
                        + "near-tie: a verification step rounds otherwise than a decode step)",
                fewest, requests, runs, gap, GreedyAgreement.NEAR_TIE);
    }
}
