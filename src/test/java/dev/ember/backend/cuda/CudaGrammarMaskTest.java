package dev.ember.backend.cuda;

import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.model.RopeScaling;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import dev.ember.sampling.ScriptedGrammar;
import org.junit.jupiter.api.Test;

import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Structured output drawn on the GPU: a row held to a grammar (and asking nothing else of the host) is masked by
 * mask_logits and drawn by sample_tokens, in an eager prefill step and in graph-replayed decode steps; a greedy masked
 * row takes the largest allowed logit of {@code forward}'s row, a sampled one only allowed tokens, rows without a
 * grammar in the same step are untouched, and each drawn token reaches the grammar before the next step's mask.
 */
class CudaGrammarMaskTest {
    private static final int BATCH = 24, PROMPT = 19, BLOCK = 16, STEPS = 4;
    private static final ModelConfig CONFIG = new ModelConfig(Architecture.LLAMA, 256, 512, 3, 8, 2, 32, 1000, 512, 1e-5,
            500000, new RopeScaling.None(), false, false, 0, 1, List.of(2), DType.BF16);

    /**
     * A grammar whose allowed tokens depend on the last token it accepted (about a fifth of the vocabulary, a different
     * fifth after each token).
     */
    private static ScriptedGrammar scripted() {
        return new ScriptedGrammar(accepted -> {
            int last = accepted.isEmpty() ? -1 : accepted.getLast();
            BitSet allowed = new BitSet(CONFIG.vocabSize());
            for (int t = 0; t < CONFIG.vocabSize(); t++) {
                if ((t * 7 + last * 3) % 5 == 0) {
                    allowed.set(t);
                }
            }
            return allowed;
        });
    }

    /** Rows 0 mod 4 greedy with a grammar, 1 sampled with one, 2 greedy without, 3 sampled without. */
    private static SamplingParams params(int i, ScriptedGrammar grammar) {
        SamplingParams p = SamplingParams.greedy(64).withSeed(40 + i);
        p = i % 4 == 1 || i % 4 == 3 ? p.withTemperature(1.3f).withTopP(0.95f) : p;
        return i % 4 < 2 ? p.withGrammar(grammar) : p;
    }

    @Test
    void rowsHeldToAGrammarAreMaskedAndDrawnOnTheGpu() {
        Gpu.context();
        int vocab = CONFIG.vocabSize();
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, BATCH * 64, BLOCK), 4)) {
            SplittableRandom random = new SplittableRandom(8);
            BlockTable[] tables = new BlockTable[BATCH];
            ForwardBatch.Chunk[] chunks = new ForwardBatch.Chunk[BATCH];
            Sampler[] samplers = new Sampler[BATCH];
            ScriptedGrammar[] grammars = new ScriptedGrammar[BATCH];
            for (int i = 0; i < BATCH; i++) {
                tables[i] = new BlockTable(BLOCK);
                assertTrue(tables[i].reserve(PROMPT + STEPS + 1, runner.blockAllocator()));
                chunks[i] = new ForwardBatch.Chunk(random.ints(PROMPT, 0, vocab).toArray(), 0, tables[i]);
                grammars[i] = scripted();
                samplers[i] = new Sampler(params(i, grammars[i]), vocab);
            }
            assertTrue(CudaSubmittedStep.masksOnDevice(samplers[0]) && !CudaSubmittedStep.samplesOnHost(samplers[1]));
            assertFalse(runner.carriesTokens(samplers[0]), "the next mask needs the token on the host first");
            int masked = 0;
            for (int step = 0; step <= STEPS; step++) {
                BitSet[] allowed = new BitSet[BATCH];
                for (int i = 0; i < BATCH; i++) {
                    allowed[i] = grammars[i].allowedNow();
                }
                float[] logits = new float[BATCH * vocab];
                runner.forward(ForwardBatch.of(chunks), logits);
                int[] tokens = new int[BATCH];
                runner.submit(ForwardBatch.of(chunks), samplers).await(tokens);
                for (int i = 0; i < BATCH; i++) {
                    String where = (step == 0 ? "prefill" : "decode step " + step) + ", row " + i + " (" + samplers[i].params() + ")";
                    switch (i % 4) {
                        case 0 -> assertEquals(argmaxOf(logits, i * vocab, allowed[i]), tokens[i], where);
                        case 1 -> assertTrue(allowed[i].get(tokens[i]), where + ": " + tokens[i] + " is not allowed");
                        case 2 -> assertEquals(dev.ember.Numerics.argmax(logits, i * vocab, vocab), tokens[i], where);
                        default -> assertTrue(tokens[i] >= 0 && tokens[i] < vocab, where);
                    }
                    if (i % 4 < 2) {
                        assertEquals(tokens[i], grammars[i].accepted.getLast(), where + ": the grammar was told of its token");
                        masked++;
                    }
                    chunks[i] = new ForwardBatch.Chunk(new int[] {tokens[i]}, PROMPT + step, tables[i]);
                }
            }
            System.out.printf("[gpu-check] %d rows held to a grammar, masked and drawn on the GPU (greedy: the largest allowed "
                    + "logit; sampled: allowed tokens only), beside rows without one, prefill and %d decode steps%n", masked, STEPS);
        }
    }

    /**
     * A row whose grammar cannot say what it allows (it throws as the step's masks are written) ends alone: its token is
     * -1 and its sampler records why, while the step's other rows, one held to a working grammar and one free, draw as
     * they would have (greedy: the largest allowed logit of {@code forward}'s row, and the largest).
     */
    @Test
    void aGrammarThatCannotGoOnFailsItsRowAlone() {
        Gpu.context();
        int vocab = CONFIG.vocabSize();
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, 3 * 64, BLOCK), 5)) {
            SplittableRandom random = new SplittableRandom(9);
            ScriptedGrammar working = scripted();
            Sampler[] samplers = {
                    new Sampler(SamplingParams.greedy(8).withGrammar(new ScriptedGrammar(accepted -> {
                        throw new IllegalStateException("no token can follow here");
                    })), vocab),
                    new Sampler(SamplingParams.greedy(8).withGrammar(working), vocab),
                    new Sampler(SamplingParams.greedy(8), vocab)};
            ForwardBatch.Chunk[] chunks = new ForwardBatch.Chunk[3];
            for (int i = 0; i < 3; i++) {
                BlockTable table = new BlockTable(BLOCK);
                assertTrue(table.reserve(PROMPT, runner.blockAllocator()));
                chunks[i] = new ForwardBatch.Chunk(random.ints(PROMPT, 0, vocab).toArray(), 0, table);
            }
            BitSet allowed = working.allowedNow();
            float[] logits = new float[3 * vocab];
            runner.forward(ForwardBatch.of(chunks), logits);
            int[] tokens = new int[3];
            runner.submit(ForwardBatch.of(chunks), samplers).await(tokens);
            assertEquals(-1, tokens[0], "the failed row draws nothing");
            assertEquals("no token can follow here", samplers[0].failure());
            assertEquals(argmaxOf(logits, vocab, allowed), tokens[1], "the working grammar's row");
            assertEquals(dev.ember.Numerics.argmax(logits, 2 * vocab, vocab), tokens[2], "the free row");
            System.out.println("[gpu-check] a grammar that cannot go on fails its row alone; the step's other rows draw as before");
        }
    }

    private static int argmaxOf(float[] logits, int offset, BitSet allowed) {
        int best = -1;
        for (int t = allowed.nextSetBit(0); t >= 0; t = allowed.nextSetBit(t + 1)) {
            if (best < 0 || logits[offset + t] > logits[offset + best]) {
                best = t;
            }
        }
        return best;
    }
}
