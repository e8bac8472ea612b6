package dev.ember.sampling;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * HF transformers' logits processors and warpers transcribed as plainly as possible (full sorts, a
 * cumulative sum, boolean masks), the reference that {@link Sampler} must agree with. Ties among equal
 * logits are ordered by lower id first, the order {@link Sampler} documents for the one place (top-p)
 * where HF leaves it to {@code torch.sort}.
 */
final class HfReference {
    private HfReference() {
    }

    /** RepetitionPenaltyLogitsProcessor: gather the seen ids' scores, penalise each once, scatter back. */
    static float[] penalise(float[] logits, int[] history, float penalty) {
        float[] out = logits.clone();
        for (int id : IntStream.of(history).distinct().toArray()) {
            float score = logits[id];
            out[id] = score < 0 ? score * penalty : score / penalty;
        }
        return out;
    }

    /** The probabilities HF's generate would sample from, after every processor in its order. */
    static double[] probabilities(float[] logits, int[] history, SamplingParams params) {
        float[] penalised = penalise(logits, history, params.repetitionPenalty());
        int vocab = logits.length;
        double[] probabilities = new double[vocab];
        if (params.isGreedy()) {
            int best = 0;
            for (int id = 1; id < vocab; id++) {
                if (penalised[id] > penalised[best]) {
                    best = id;
                }
            }
            probabilities[best] = 1;
            return probabilities;
        }
        // TemperatureLogitsWarper
        double[] scores = new double[vocab];
        for (int id = 0; id < vocab; id++) {
            scores[id] = penalised[id] / (double) params.temperature();
        }
        Integer[] descending = IntStream.range(0, vocab).boxed().toArray(Integer[]::new);
        Arrays.sort(descending, Comparator.<Integer>comparingDouble(id -> -scores[id]).thenComparingInt(id -> id));

        // TopKLogitsWarper: indices_to_remove = scores < topk(scores)[..., -1]
        int topK = params.topK();
        if (topK > 0 && topK < vocab) {
            double kth = scores[descending[topK - 1]];
            for (int id = 0; id < vocab; id++) {
                if (scores[id] < kth) {
                    scores[id] = Double.NEGATIVE_INFINITY;
                }
            }
        }
        // TopPLogitsWarper: sort ascending, cumulative softmax, remove cumulative <= 1 - top_p, keep the last
        if (params.topP() < 1f) {
            double[] softmax = softmax(scores);
            double cumulative = 0;
            for (int rank = vocab - 1; rank >= 0; rank--) {
                int id = descending[rank];
                cumulative += softmax[id];
                if (cumulative <= 1 - (double) params.topP() && rank > 0) {
                    scores[id] = Double.NEGATIVE_INFINITY;
                }
            }
        }
        // MinPLogitsWarper: remove probs < min_p * max(probs)
        if (params.minP() > 0f) {
            double[] softmax = softmax(scores);
            double top = Arrays.stream(softmax).max().orElseThrow();
            for (int id = 0; id < vocab; id++) {
                if (softmax[id] < params.minP() * top) {
                    scores[id] = Double.NEGATIVE_INFINITY;
                }
            }
        }
        return softmax(scores);
    }

    static double[] softmax(double[] scores) {
        double max = Arrays.stream(scores).max().orElseThrow();
        double[] out = new double[scores.length];
        double sum = 0;
        for (int i = 0; i < scores.length; i++) {
            out[i] = Math.exp(scores[i] - max);
            sum += out[i];
        }
        for (int i = 0; i < scores.length; i++) {
            out[i] /= sum;
        }
        return out;
    }
}
