package dev.ember.backend.cpu;

import dev.ember.Numerics;
import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.RandomWeights;
import dev.ember.model.RopeScaling;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Sampling in ModelRunner.submit on the CPU: the same tokens as forward followed by Sampler.sample. */
class CpuForwardAndSampleTest {

    @Test
    void picksWhatTheSamplersPickFromForwardsLogits() {
        var config = CpuBackendTest.config(Architecture.LLAMA, 64, 4, 2, 16, false, new RopeScaling.None(), 0);
        int vocab = config.vocabSize();
        SamplingParams greedy = SamplingParams.greedy(8);
        SamplingParams sampled = greedy.withTemperature(1.3f).withTopK(40).withTopP(0.9f).withSeed(17);
        SamplingParams penalised = sampled.withRepetitionPenalty(1.4f).withMinP(0.05f).withSeed(3);
        SplittableRandom random = new SplittableRandom(5);
        int[] a = random.ints(9, 0, vocab).toArray(), b = random.ints(6, 0, vocab).toArray(), c = random.ints(12, 0, vocab).toArray();
        try (CpuBackend backend = new CpuBackend(2); Model model = RandomWeights.create(config, DType.BF16, 9);
             ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(config, 64, 4), Progress.NONE)) {
            BlockTable ta = table(runner, 9), tb = table(runner, 6), tc = table(runner, 12);
            ForwardBatch batch = ForwardBatch.of(new ForwardBatch.Chunk(a, 0, ta), new ForwardBatch.Chunk(b, 0, tb),
                    new ForwardBatch.Chunk(c, 0, tc));
            float[] logits = new float[3 * vocab];
            runner.forward(batch, logits);
            // The expected tokens: fresh samplers of the same seeds over forward's logits.
            Sampler expectSampled = new Sampler(sampled, vocab), expectPenalised = new Sampler(penalised, vocab);
            expectPenalised.observe(c);
            int expectedA = Numerics.argmax(logits, 0, vocab);
            int expectedB = expectSampled.sample(logits, vocab);
            int expectedC = expectPenalised.sample(logits, 2 * vocab);

            Sampler samplerC = new Sampler(penalised, vocab);
            samplerC.observe(c);
            int[] tokens = {7, 7, 7, 7};
            runner.submit(batch, new Sampler[] {new Sampler(greedy, vocab), new Sampler(sampled, vocab), samplerC, null}).await(tokens);
            assertEquals(expectedA, tokens[0], "greedy");
            assertEquals(expectedB, tokens[1], "temperature / top-k / top-p");
            assertEquals(expectedC, tokens[2], "repetition penalty and min-p");
            assertEquals(7, tokens[3], "slots past the batch are left alone");

            int[] partial = {7, 7, 7};
            runner.submit(batch, new Sampler[] {null, new Sampler(greedy, vocab), null}).await(partial);
            assertEquals(-1, partial[0], "no sampler, no token");
            assertEquals(Numerics.argmax(logits, vocab, vocab), partial[1]);
            assertEquals(-1, partial[2]);
        }
    }

    /**
     * submit computes a step only when it is awaited, as a GPU would hand its tokens back only then: a decode that
     * carries the previous step's token gets the token a loop of awaited steps gets, and misuse is refused.
     */
    @Test
    void submittedStepsCarryThePreviousStepsTokens() {
        var config = CpuBackendTest.config(Architecture.QWEN3, 64, 4, 2, 16, false, new RopeScaling.None(), 0);
        int vocab = config.vocabSize();
        int[] prompt = new SplittableRandom(8).ints(7, 0, vocab).toArray();
        try (CpuBackend backend = new CpuBackend(2); Model model = RandomWeights.create(config, DType.BF16, 4);
             ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(config, 64, 4), Progress.NONE)) {
            Sampler[] greedy = {new Sampler(SamplingParams.greedy(8), vocab)};
            int[] expected = new int[5];
            BlockTable table = table(runner, prompt.length + expected.length);
            int[] token = new int[1];
            runner.submit(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table)), greedy).await(token);
            expected[0] = token[0];
            for (int i = 1; i < expected.length; i++) {
                runner.submit(ForwardBatch.of(new ForwardBatch.Chunk(new int[] {token[0]}, prompt.length + i - 1, table)),
                        greedy).await(token);
                expected[i] = token[0];
            }

            int[] got = new int[expected.length];
            var inFlight = runner.submit(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table)), greedy);
            for (int i = 1; i < expected.length; i++) {
                var next = runner.submit(ForwardBatch.of(ForwardBatch.Chunk.carried(0, prompt.length + i - 1, table)), greedy);
                int[] out = new int[1];
                inFlight.await(out);
                got[i - 1] = out[0];
                inFlight = next;
            }
            int[] last = new int[1];
            inFlight.await(last);
            got[expected.length - 1] = last[0];
            assertArrayEquals(expected, got);

            var first = runner.submit(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table)), greedy);
            runner.submit(ForwardBatch.of(ForwardBatch.Chunk.carried(0, prompt.length, table)), greedy);
            var e = assertThrows(IllegalStateException.class,
                    () -> runner.submit(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table)), greedy));
            assertTrue(e.getMessage().contains("not awaited"), e.getMessage());
            first.await(new int[1]);
            assertThrows(IllegalStateException.class, () -> first.await(new int[1]), "a step is awaited once");
        }
    }

    @Test
    void aCarriedTokenNeedsAPreviousSubmittedStep() {
        var config = CpuBackendTest.config(Architecture.LLAMA, 64, 4, 2, 16, false, new RopeScaling.None(), 0);
        try (CpuBackend backend = new CpuBackend(1); Model model = RandomWeights.create(config, DType.BF16, 9);
             ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(config, 64, 4), Progress.NONE)) {
            Sampler[] greedy = {new Sampler(SamplingParams.greedy(2), config.vocabSize())};
            var step = runner.submit(ForwardBatch.of(ForwardBatch.Chunk.carried(0, 3, table(runner, 4))), greedy);
            var e = assertThrows(IllegalStateException.class, () -> step.await(new int[1]));
            assertTrue(e.getMessage().contains("previous step"), e.getMessage());
            var refused = assertThrows(IllegalArgumentException.class,
                    () -> runner.forward(ForwardBatch.of(ForwardBatch.Chunk.carried(0, 3, table(runner, 4))), new float[config.vocabSize()]));
            assertTrue(refused.getMessage().contains("carried"), refused.getMessage());
        }
    }

    /**
     * A verification whose last token is the one another runner's last step samples (a draft model's, not awaited) gets
     * the tokens it gets with that token written on the host; a step its runner has submitted another after is refused,
     * and so is a batch carrying from two steps.
     */
    @Test
    void aChunkTakesItsLastTokenFromAnotherRunnersLastStep() {
        var config = CpuBackendTest.config(Architecture.QWEN3, 64, 4, 2, 16, false, new RopeScaling.None(), 0);
        int vocab = config.vocabSize();
        int[] prompt = new SplittableRandom(6).ints(7, 0, vocab).toArray();
        Sampler[] greedy = {new Sampler(SamplingParams.greedy(8), vocab), new Sampler(SamplingParams.greedy(8), vocab)};
        try (CpuBackend backend = new CpuBackend(2); Model targetModel = RandomWeights.create(config, DType.BF16, 4);
             Model draftModel = RandomWeights.create(config, DType.BF16, 5);
             ModelRunner target = backend.load(targetModel, KvCacheSpec.forTokens(config, 64, 4), Progress.NONE);
             ModelRunner draft = backend.load(draftModel, KvCacheSpec.forTokens(config, 64, 4), Progress.NONE)) {
            int[] drafted = new int[1];
            draft.submit(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table(draft, 7))), greedy).await(drafted);
            BlockTable verified = table(target, 8);
            target.forward(ForwardBatch.of(new ForwardBatch.Chunk(Arrays.copyOf(prompt, 6), 0, verified)),
                    new float[vocab]);
            int[] expected = new int[2];
            target.submit(ForwardBatch.of(new ForwardBatch.Chunk(new int[] {prompt[6], drafted[0]}, 6, verified, -1, 2)), greedy)
                    .await(expected);

            var draftStep = draft.submit(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table(draft, 7))), greedy);
            var verification = target.submit(ForwardBatch.of(
                    new ForwardBatch.Chunk(new int[] {prompt[6], 0}, 6, verified, 0, 2, draftStep)), greedy);
            int[] got = new int[2], carried = new int[1];
            verification.await(got);
            draftStep.await(carried);
            assertEquals(drafted[0], carried[0]);
            assertArrayEquals(expected, got, "the verification's tokens with its last token taken from the draft's step");

            var first = draft.submit(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table(draft, 7))), greedy);
            var second = draft.submit(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table(draft, 7))), greedy);
            var e = assertThrows(IllegalStateException.class, () -> target.submit(ForwardBatch.of(
                    new ForwardBatch.Chunk(new int[] {prompt[6], 0}, 6, verified, 0, 2, first)), greedy));
            assertTrue(e.getMessage().contains("submitted another after"), e.getMessage());
            var mixed = assertThrows(IllegalArgumentException.class, () -> ForwardBatch.of(ForwardBatch.Chunk.carried(0, 6, verified),
                    new ForwardBatch.Chunk(new int[] {prompt[6], 0}, 6, verified, 0, 2, second)));
            assertTrue(mixed.getMessage().contains("one step"), mixed.getMessage());
            first.await(new int[1]);
            second.await(new int[1]);
        }
    }

    @Test
    void tooFewSamplersOrTokenSlotsAreRefused() {
        var config = CpuBackendTest.config(Architecture.LLAMA, 64, 4, 2, 16, false, new RopeScaling.None(), 0);
        try (CpuBackend backend = new CpuBackend(1); Model model = RandomWeights.create(config, DType.BF16, 9);
             ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(config, 64, 4), Progress.NONE)) {
            ForwardBatch batch = ForwardBatch.of(new ForwardBatch.Chunk(new int[] {1, 2}, 0, table(runner, 2)));
            var e = assertThrows(IllegalArgumentException.class, () -> runner.submit(batch, new Sampler[0]).await(new int[1]));
            assertTrue(e.getMessage().contains("needs as many samplers"), e.getMessage());
        }
    }

    private static BlockTable table(ModelRunner runner, int tokens) {
        BlockTable t = new BlockTable(runner.kvSpec().blockSize());
        assertTrue(t.reserve(tokens, runner.blockAllocator()));
        return t;
    }
}
