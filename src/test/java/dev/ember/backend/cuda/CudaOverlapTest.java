package dev.ember.backend.cuda;

import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.SubmittedStep;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.RequestListener;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.model.RopeScaling;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.scheduler.Sequence;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Overlapped steps on the GPU ({@link ModelRunner#submit}): a step submitted before the previous one is awaited, whose
 * decodes carry the previous step's tokens on the device (carry_tokens), gives the tokens of the same steps run one
 * after the other with the tokens known on the host: through replayed decode graphs, through an eager step that mixes
 * carried decodes with a new prompt large enough to regrow the buffers (the tokens then carried on the host), and
 * through the engine with overlap on and off.
 */
class CudaOverlapTest {
    private static final int SEQUENCES = 12, PROMPT = 19, STEPS = 10, BLOCK = 16, LATE_PROMPT = 600, LATE_STEP = 4;
    private static final ModelConfig CONFIG = new ModelConfig(Architecture.QWEN3, 256, 512, 3, 8, 2, 32, 1000, 1024, 1e-6,
            1000000, new RopeScaling.None(), false, Biases.NONE, 0, 1, List.of(), DType.BF16);

    /** SEQUENCES random prompts, then STEPS greedy decodes; at LATE_STEP a long prompt joins the step. */
    private static int[][] run(ModelRunner runner, boolean overlapped) {
        SplittableRandom random = new SplittableRandom(11);
        int vocab = CONFIG.vocabSize();
        int[][] prompts = new int[SEQUENCES][];
        BlockTable[] tables = new BlockTable[SEQUENCES + 1];
        List<ForwardBatch.Chunk> chunks = new ArrayList<>();
        for (int i = 0; i <= SEQUENCES; i++) {
            tables[i] = new BlockTable(BLOCK);
            assertTrue(tables[i].reserve(LATE_PROMPT + STEPS + 1, runner.blockAllocator()));
        }
        for (int i = 0; i < SEQUENCES; i++) {
            prompts[i] = random.ints(PROMPT + i, 0, vocab).toArray();
            chunks.add(new ForwardBatch.Chunk(prompts[i], 0, tables[i]));
        }
        int[] late = random.ints(LATE_PROMPT, 0, vocab).toArray();
        int[][] out = new int[STEPS + 1][SEQUENCES + 1];
        Sampler[] samplers = new Sampler[SEQUENCES + 1];
        for (int i = 0; i < samplers.length; i++) {
            samplers[i] = new Sampler(SamplingParams.greedy(STEPS + 1), vocab);
        }
        runner.submit(new ForwardBatch(chunks), samplers).await(out[0]);
        SubmittedStep inFlight = null;
        for (int step = 1; step <= STEPS; step++) {
            List<ForwardBatch.Chunk> decode = new ArrayList<>();
            for (int i = 0; i < SEQUENCES; i++) {
                int position = prompts[i].length + step - 1;
                decode.add(overlapped && step > 1 ? ForwardBatch.Chunk.carried(i, position, tables[i])
                        : new ForwardBatch.Chunk(new int[] {out[step - 1][i]}, position, tables[i]));
            }
            if (step == LATE_STEP) {
                decode.add(new ForwardBatch.Chunk(late, 0, tables[SEQUENCES]));
            }
            Sampler[] stepSamplers = Arrays.copyOf(samplers, decode.size());
            if (overlapped) {
                SubmittedStep submitted = runner.submit(new ForwardBatch(decode), stepSamplers);
                if (inFlight != null) {
                    inFlight.await(out[step - 1]);
                }
                inFlight = submitted;
            } else {
                runner.submit(new ForwardBatch(decode), stepSamplers).await(out[step]);
            }
        }
        if (inFlight != null) {
            inFlight.await(out[STEPS]);
        }
        for (BlockTable t : tables) {
            t.release(runner.blockAllocator());
        }
        return out;
    }

    @Test
    void carriedTokensGiveTheTokensOfStepsRunOneAfterTheOther() {
        Gpu.context();
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, 16 * 1024, BLOCK), 5)) {
            int[][] overlapped = run(runner, true);  // first: its late prompt regrows the buffers under carried decodes
            int[][] reference = run(runner, false);
            for (int step = 0; step <= STEPS; step++) {
                for (int i = 0; i < SEQUENCES; i++) {
                    assertEquals(reference[step][i], overlapped[step][i], "step " + step + " sequence " + i);
                }
            }
            assertEquals(reference[LATE_STEP][SEQUENCES], overlapped[LATE_STEP][SEQUENCES], "the late prompt's first token");
            System.out.println("[gpu-check] overlapped steps: " + STEPS + " decode steps of " + SEQUENCES
                    + " sequences with tokens carried on the device equal the steps run one after the other");
        }
    }

    @Test
    void misuseIsRefused() {
        Gpu.context();
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, 1024, BLOCK), 5)) {
            BlockTable table = new BlockTable(BLOCK);
            assertTrue(table.reserve(64, runner.blockAllocator()));
            Sampler[] greedy = {new Sampler(SamplingParams.greedy(4), CONFIG.vocabSize())};
            ForwardBatch carried = ForwardBatch.of(ForwardBatch.Chunk.carried(0, 8, table));
            var e = assertThrows(IllegalStateException.class, () -> runner.submit(carried, greedy));
            assertTrue(e.getMessage().contains("did not sample it on the GPU"), e.getMessage());
            ForwardBatch prompt = ForwardBatch.of(new ForwardBatch.Chunk(new int[] {1, 2, 3, 4, 5, 6, 7, 8}, 0, table));
            SubmittedStep first = runner.submit(prompt, greedy);
            SubmittedStep second = runner.submit(carried, greedy);
            e = assertThrows(IllegalStateException.class, () -> runner.submit(prompt, greedy));
            assertTrue(e.getMessage().contains("not awaited"), e.getMessage());
            int[] a = new int[1], b = new int[1];
            first.await(a);
            second.await(b);
            assertTrue(a[0] >= 0 && b[0] >= 0);
            table.release(runner.blockAllocator());
        }
    }

    /** Overlap changes which sequences share a step, so the runs are judged by margins ({@link GreedyRuns}). */
    @Test
    void theEngineGivesTheSameTokensWithAndWithoutOverlap() {
        Gpu.context();
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, 16 * 1024, BLOCK), 7)) {
            int[][] prompts = prompts();
            int[][] serial = engineRun(runner, prompts, false);
            int identical = GreedyRuns.assertSameUpToNearTies("overlap", runner, prompts, serial, engineRun(runner, prompts, true));
            assertTrue(identical >= serial.length / 2, "most requests should match token for token");
        }
    }

    private static int[][] prompts() {
        SplittableRandom random = new SplittableRandom(21);
        int[][] prompts = new int[20][];
        for (int i = 0; i < prompts.length; i++) {
            prompts[i] = random.ints(random.nextInt(5, 150), 0, CONFIG.vocabSize()).toArray();
        }
        return prompts;
    }

    private static int[][] engineRun(ModelRunner runner, int[][] prompts, boolean overlap) {
        SplittableRandom random = new SplittableRandom(22);
        LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(8, 256, 64, SchedulePolicy.DECODE_FIRST, false, overlap), Set.of(), null);
        Sequence[] sequences = new Sequence[prompts.length];
        for (int i = 0; i < sequences.length; i++) {
            sequences[i] = engine.add(prompts[i], SamplingParams.greedy(random.nextInt(1, 40)), RequestListener.NONE);
        }
        while (engine.hasWork()) {
            engine.step();
        }
        assertEquals(runner.blockAllocator().capacity(), runner.blockAllocator().freeBlocks(), "KV blocks leaked");
        int[][] out = new int[sequences.length][];
        for (int i = 0; i < out.length; i++) {
            out[i] = sequences[i].generatedTokens();
        }
        return out;
    }
}
