package dev.ember.sampling;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Rejection sampling of drafted tokens keeps the target's distribution: a token drafted from q and judged by
 * {@link Sampler#verifying} is distributed as the target's own draw from p, with temperature and top-k/top-p applied
 * to both; the same chi-square test catches two wrong acceptance rules (keep every draft; on rejection draw from p
 * instead of max(0, p - q)), so a pass means something.
 */
class SpeculativeSamplingTest {
    private static final int VOCAB = 10, DRAWS = 40_000;

    private static float[] logits(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] row = new float[VOCAB];
        for (int i = 0; i < VOCAB; i++) {
            row[i] = (float) (0.8 * random.nextGaussian());
        }
        return row;
    }

    private enum Rule { REJECTION_SAMPLING, KEEP_EVERY_DRAFT, REDRAW_FROM_TARGET }

    /** The kept tokens of {@link #DRAWS} drafts judged by {@code rule}, counted per token. */
    private static int[] counts(SamplingParams params, float[] target, float[] draft, Rule rule) {
        int[] counts = new int[VOCAB];
        SplittableRandom wrong = new SplittableRandom(5);
        for (int n = 0; n < DRAWS; n++) {
            Sampler sequence = new Sampler(params.withSeed(1000 + n), VOCAB);
            Sampler drafting = sequence.drafting();
            int d = drafting.sample(Arrays.copyOf(draft, VOCAB), 0);
            double[] q = drafting.lastDistribution();
            int kept = switch (rule) {
                case REJECTION_SAMPLING -> sequence.verifying(d, q).sample(Arrays.copyOf(target, VOCAB), 0);
                case KEEP_EVERY_DRAFT -> d;
                case REDRAW_FROM_TARGET -> {
                    double[] p = sequence.probabilities(Arrays.copyOf(target, VOCAB), 0);
                    yield wrong.nextDouble() * q[d] < p[d] ? d : sequence.sample(Arrays.copyOf(target, VOCAB), 0);
                }
            };
            counts[kept]++;
        }
        return counts;
    }

    @ParameterizedTest(name = "T={0} top-k={1} top-p={2}")
    @CsvSource({"1.0, 0, 1.0", "0.7, 6, 1.0", "1.3, 0, 0.9"})
    void keptTokensFollowTheTargetsDistributionAndWrongRulesAreCaught(float temperature, int topK, float topP) {
        SamplingParams params = SamplingParams.greedy(1).withTemperature(temperature).withTopK(topK).withTopP(topP);
        float[] target = logits(1), draft = logits(2);
        double[] p = new Sampler(params, VOCAB).probabilities(Arrays.copyOf(target, VOCAB), 0);
        double right = ChiSquare.overCritical(p, counts(params, target, draft, Rule.REJECTION_SAMPLING), DRAWS);
        assertTrue(right < 1, "rejection sampling: chi-square at " + right + " of its p = 0.001 critical value");
        for (Rule wrong : new Rule[] {Rule.KEEP_EVERY_DRAFT, Rule.REDRAW_FROM_TARGET}) {
            double ratio = ChiSquare.overCritical(p, counts(params, target, draft, wrong), DRAWS);
            assertTrue(ratio > 1, wrong + " should fail the same test: chi-square at " + ratio + " of the critical value");
        }
    }
}
