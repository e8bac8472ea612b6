package dev.ember.backend.cuda;

import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.model.RopeScaling;
import dev.ember.sampling.ChiSquare;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Sampling on the GPU through {@link ModelRunner#submit}: greedy tokens are the argmax of {@code forward}'s
 * logits (prefill steps run eagerly, decode steps replay a graph that holds the sampling kernel), rows with a
 * repetition penalty fall back to the host sampler exactly, and sampled tokens follow the distribution the logits
 * define (a chi-square test over many seeded draws, so the outcome is fixed).
 */
class CudaForwardAndSampleTest {
    private static final int BATCH = 32, PROMPT = 21, BLOCK = 16;
    private static final ModelConfig CONFIG = new ModelConfig(Architecture.LLAMA, 256, 512, 3, 8, 2, 32, 1000, 512, 1e-5,
            500000, new RopeScaling.None(), false, Biases.NONE, 0, 1, List.of(2), DType.BF16);

    /** BATCH sequences of the same random prompt, prefilled; then decode steps of one token at a fixed position. */
    private static final class Batch {
        final ModelRunner runner;
        final BlockTable[] tables = new BlockTable[BATCH];
        final int[] prompt = new SplittableRandom(3).ints(PROMPT, 0, CONFIG.vocabSize()).toArray();

        Batch(ModelRunner runner) {
            this.runner = runner;
            for (int i = 0; i < BATCH; i++) {
                tables[i] = new BlockTable(BLOCK);
                assertTrue(tables[i].reserve(PROMPT + 1, runner.blockAllocator()));
            }
        }

        ForwardBatch prefill() {
            ForwardBatch.Chunk[] chunks = new ForwardBatch.Chunk[BATCH];
            for (int i = 0; i < BATCH; i++) {
                chunks[i] = new ForwardBatch.Chunk(prompt, 0, tables[i]);
            }
            return ForwardBatch.of(chunks);
        }

        /** Every sequence's next token at position PROMPT; rerunning it rewrites the same cache entries. */
        ForwardBatch decode(int token) {
            ForwardBatch.Chunk[] chunks = new ForwardBatch.Chunk[BATCH];
            for (int i = 0; i < BATCH; i++) {
                chunks[i] = new ForwardBatch.Chunk(new int[] {token}, PROMPT, tables[i]);
            }
            return ForwardBatch.of(chunks);
        }
    }

    private static Sampler[] samplers(SamplingParams params, int seedBase) {
        Sampler[] s = new Sampler[BATCH];
        for (int i = 0; i < BATCH; i++) {
            s[i] = new Sampler(params.withSeed(seedBase + i), CONFIG.vocabSize());
        }
        return s;
    }

    @Test
    void greedyTokensAreTheArgmaxOfForwardsLogits() {
        Gpu.context();
        int vocab = CONFIG.vocabSize();
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, BATCH * 64, BLOCK), 4)) {
            Batch b = new Batch(runner);
            float[] logits = new float[BATCH * vocab];
            int[] tokens = new int[BATCH];
            Sampler[] greedy = samplers(SamplingParams.greedy(4), 0);
            greedy[5] = null;  // a prompt chunk that does not end its prompt
            // A penalised sampler falls back to the host: the same draw as the CPU sampler over forward's logits.
            SamplingParams penalised = SamplingParams.greedy(4).withTemperature(0.9f).withRepetitionPenalty(1.3f).withSeed(8);
            greedy[7] = new Sampler(penalised, vocab);
            greedy[7].observe(b.prompt);
            Sampler reference = new Sampler(penalised, vocab);
            reference.observe(b.prompt);

            runner.forward(b.prefill(), logits);
            runner.submit(b.prefill(), greedy).await(tokens);
            for (int i = 0; i < BATCH; i++) {
                int expected = i == 5 ? -1 : i == 7 ? reference.sample(logits, i * vocab) : dev.ember.Numerics.argmax(logits, i * vocab, vocab);
                assertEquals(expected, tokens[i], "prefill row " + i);
            }
            Sampler[] decoders = samplers(SamplingParams.greedy(4), 0);
            for (int step = 0; step < 3; step++) {  // the first capture, then replays
                runner.forward(b.decode(tokens[0]), logits);
                int[] decoded = new int[BATCH];
                runner.submit(b.decode(tokens[0]), decoders).await(decoded);
                for (int i = 0; i < BATCH; i++) {
                    assertEquals(dev.ember.Numerics.argmax(logits, i * vocab, vocab), decoded[i], "decode step " + step + " row " + i);
                }
            }
            System.out.println("[gpu-check] forwardAndSample: greedy tokens equal the argmax of forward's logits (prefill and "
                    + "graph-replayed decode, " + BATCH + " rows), the penalised row equals the host sampler");
        }
    }

    @Test
    void sampledTokensFollowTheDistribution() {
        Gpu.context();
        int vocab = CONFIG.vocabSize();
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, BATCH * 64, BLOCK), 6)) {
            Batch b = new Batch(runner);
            float[] logits = new float[BATCH * vocab];
            runner.forward(b.prefill(), logits);
            int token = dev.ember.Numerics.argmax(logits, 0, vocab);
            runner.forward(b.decode(token), logits);
            float[] row = Arrays.copyOf(logits, vocab);
            SamplingParams full = SamplingParams.greedy(1).withTemperature(1f);
            SamplingParams truncated = SamplingParams.greedy(1).withTemperature(0.7f).withTopK(50).withTopP(0.9f);
            for (SamplingParams params : List.of(full, truncated)) {
                double[] p = distribution(row, params);
                int draws = 40;
                int[] counts = new int[vocab];
                Sampler[] samplers = samplers(params, 1000);
                int[] tokens = new int[BATCH];
                for (int d = 0; d < draws; d++) {
                    runner.submit(b.decode(token), samplers).await(tokens);
                    for (int t : tokens) {
                        assertTrue(t >= 0 && t < vocab && p[t] > 0, "token " + t + " has no probability");
                        counts[t]++;
                    }
                }
                double ratio = ChiSquare.overCritical(p, counts, draws * BATCH);
                System.out.printf("[gpu-check] forwardAndSample %d draws (T=%.2f top-k %d top-p %.2f): chi-square at %.2f of its "
                        + "p = 0.001 critical value%n", draws * BATCH, params.temperature(), params.topK(), params.topP(), ratio);
                assertTrue(ratio < 1, "sampled tokens do not follow the distribution: chi-square " + ratio + " of the critical value");
            }
        }
    }

    /** HF's temperature, top-k and top-p over one row, in float64. */
    private static double[] distribution(float[] row, SamplingParams params) {
        int vocab = row.length;
        Integer[] order = new Integer[vocab];
        for (int i = 0; i < vocab; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(row[b], row[a]));
        double max = row[order[0]];
        double[] w = new double[vocab];
        double total = 0;
        int k = params.topK() > 0 ? params.topK() : vocab;
        for (int r = 0; r < vocab; r++) {
            int i = order[r];
            boolean kept = row[i] >= row[order[k - 1]];
            w[i] = kept ? Math.exp((row[i] - max) / params.temperature()) : 0;
            total += w[i];
        }
        double before = 0;
        for (int r = 0; r < vocab; r++) {
            int i = order[r];
            if (before >= params.topP() * total) {
                before += w[i];
                w[i] = 0;
            } else {
                before += w[i];
            }
        }
        double kept = Arrays.stream(w).sum();
        for (int i = 0; i < vocab; i++) {
            w[i] /= kept;
        }
        return w;
    }
}
