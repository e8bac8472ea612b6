package dev.ember.backend.cuda;

import dev.ember.backend.GreedyAgreement;
import dev.ember.backend.ModelRunner;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Two ways of running the same greedy requests on the GPU, judged by margins ({@link GreedyAgreement}). */
final class GreedyRuns {
    private GreedyRuns() {
    }

    /** Checks {@code other} against {@code reference} request by request; returns how many are identical. */
    static int assertSameUpToNearTies(String what, ModelRunner runner, int[][] prompts, int[][] reference, int[][] other) {
        GreedyAgreement agreement = GreedyAgreement.judge(runner, Arrays.asList(prompts), Arrays.asList(reference),
                Arrays.asList(other));
        for (GreedyAgreement.Difference d : agreement.differences()) {
            System.out.printf("[gpu-check] %s: %s%n", what, d);
        }
        assertTrue(agreement.nearTiesOnly(), what + ": not near-ties: " + agreement.realDifferences());
        System.out.printf("[gpu-check] %s: %d of %d requests identical, the others up to a near-tie%n", what,
                agreement.identical(), agreement.requests());
        return agreement.identical();
    }
}
