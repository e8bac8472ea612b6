package dev.ember.backend.cuda;

import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.kvcache.BlockTable;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two ways of running the same greedy requests, judged by margins: in bf16 a step of another shape (another batch, a
 * verification chunk instead of a decode) may round differently and flip a choice between two near-equal logits. So the
 * runs must agree token for token until a request's first difference, and there the two tokens must be a near-tie of
 * the reference: their logits, recomputed for the reference's prefix, within the bf16 tolerance of the whole-model
 * checks (2e-2 of the largest logit). A real bug (a wrong carried token, a stale cache block, a wrong acceptance)
 * makes tokens differ by far more.
 */
final class GreedyRuns {
    private GreedyRuns() {
    }

    /** Checks {@code other} against {@code reference} request by request; returns how many are identical. */
    static int assertSameUpToNearTies(String what, ModelRunner runner, int[][] prompts, int[][] reference, int[][] other) {
        int identical = 0;
        for (int i = 0; i < reference.length; i++) {
            int d = Arrays.mismatch(reference[i], other[i]);
            if (d < 0) {
                identical++;
                continue;
            }
            assertTrue(d < reference[i].length && d < other[i].length, what + ": request " + i + " stopped early");
            float[] logits = lastLogits(runner, prompts[i], Arrays.copyOf(reference[i], d));
            float scale = 0;
            for (float l : logits) {
                scale = Math.max(scale, Math.abs(l));
            }
            float gap = Math.abs(logits[reference[i][d]] - logits[other[i][d]]);
            System.out.printf("[gpu-check] %s: request %d differs at token %d (%d vs %d), a logit gap of %.2e "
                    + "(%.2e of the largest logit)%n", what, i, d, reference[i][d], other[i][d], gap, gap / scale);
            assertTrue(gap <= 2e-2 * scale, what + ": request " + i + " differs at token " + d + " by a logit gap of " + gap
                    + ", more than the bf16 tolerance of " + 2e-2 * scale + ": not a near-tie");
        }
        System.out.printf("[gpu-check] %s: %d of %d requests identical, the others up to a near-tie%n", what, identical,
                reference.length);
        return identical;
    }

    /** The logits after {@code prompt} and {@code generated}, computed in one prefill step. */
    private static float[] lastLogits(ModelRunner runner, int[] prompt, int[] generated) {
        int[] tokens = Arrays.copyOf(prompt, prompt.length + generated.length);
        System.arraycopy(generated, 0, tokens, prompt.length, generated.length);
        BlockTable table = runner.blockAllocator().newTable();
        try {
            table.reserveOrFail(tokens.length, runner.blockAllocator());
            float[] logits = new float[runner.config().vocabSize()];
            runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(tokens, 0, table)), logits);
            return logits;
        } finally {
            table.release(runner.blockAllocator());
        }
    }
}
