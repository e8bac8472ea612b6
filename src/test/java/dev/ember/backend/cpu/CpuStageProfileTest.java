package dev.ember.backend.cpu;

import dev.ember.Numerics;

import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.Stage;
import dev.ember.backend.StageProfile;
import dev.ember.backend.StageTotals;
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

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Stage profiling in the CPU runner: the same logits with it on or off; every stage it has is timed, none other. */
class CpuStageProfileTest {

    @Test
    void profilingChangesNoOutputAndTimesTheStagesOfEachStep() {
        var config = CpuBackendTest.config(Architecture.LLAMA, 64, 4, 2, 16, false, new RopeScaling.None(), 0);
        int vocab = config.vocabSize();
        int[] prompt = new SplittableRandom(11).ints(13, 0, vocab).toArray();
        try (CpuBackend backend = new CpuBackend(2); Model model = RandomWeights.create(config, DType.BF16, 9);
             ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(config, 64, 4), Progress.NONE)) {
            float[] plain = run(runner, prompt, vocab);
            StageTotals totals = new StageTotals();
            runner.profileStages(totals);
            float[] profiled = run(runner, prompt, vocab);
            // Bit-identical in isolation; once in a full-suite run one element differed by 1.8e-7 relative, cause not
            // yet found (docs/roadmap.md), so the bound is the backend's own float32 agreement, not bit equality.
            assertTrue(Numerics.relativeError(profiled, 0, toDoubles(plain), 0, plain.length) < 1e-6,
                    "profiling must not change the logits");
            assertEquals(config.numLayers(), totals.layers(), "every layer is marked");
            double layerSum = 0;
            for (int l = 0; l < config.numLayers(); l++) {
                assertTrue(totals.layerMillis(l) > 0, "layer " + l);
                layerSum += totals.layerMillis(l);
            }
            double inLayers = totals.millis(Stage.ATTENTION) + totals.millis(Stage.FFN) + totals.millis(Stage.RMSNORM);
            assertTrue(layerSum <= inLayers * (1 + 1e-9), "the layers' time is part of their stages' time");
            for (Stage s : new Stage[] {Stage.EMBEDDING, Stage.RMSNORM, Stage.ATTENTION, Stage.FFN, Stage.LM_HEAD}) {
                assertTrue(totals.measured(s) && totals.millis(s) > 0, s + " timed");
            }
            for (Stage s : new Stage[] {Stage.P2P, Stage.MEMCPY_H2D, Stage.MEMCPY_D2H, Stage.SAMPLING}) {
                assertFalse(totals.measured(s), s + " is not a stage of a CPU forward");
            }
            BlockTable table = new BlockTable(4);
            assertTrue(table.reserve(prompt.length, runner.blockAllocator()));
            int[] token = new int[1];
            runner.submit(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table)),
                    new Sampler[] {new Sampler(SamplingParams.greedy(1), vocab)}).await(token);
            assertTrue(totals.measured(Stage.SAMPLING), "a sampled step times its sampling");
            table.release(runner.blockAllocator());

            runner.profileStages(StageProfile.OFF);
            totals.reset();
            assertTrue(Numerics.relativeError(run(runner, prompt, vocab), 0, toDoubles(plain), 0, plain.length) < 1e-6);
            for (Stage s : Stage.values()) {
                assertFalse(totals.measured(s), "nothing is recorded once profiling is off: " + s);
            }
            assertEquals(0, totals.totalMillis());
        }
    }

    private static double[] toDoubles(float[] values) {
        double[] out = new double[values.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = values[i];
        }
        return out;
    }

    /** A prefill of the prompt in two chunks and two decode steps; every step's logits, concatenated. */
    private static float[] run(ModelRunner runner, int[] prompt, int vocab) {
        BlockTable table = new BlockTable(4);
        assertTrue(table.reserve(prompt.length + 2, runner.blockAllocator()));
        float[] all = new float[4 * vocab], logits = new float[vocab];
        int split = prompt.length / 2;
        ForwardBatch[] steps = {
                ForwardBatch.of(new ForwardBatch.Chunk(java.util.Arrays.copyOfRange(prompt, 0, split), 0, table)),
                ForwardBatch.of(new ForwardBatch.Chunk(java.util.Arrays.copyOfRange(prompt, split, prompt.length), split, table)),
                ForwardBatch.of(new ForwardBatch.Chunk(new int[] {prompt[0]}, prompt.length, table)),
                ForwardBatch.of(new ForwardBatch.Chunk(new int[] {prompt[1]}, prompt.length + 1, table))};
        for (int i = 0; i < steps.length; i++) {
            runner.forward(steps[i], logits);
            System.arraycopy(logits, 0, all, i * vocab, vocab);
        }
        table.release(runner.blockAllocator());
        return all;
    }
}
