package dev.ember.backend;

import dev.ember.kvcache.BlockTable;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Two greedy runs of the same requests judged by margins. In bf16 on a GPU a step of another shape (another batch, a
 * verification chunk instead of a decode) sums in another order and may flip a choice between two near-equal logits,
 * after which the runs go their own ways. So the runs must agree token for token up to a request's first difference,
 * and there the two tokens must be a near-tie of the reference: their logits, recomputed for the reference's prefix in
 * one prefill step, within {@link #NEAR_TIE} of the largest logit (the tolerance of the whole-model checks against HF
 * transformers). A real bug (a wrong carried token, a stale cache block, a wrong acceptance) makes tokens differ by far
 * more. On the CPU backend the runs are identical: there every row is computed alone, whatever the step's shape.
 *
 * @param requests    requests compared
 * @param differences each request's first difference, in request order
 */
public record GreedyAgreement(int requests, List<Difference> differences) {
    /** The largest logit gap, relative to the largest logit, that counts as a near-tie. */
    public static final double NEAR_TIE = 2e-2;

    /**
     * Where request {@code request}'s run first left the reference: at generated token {@code token} (0-based), the
     * reference chose {@code expected} and the run {@code actual}; {@code gap} is the difference of their logits for the
     * reference's prefix and {@code scale} the largest logit's magnitude there.
     */
    public record Difference(int request, int token, int expected, int actual, float gap, float scale) {
        public boolean nearTie() {
            return gap <= NEAR_TIE * scale;
        }

        public double relativeGap() {
            return scale == 0 ? Double.POSITIVE_INFINITY : gap / scale;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "request %d at token %d (%d instead of %d, a logit gap of %.1e of the largest logit)",
                    request + 1, token + 1, actual, expected, relativeGap());
        }
    }

    /**
     * Compares {@code other} with {@code reference} (generated tokens per request, after {@code prompts}), recomputing the
     * logits at each first difference with {@code runner}. A run that stopped before the other differs there with a gap
     * of infinity: that is never a near-tie.
     */
    public static GreedyAgreement judge(ModelRunner runner, List<int[]> prompts, List<int[]> reference, List<int[]> other) {
        List<Difference> differences = new ArrayList<>();
        for (int i = 0; i < reference.size(); i++) {
            int[] want = reference.get(i), got = other.get(i);
            int d = Arrays.mismatch(want, got);
            if (d < 0) {
                continue;
            }
            if (d >= want.length || d >= got.length) {
                differences.add(new Difference(i, d, d < want.length ? want[d] : -1, d < got.length ? got[d] : -1,
                        Float.POSITIVE_INFINITY, 0));
                continue;
            }
            float[] logits = logitsAfter(runner, prompts.get(i), Arrays.copyOf(want, d));
            float scale = 0;
            for (float l : logits) {
                scale = Math.max(scale, Math.abs(l));
            }
            differences.add(new Difference(i, d, want[d], got[d], Math.abs(logits[want[d]] - logits[got[d]]), scale));
        }
        return new GreedyAgreement(reference.size(), List.copyOf(differences));
    }

    public int identical() {
        return requests - differences.size();
    }

    /** Whether every difference is a near-tie (true when there is none). */
    public boolean nearTiesOnly() {
        return differences.stream().allMatch(Difference::nearTie);
    }

    /** The differences that are not near-ties. */
    public List<Difference> realDifferences() {
        return differences.stream().filter(d -> !d.nearTie()).toList();
    }

    /** The largest relative gap among the differences, 0 when there is none. */
    public double largestRelativeGap() {
        return differences.stream().mapToDouble(Difference::relativeGap).max().orElse(0);
    }

    /** The logits after {@code prompt} and {@code generated}, computed in one prefill step. */
    public static float[] logitsAfter(ModelRunner runner, int[] prompt, int[] generated) {
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
