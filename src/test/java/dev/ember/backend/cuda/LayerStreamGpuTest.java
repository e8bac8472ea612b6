package dev.ember.backend.cuda;

import dev.ember.Numerics;
import dev.ember.backend.ForwardBatch;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.model.RopeScaling;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One-row decode steps as one launch (layer_stream.cu) against the same steps launched layer by layer, on random
 * weights made on the GPU: the logits of every decode step within a bound of rounding, and the same greedy token
 * where the reference's two best logits lie further apart than the largest deviation. The shapes take each of the
 * kernel's ways: whole rows a warp and rows shared by warps, rows longer than a ring slot (in pieces), query groups of
 * 1, 2, 4 and 12 heads, head dimensions 64, 128 and 256, a q/k/v bias and q/k norms, contexts of one and of
 * several attention splits.
 */
class LayerStreamGpuTest {
    private static final int BLOCK_SIZE = 16;

    record Case(String name, ModelConfig config, DType dtype, int promptLength) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static ModelConfig config(Architecture arch, int hidden, int intermediate, int layers, int heads, int kvHeads,
                                      int headDim) {
        return new ModelConfig(arch, hidden, intermediate, layers, heads, kvHeads, headDim, 1000, 2048, 1e-5, 500000,
                new RopeScaling.Llama3(8, 1, 4, 64), false, arch.biases(false, false), 0, 1, List.of(2), DType.BF16);
    }

    static Stream<Case> cases() {
        return Stream.of(
                new Case("llama-gqa4-hd128-bf16", config(Architecture.LLAMA, 1024, 2816, 3, 8, 2, 128), DType.BF16, 150),
                new Case("llama-8b-rows-bf16", config(Architecture.LLAMA, 4096, 20480, 2, 32, 8, 128), DType.BF16, 700),
                new Case("qwen2-bias-hd64-f16", config(Architecture.QWEN2, 512, 1024, 3, 8, 2, 64), DType.F16, 40),
                new Case("qwen3-qknorm-bf16", config(Architecture.QWEN3, 512, 1536, 3, 4, 2, 128), DType.BF16, 150),
                new Case("mha-hd64-bf16", config(Architecture.LLAMA, 256, 512, 2, 4, 4, 64), DType.BF16, 70),
                new Case("group12-hd256-bf16", new ModelConfig(Architecture.LLAMA, 768, 1536, 2, 12, 1, 256, 1000, 2048, 1e-6,
                        10000, new RopeScaling.None(), true, Biases.NONE, 0, 1, List.of(2), DType.BF16), DType.BF16, 300));
    }

    @ParameterizedTest
    @MethodSource("cases")
    void oneLaunchGivesTheLogitsOfTheLayerByLayerSteps(Case c) {
        CudaContext context = Gpu.context();
        ModelConfig config = c.config();
        int vocab = config.vocabSize(), steps = 12;
        KvCacheSpec kv = KvCacheSpec.forTokens(config, c.promptLength() + steps + BLOCK_SIZE, BLOCK_SIZE);
        int[] prompt = new SplittableRandom(3).ints(c.promptLength(), 0, vocab).toArray();
        try (CudaModelRunner streamed = CudaModelRunner.random(context, config, c.dtype(), 17, kv, true);
             CudaModelRunner layered = CudaModelRunner.random(context, config, c.dtype(), 17, kv, true)) {
            streamed.useLayerStream(true);
            layered.useLayerStream(false);
            assertTrue(streamed.streamsLayers(), c + ": the model is one the one launch takes");
            CudaModelRunner[] runners = {streamed, layered};
            BlockTable[] tables = {new BlockTable(BLOCK_SIZE), new BlockTable(BLOCK_SIZE)};
            float[][] logits = new float[2][vocab];
            for (int r = 0; r < 2; r++) {
                assertTrue(tables[r].reserve(c.promptLength() + steps, runners[r].blockAllocator()));
                runners[r].forward(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, tables[r])), logits[r]);
            }
            double worst = 0;
            int argmaxChecked = 0;
            for (int step = 0; step < steps; step++) {
                int token = Numerics.argmax(logits[1], 0, vocab);
                for (int r = 0; r < 2; r++) {
                    ForwardBatch.Chunk decode = new ForwardBatch.Chunk(new int[] {token}, c.promptLength() + step, tables[r]);
                    runners[r].forward(ForwardBatch.of(decode), logits[r]);
                }
                double[] reference = new double[vocab];
                double largest = 0;
                for (int i = 0; i < vocab; i++) {
                    reference[i] = logits[1][i];
                    largest = Math.max(largest, Math.abs(logits[0][i] - logits[1][i]));
                }
                double error = Numerics.relativeError(logits[0], 0, reference, 0, vocab);
                worst = Math.max(worst, error);
                assertTrue(error < 1e-2, c + " decode step " + step + ": relative error " + error);
                float[] sorted = logits[1].clone();
                Arrays.sort(sorted);
                if (sorted[vocab - 1] - sorted[vocab - 2] > 2 * largest) {
                    argmaxChecked++;
                    assertEquals(Numerics.argmax(logits[1], 0, vocab), Numerics.argmax(logits[0], 0, vocab),
                            c + " decode step " + step + ": argmax differs");
                }
            }
            assertTrue(streamed.counters().replayedSteps() >= steps, "the decode steps replayed the one launch's graph");
            System.out.printf("[gpu-check] one-launch decode %-22s vs layer by layer: worst rel.err %.2e over %d steps "
                    + "(context %d-%d), argmax equal at %d%n", c.name(), worst, steps, c.promptLength() + 1,
                    c.promptLength() + steps, argmaxChecked);
        }
    }
}
