package dev.ember.backend;

import dev.ember.Numerics;
import dev.ember.Progress;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GreedyAgreementTest {
    private static final int GENERATED = 48;

    @Test
    void judgesNearTiesFromRealDifferencesByTheTargetsLogits() throws Exception {
        try (Model model = ModelLoader.load(Path.of("models", "ember-tiny"));
             ModelRunner runner = new CpuBackend(2).load(model, KvCacheSpec.forTokens(model.config(), 256, 16), Progress.NONE)) {
            Random random = new Random(7);
            int[] prompt = random.ints(12, 3, model.config().vocabSize()).toArray();
            int[] greedy = new int[GENERATED];
            float[][] logits = new float[GENERATED][];
            for (int t = 0; t < GENERATED; t++) {
                logits[t] = GreedyAgreement.logitsAfter(runner, prompt, Arrays.copyOf(greedy, t));
                greedy[t] = Numerics.argmax(logits[t], 0, logits[t].length);
            }
            // The closest runner-up over the run: a near-tie under bf16's tolerance somewhere in 48 tokens of a
            // 4096-entry vocabulary; and the least likely token at another position: never one.
            int tiePosition = -1, tieToken = -1;
            double closest = Double.MAX_VALUE;
            for (int t = 0; t < GENERATED; t++) {
                int second = secondBest(logits[t], greedy[t]);
                double gap = (logits[t][greedy[t]] - logits[t][second]) / maxAbs(logits[t]);
                if (gap < closest) {
                    closest = gap;
                    tiePosition = t;
                    tieToken = second;
                }
            }
            assertTrue(closest <= GreedyAgreement.NEAR_TIE, "no near-tie in " + GENERATED + " tokens: closest " + closest);
            int[] nearTie = Arrays.copyOf(greedy, GENERATED);
            nearTie[tiePosition] = tieToken;
            int wrongAt = tiePosition == 5 ? 6 : 5;
            int[] wrong = Arrays.copyOf(greedy, GENERATED);
            wrong[wrongAt] = argmin(logits[wrongAt]);

            GreedyAgreement agreement = GreedyAgreement.judge(runner, List.of(prompt, prompt, prompt, prompt),
                    List.of(greedy, greedy, greedy, greedy),
                    List.of(greedy.clone(), nearTie, wrong, Arrays.copyOf(greedy, 20)));

            assertEquals(4, agreement.requests());
            assertEquals(1, agreement.identical());
            assertEquals(3, agreement.differences().size());
            GreedyAgreement.Difference tie = agreement.differences().get(0);
            assertEquals(1, tie.request());
            assertEquals(tiePosition, tie.token());
            assertEquals(greedy[tiePosition], tie.expected());
            assertEquals(tieToken, tie.actual());
            assertTrue(tie.nearTie(), tie.toString());
            assertEquals(closest, tie.relativeGap(), 1e-6);
            GreedyAgreement.Difference real = agreement.differences().get(1);
            assertEquals(wrongAt, real.token());
            assertFalse(real.nearTie(), real.toString());
            GreedyAgreement.Difference stopped = agreement.differences().get(2);
            assertEquals(20, stopped.token());
            assertFalse(stopped.nearTie(), "a run that stopped early is never a near-tie");
            assertFalse(agreement.nearTiesOnly());
            assertEquals(List.of(real, stopped), agreement.realDifferences());
        }
    }

    private static int argmin(float[] v) {
        int worst = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] < v[worst]) {
                worst = i;
            }
        }
        return worst;
    }

    private static int secondBest(float[] v, int best) {
        int second = best == 0 ? 1 : 0;
        for (int i = 0; i < v.length; i++) {
            if (i != best && v[i] > v[second]) {
                second = i;
            }
        }
        return second;
    }

    private static double maxAbs(float[] v) {
        double m = 0;
        for (float x : v) {
            m = Math.max(m, Math.abs(x));
        }
        return m;
    }
}
