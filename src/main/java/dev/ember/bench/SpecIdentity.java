package dev.ember.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Whether each speculative run's outputs are the target's, request for request: checked for greedy runs beside a
 * target run, where speculative decoding must give the target's own tokens.
 *
 * @param notChecked  why it was not checked, or null
 * @param differences where a speculative run's output first left the target's, one entry a request and run
 */
record SpecIdentity(String notChecked, List<String> differences, int requests, int runs) {

    static SpecIdentity of(SpecRuns plain, List<SpecRuns> measured, float temperature) {
        if (temperature > 0) {
            return new SpecIdentity("not checked (sampled at temperature " + temperature
                    + ": the same distribution, not the same tokens)", List.of(), 0, 0);
        }
        if (plain == null) {
            return new SpecIdentity("not checked (no target run: --no-target)", List.of(), 0, 0);
        }
        List<int[]> reference = plain.first().outputs();
        List<String> differences = new ArrayList<>();
        int runs = 0;
        for (SpecRuns m : measured) {
            if (!m.speculates()) {
                continue;
            }
            for (SpecPass p : m.passes()) {
                runs++;
                for (int i = 0; i < reference.size(); i++) {
                    int at = Arrays.mismatch(reference.get(i), p.outputs().get(i));
                    if (at >= 0) {
                        differences.add("gamma " + m.gamma() + ", request " + (i + 1) + " from its token " + (at + 1));
                    }
                }
            }
        }
        return new SpecIdentity(null, differences, reference.size(), runs);
    }

    boolean differs() {
        return !differences.isEmpty();
    }

    String firstDifference() {
        return differences.getFirst() + (differences.size() > 1 ? " (and " + (differences.size() - 1) + " more)" : "");
    }

    /** Whether {@code m}'s outputs were the target's, for its row: null where not checked. */
    Boolean of(SpecRuns m) {
        if (notChecked != null || !m.speculates()) {
            return null;
        }
        return differences.stream().noneMatch(d -> d.startsWith("gamma " + m.gamma() + ","));
    }

    String summary() {
        if (notChecked != null) {
            return notChecked;
        }
        if (runs == 0) {
            return "not checked (no speculative run: --no-speculative)";
        }
        return differs() ? "NO: " + firstDifference()
                : "yes (" + requests + " of " + requests + " requests, greedy, in " + (runs == 1 ? "the speculative run"
                : "each of " + runs + " speculative runs") + ")";
    }
}
