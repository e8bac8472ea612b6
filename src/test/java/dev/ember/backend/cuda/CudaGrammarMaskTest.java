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
            500000, new RopeScaling.None(), false, Biases.NONE, 0, 1, List.of(2), DType.BF16);

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

    /**
     * vLLM's allowed_token_ids: a mask that does not follow the tokens, so its rows are carried from step to step on the
     * device (overlapped with the host) like free rows. Two steps queued back to back, the second taking the first's
     * tokens on the device, draw only allowed tokens, and the greedy rows the same tokens as the steps run one by one.
     */
    @Test
    void aFixedSetOfAllowedTokensIsCarriedFromStepToStep() {
        Gpu.context();
        int vocab = CONFIG.vocabSize(), rows = 8;
        BitSet set = new BitSet(vocab);
        for (int t = 3; t < vocab; t += 7) {
            set.set(t);
        }
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, 2 * rows * 64, BLOCK), 6)) {
            SplittableRandom random = new SplittableRandom(10);
            int[][] prompts = new int[rows][];
            for (int i = 0; i < rows; i++) {
                prompts[i] = random.ints(PROMPT, 0, vocab).toArray();
            }
            int[][] carried = twoSteps(runner, prompts, set, true);
            int[][] serial = twoSteps(runner, prompts, set, false);
            assertTrue(runner.carriesTokens(new Sampler(SamplingParams.greedy(8).withGrammar(new dev.ember.sampling.AllowedTokens(set)), vocab)));
            for (int i = 0; i < rows; i++) {
                for (int step = 0; step < 2; step++) {
                    assertTrue(set.get(carried[step][i]), "row " + i + ", step " + step + ": " + carried[step][i] + " is not allowed");
                    if (i % 2 == 0) {
                        assertEquals(serial[step][i], carried[step][i], "greedy row " + i + ", step " + step);
                    }
                }
            }
            System.out.println("[gpu-check] allowed_token_ids rows carried from step to step on the device: allowed tokens only, "
                    + "greedy ones as when the steps run one by one");
        }
    }

    /** A prefill and a decode step of {@code prompts} held to {@code set} (even rows greedy), the decode carried or fed. */
    private static int[][] twoSteps(ModelRunner runner, int[][] prompts, BitSet set, boolean carried) {
        int rows = prompts.length, vocab = CONFIG.vocabSize();
        Sampler[] samplers = new Sampler[rows];
        BlockTable[] tables = new BlockTable[rows];
        ForwardBatch.Chunk[] prefill = new ForwardBatch.Chunk[rows];
        for (int i = 0; i < rows; i++) {
            SamplingParams p = SamplingParams.greedy(8).withSeed(70 + i);
            samplers[i] = new Sampler((i % 2 == 0 ? p : p.withTemperature(1.2f)).withGrammar(new dev.ember.sampling.AllowedTokens(set)), vocab);
            tables[i] = new BlockTable(BLOCK);
            assertTrue(tables[i].reserve(PROMPT + 2, runner.blockAllocator()));
            prefill[i] = new ForwardBatch.Chunk(prompts[i], 0, tables[i]);
        }
        int[][] tokens = new int[2][rows];
        dev.ember.backend.SubmittedStep first = runner.submit(ForwardBatch.of(prefill), samplers);
        if (!carried) {
            first.await(tokens[0]);
        }
        ForwardBatch.Chunk[] decode = new ForwardBatch.Chunk[rows];
        for (int i = 0; i < rows; i++) {
            decode[i] = carried ? ForwardBatch.Chunk.carried(i, PROMPT, tables[i])
                    : new ForwardBatch.Chunk(new int[] {tokens[0][i]}, PROMPT, tables[i]);
        }
        dev.ember.backend.SubmittedStep second = runner.submit(ForwardBatch.of(decode), samplers);
        if (carried) {
            first.await(tokens[0]);
        }
        second.await(tokens[1]);
        for (BlockTable table : tables) {
            table.truncate(0, runner.blockAllocator());
        }
        return tokens;
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
