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
import dev.ember.sampling.ScoredToken;
import dev.ember.sampling.TokenLogprobs;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Logprobs through {@link ModelRunner#submit}: rows drawn on the GPU get theirs from token_logprobs, rows that need the
 * host (a repetition penalty) from the host sampler, and both equal what {@link TokenLogprobs#of} reads off
 * {@code forward}'s logits: in an eager prefill step, in graph-replayed decode steps, and in the rows of a verification
 * chunk, recorded in row order.
 */
class CudaLogprobsTest {
    private static final int BATCH = 12, PROMPT = 21, BLOCK = 16;
    private static final ModelConfig CONFIG = new ModelConfig(Architecture.LLAMA, 256, 512, 3, 8, 2, 32, 1000, 512, 1e-5,
            500000, new RopeScaling.None(), false, Biases.NONE, 0, 1, List.of(2), DType.BF16);

    /** Row i's sampler: greedy with logprobs 5, sampled with logprobs 0, greedy without, penalised greedy with logprobs 3. */
    private static SamplingParams params(int i) {
        SamplingParams greedy = SamplingParams.greedy(8).withSeed(100 + i);
        return switch (i % 4) {
            case 0 -> greedy.withLogprobs(5);
            case 1 -> greedy.withTemperature(0.8f).withTopK(40).withLogprobs(0);
            case 2 -> greedy;
            default -> greedy.withRepetitionPenalty(1.3f).withLogprobs(3);
        };
    }

    @Test
    void aMixOfRowsGetsTheHostsTokensAndLogprobs() {
        Gpu.context();
        int vocab = CONFIG.vocabSize();
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, BATCH * 64, BLOCK), 4)) {
            int[] prompt = new SplittableRandom(3).ints(PROMPT, 0, vocab).toArray();
            BlockTable[] tables = new BlockTable[BATCH];
            ForwardBatch.Chunk[] prefill = new ForwardBatch.Chunk[BATCH];
            Sampler[] samplers = new Sampler[BATCH], references = new Sampler[BATCH];
            for (int i = 0; i < BATCH; i++) {
                tables[i] = new BlockTable(BLOCK);
                assertTrue(tables[i].reserve(PROMPT + 4, runner.blockAllocator()));
                prefill[i] = new ForwardBatch.Chunk(prompt, 0, tables[i]);
                samplers[i] = new Sampler(params(i), vocab);
                references[i] = new Sampler(params(i), vocab);
                samplers[i].observe(prompt);
                references[i].observe(prompt);
            }
            assertTrue(CudaSubmittedStep.samplesOnHost(samplers[3]) && !CudaSubmittedStep.samplesOnHost(samplers[0])
                    && !CudaSubmittedStep.samplesOnHost(samplers[1]), "only the penalised rows are drawn on the host");

            float[] logits = new float[BATCH * vocab];
            runner.forward(ForwardBatch.of(prefill), logits);
            int[] tokens = new int[BATCH];
            runner.submit(ForwardBatch.of(prefill), samplers).await(tokens);
            double worst = 0;
            for (int i = 0; i < BATCH; i++) {
                String where = "prefill row " + i + " (" + params(i) + ")";
                switch (i % 4) {
                    case 1 -> assertTrue(tokens[i] >= 0 && tokens[i] < vocab, where);  // drawn on the device: its own draw
                    case 3 -> assertEquals(references[i].sample(logits.clone(), i * vocab), tokens[i], where);
                    default -> assertEquals(dev.ember.Numerics.argmax(logits, i * vocab, vocab), tokens[i], where);
                }
                worst = Math.max(worst, check(samplers[i], 0, logits, i * vocab, tokens[i], where));
            }

            // Decode steps of the rows without a penalty: the first captures a graph that launches token_logprobs, the
            // next replay it; row i's step-th logprobs are its (step + 1)-th.
            ForwardBatch.Chunk[] decode = new ForwardBatch.Chunk[BATCH / 4 * 3];
            Sampler[] decoders = new Sampler[decode.length];
            for (int step = 0; step < 3; step++) {
                for (int i = 0, c = 0; i < BATCH; i++) {
                    if (i % 4 != 3) {
                        decode[c] = new ForwardBatch.Chunk(new int[] {tokens[0]}, PROMPT, tables[i]);
                        decoders[c++] = samplers[i];
                    }
                }
                float[] decodeLogits = new float[decode.length * vocab];
                runner.forward(ForwardBatch.of(decode), decodeLogits);
                int[] decoded = new int[decode.length];
                runner.submit(ForwardBatch.of(decode), decoders).await(decoded);
                for (int c = 0; c < decode.length; c++) {
                    String where = "decode step " + step + " chunk " + c + " (" + decoders[c].params() + ")";
                    if (decoders[c].params().isGreedy()) {
                        assertEquals(dev.ember.Numerics.argmax(decodeLogits, c * vocab, vocab), decoded[c], where);
                    }
                    worst = Math.max(worst, check(decoders[c], step + 1, decodeLogits, c * vocab, decoded[c], where));
                }
            }
            System.out.printf("[gpu-check] logprobs of a mixed batch (greedy K 5, sampled K 0, none, penalised on the host K 3),"
                    + " prefill and 3 replayed decodes: the host's ids, logprobs within %.2e%n", worst);
        }
    }

    /**
     * A verification chunk of a greedy sequence asking for logprobs: its rows are judged by the sequence's own sampler,
     * all on the GPU, and each row's logprobs land in order, as the host would have recorded them.
     */
    @Test
    void aVerificationsRowsRecordTheirLogprobsInRowOrder() {
        Gpu.context();
        int vocab = CONFIG.vocabSize(), outputs = 5;
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, 1024, BLOCK), 5)) {
            int[] tokens = new SplittableRandom(4).ints(24, 0, vocab).toArray();
            BlockTable table = runner.blockAllocator().newTable();
            table.reserveOrFail(tokens.length, runner.blockAllocator());
            ForwardBatch batch = ForwardBatch.of(new ForwardBatch.Chunk(tokens, 0, table, -1, outputs));
            float[] logits = new float[outputs * vocab];
            runner.forward(batch, logits);
            Sampler sampler = new Sampler(SamplingParams.greedy(8).withLogprobs(4), vocab);
            Sampler[] rows = new Sampler[outputs];
            for (int r = 0; r < outputs; r++) {
                rows[r] = sampler.verifying(tokens[tokens.length - outputs + r], null);  // greedy: the sampler itself
            }
            int[] chosen = new int[outputs];
            runner.submit(batch, rows).await(chosen);
            double worst = 0;
            for (int r = 0; r < outputs; r++) {
                assertEquals(dev.ember.Numerics.argmax(logits, r * vocab, vocab), chosen[r], "row " + r);
                worst = Math.max(worst, check(sampler, r, logits, r * vocab, chosen[r], "verification row " + r));
            }
            sampler.resumeAt(2);  // the verification kept two rows
            assertEquals(chosen[1], sampler.logprobs(1).token());
            System.out.printf("[gpu-check] logprobs of a verification's %d rows, in row order: logprobs within %.2e%n", outputs, worst);
            table.release(runner.blockAllocator());
        }
    }

    /**
     * A prompt scored for its logprobs beside a plain decode: its chunk's every row is an output, each scored on the host
     * from its copied row (one copy for the run of them) but the last, which draws the first token on the GPU; the
     * scores equal what {@link ScoredToken#of} reads off {@code forward}'s logits of the same step.
     */
    @Test
    void aScoredPromptsRowsAreReadOffItsLogits() {
        Gpu.context();
        int vocab = CONFIG.vocabSize(), length = 37;
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, 1024, BLOCK), 6)) {
            int[] prompt = new SplittableRandom(6).ints(length, 0, vocab).toArray();
            BlockTable scoredTable = runner.blockAllocator().newTable(), plainTable = runner.blockAllocator().newTable();
            scoredTable.reserveOrFail(length, runner.blockAllocator());
            plainTable.reserveOrFail(length, runner.blockAllocator());
            ForwardBatch batch = ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, scoredTable, -1, length),
                    new ForwardBatch.Chunk(prompt, 0, plainTable));
            float[] logits = new float[(length + 1) * vocab];
            runner.forward(batch, logits);
            Sampler scored = new Sampler(SamplingParams.greedy(4).withPromptLogprobs(3), vocab);
            Sampler plain = new Sampler(SamplingParams.greedy(4), vocab);
            Sampler[] rows = new Sampler[length + 1];
            for (int p = 1; p < length; p++) {
                rows[p - 1] = scored.scoring(p, prompt[p]);
            }
            rows[length - 1] = scored;
            rows[length] = plain;
            int[] tokens = new int[length + 1];
            runner.submit(batch, rows).await(tokens);
            double worst = 0;
            for (int p = 1; p < length; p++) {
                ScoredToken expected = ScoredToken.of(logits, (p - 1) * vocab, vocab, prompt[p], 3);
                ScoredToken got = scored.promptLogprobs(p);
                assertEquals(prompt[p], tokens[p - 1], "a scoring row returns its prompt token");
                assertEquals(expected.rank(), got.rank(), "position " + p);
                worst = Math.max(worst, relativeError(expected.logprobs().logprob(), got.logprobs().logprob(), "position " + p));
            }
            assertEquals(dev.ember.Numerics.argmax(logits, (length - 1) * vocab, vocab), tokens[length - 1], "the first token");
            assertEquals(dev.ember.Numerics.argmax(logits, length * vocab, vocab), tokens[length], "the plain chunk's token");
            System.out.printf("[gpu-check] a prompt of %d tokens scored beside a plain chunk: ranks equal, logprobs within %.2e%n",
                    length, worst);
            scoredTable.release(runner.blockAllocator());
            plainTable.release(runner.blockAllocator());
        }
    }

    /**
     * Checks {@code sampler}'s {@code index}-th logprobs (or their absence) against TokenLogprobs.of over the row of
     * {@code logits} at {@code offset}: the token, the ids (where two logits are within rounding of each other either
     * order passes: the logprob at each rank must match), the logprobs within 1e-5 of their size. Returns the worst
     * relative error.
     */
    private static double check(Sampler sampler, int index, float[] logits, int offset, int token, String where) {
        int top = sampler.params().logprobs();
        if (top < 0) {
            assertNull(sampler.logprobs(index), where + ": none asked");
            return 0;
        }
        TokenLogprobs expected = TokenLogprobs.of(logits, offset, CONFIG.vocabSize(), token, top);
        TokenLogprobs got = sampler.logprobs(index);
        assertEquals(token, got.token(), where);
        assertEquals(expected.topTokens().length, got.topTokens().length, where + ": top tokens");
        double worst = relativeError(expected.logprob(), got.logprob(), where + ": the token's logprob");
        for (int j = 0; j < expected.topTokens().length; j++) {
            worst = Math.max(worst, relativeError(expected.topLogprobs()[j], got.topLogprobs()[j], where + " rank " + j));
            int id = got.topTokens()[j];
            float lse = expected.logprob() - logits[offset + token];  // -logSumExp, as the host computed it
            relativeError(expected.topLogprobs()[j], logits[offset + id] + lse, where + " rank " + j + ": id " + id
                    + " where the host has " + expected.topTokens()[j]);
        }
        return worst;
    }

    private static double relativeError(float expected, float got, String where) {
        double error = Math.abs((double) got - expected) / Math.max(1, Math.abs(expected));
        assertTrue(error <= 1e-5, where + ": " + got + ", the host reads " + expected);
        return error;
    }
}
