package dev.ember.engine;

import dev.ember.scheduler.FinishReason;
import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.FinishReason;
import dev.ember.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The generator overlaps its decode steps (the next submitted before the current one is awaited, its token carried):
 * it must choose the tokens of a plain forward-and-sample loop, stop on a stop string with the step past it dropped,
 * and run a sampler drawn on the host (repetition penalty) one step at a time with the same result.
 */
class GeneratorOverlapTest {
    private static CpuBackend backend;
    private static Model model;
    private static Tokenizer tokenizer;
    private static ModelRunner runner;

    @BeforeAll
    static void load() {
        backend = new CpuBackend(2);
        model = ModelLoader.load(DefaultModelTest.MODEL);
        tokenizer = Tokenizer.load(DefaultModelTest.MODEL);
        runner = backend.load(model, KvCacheSpec.forTokens(model.config(), 256, 16), Progress.NONE);
    }

    @AfterAll
    static void close() {
        runner.close();
        tokenizer.close();
        model.close();
        backend.close();
    }

    /** The reference: forward, then the sampler over the logits, one token at a time. */
    private static int[] stepByStep(int[] prompt, SamplingParams params, int count) {
        int vocab = model.config().vocabSize();
        Sampler sampler = new Sampler(params, vocab);
        sampler.observe(prompt);
        BlockTable table = new BlockTable(16);
        table.reserveOrFail(prompt.length + count, runner.blockAllocator());
        float[] logits = new float[vocab];
        int[] out = new int[count];
        try {
            runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table)), logits);
            for (int i = 0; i < count; i++) {
                out[i] = sampler.sample(logits, 0);
                sampler.observe(out[i]);
                if (i + 1 < count) {
                    runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(new int[] {out[i]}, prompt.length + i, table)), logits);
                }
            }
            return out;
        } finally {
            table.release(runner.blockAllocator());
        }
    }

    @Test
    void overlappedStepsChooseTheTokensOfAPlainLoop() {
        int[] prompt = tokenizer.encode("Once upon a time");
        SamplingParams greedy = SamplingParams.greedy(24).withIgnoreEos(true);
        GenerationResult r = new Generator(LlmEngine.of(runner, Generator.oneRequest(4), tokenizer)).generate(prompt, greedy, text -> { });
        assertArrayEquals(stepByStep(prompt, greedy, 24), r.tokens());
        assertEquals(FinishReason.LENGTH, r.finishReason());
        assertEquals(runner.blockAllocator().capacity(), runner.blockAllocator().freeBlocks(), "blocks released");
    }

    @Test
    void aStopStringEndsTheRunAndTheStepPastItIsDropped() {
        int[] prompt = tokenizer.encode("In the beginning");
        SamplingParams greedy = SamplingParams.greedy(32).withIgnoreEos(true);
        int[] all = stepByStep(prompt, greedy, 32);
        String text = tokenizer.decode(all, true);
        String stop = text.substring(text.length() / 2, text.length() / 2 + 3);
        GenerationResult r = new Generator(LlmEngine.of(runner, Generator.oneRequest(Generator.DEFAULT_CHUNK_TOKENS), tokenizer)).generate(prompt, greedy.withStopStrings(List.of(stop)), t -> { });
        assertEquals(FinishReason.STOP, r.finishReason());
        assertTrue(r.tokens().length < all.length, "stopped early");
        assertArrayEquals(Arrays.copyOf(all, r.tokens().length), r.tokens(), "the reference's tokens up to the stop");
        assertFalse(r.text().contains(stop), r.text());
        assertEquals(runner.blockAllocator().capacity(), runner.blockAllocator().freeBlocks(), "blocks released");
    }

    @Test
    void aSamplerDrawnOnTheHostRunsStepByStepWithTheSameTokens() {
        int[] prompt = tokenizer.encode("The sea");
        SamplingParams penalised = SamplingParams.greedy(16).withIgnoreEos(true).withRepetitionPenalty(1.5f);
        GenerationResult r = new Generator(LlmEngine.of(runner, Generator.oneRequest(Generator.DEFAULT_CHUNK_TOKENS), tokenizer)).generate(prompt, penalised, t -> { });
        assertArrayEquals(stepByStep(prompt, penalised, 16), r.tokens());
    }
}
