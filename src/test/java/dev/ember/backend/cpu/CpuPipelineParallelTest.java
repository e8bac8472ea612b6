package dev.ember.backend.cpu;

import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.PipelineSplit;
import dev.ember.backend.StreamingFixtures;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.RandomWeights;
import dev.ember.model.RopeScaling;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pipeline parallel on the CPU, its stages threads of one process handing each micro-batch's activations on: every
 * family split into stages (even, uneven, one layer a stage) gives the logits of one runner and, through the engine,
 * its greedy tokens; a split that does not cover the model is refused saying what it covers.
 */
class CpuPipelineParallelTest {
    private static final CpuBackend BACKEND = new CpuBackend(2);

    @AfterAll
    static void shutdown() {
        BACKEND.close();
    }

    record Split(CpuBackendTest.Case model, int[] stageLayers) {
        @Override
        public String toString() {
            return model.name() + " in stages of " + Arrays.toString(stageLayers);
        }
    }

    /** Four-layer models of every family and of the random shapes, split 2+2, 1+3 and into four stages of one layer. */
    static Stream<Split> splits() {
        return Stream.concat(CpuBackendTest.cases(), CpuBackendTest.randomShapes())
                .map(c -> new CpuBackendTest.Case(c.name(), fourLayers(c.config()), c.dtype()))
                .flatMap(c -> Stream.of(new int[] {2, 2}, new int[] {1, 3}, new int[] {1, 1, 1, 1}).map(s -> new Split(c, s)));
    }

    private static ModelConfig fourLayers(ModelConfig c) {
        return new ModelConfig(c.architecture(), c.hiddenSize(), c.intermediateSize(), 4, c.numHeads(), c.numKvHeads(),
                c.headDim(), c.vocabSize(), c.maxPositions(), c.rmsNormEps(), c.ropeTheta(), c.ropeScaling(),
                c.tieWordEmbeddings(), c.biases(), c.slidingWindow(), c.bosTokenId(), c.eosTokenIds(), c.dtype());
    }

    @ParameterizedTest
    @MethodSource("splits")
    void theStagesTogetherGiveTheLogitsOfOne(Split split) {
        var c = split.model().config();
        KvCacheSpec kv = KvCacheSpec.forTokens(c, 64, 4);
        try (Model model = RandomWeights.create(c, split.model().dtype(), 42);
             ModelRunner one = BACKEND.load(model, kv, Progress.NONE);
             ModelRunner stages = BACKEND.loadPipelineParallel(model, kv, split.stageLayers(), Progress.NONE)) {
            CpuTensorParallelTest.assertSameLogits(one, stages, split.toString());
        }
    }

    /** Through the engine (chunked prefill beside decodes, steps overlapped, tokens carried): the tokens of one runner. */
    @Test
    void theEngineGivesTheGreedyTokensOfOneRunner() {
        ModelConfig c = fourLayers(CpuBackendTest.cases().filter(k -> k.name().equals("qwen3-qknorm-bf16")).findFirst()
                .orElseThrow().config());
        KvCacheSpec kv = KvCacheSpec.forTokens(c, 512, 16);
        try (Model model = RandomWeights.create(c, DType.F32, 5);
             ModelRunner one = BACKEND.load(model, kv, Progress.NONE);
             ModelRunner stages = BACKEND.loadPipelineParallel(model, kv, PipelineSplit.even(4, 3), Progress.NONE)) {
            CpuTensorParallelTest.assertSameGreedyTokens(one, stages);
        }
    }

    @Test
    void aSplitThatDoesNotCoverTheModelIsRefusedSayingWhatItCovers() {
        ModelConfig c = fourLayers(CpuBackendTest.cases().findFirst().orElseThrow().config());
        try (Model model = RandomWeights.create(c, DType.BF16, 1)) {
            KvCacheSpec kv = KvCacheSpec.forTokens(c, 16, 4);
            EmberException e = assertThrows(EmberException.class, () -> BACKEND.loadPipelineParallel(model, kv,
                    new int[] {2, 3}, Progress.NONE));
            assertTrue(e.getMessage().contains("--split 2,3 covers 5 layers; the model has 4"), e.getMessage());
            e = assertThrows(EmberException.class, () -> BACKEND.loadPipelineParallel(model, kv, new int[] {4, 0}, Progress.NONE));
            assertTrue(e.getMessage().contains("every stage runs at least one layer"), e.getMessage());
            e = assertThrows(EmberException.class, () -> PipelineSplit.even(4, 5));
            assertTrue(e.getMessage().contains("1 to 4 pipeline stages, not 5"), e.getMessage());
        }
        assertArrayEquals(new int[] {3, 2, 2}, PipelineSplit.even(7, 3));
    }

    /** A step that fails on every stage fails whole, naming the problem, and the stages compute the next step. */
    @Test
    void aFailedStepLeavesTheStagesWorking() {
        ModelConfig c = fourLayers(CpuBackendTest.cases().findFirst().orElseThrow().config());
        KvCacheSpec kv = KvCacheSpec.forTokens(c, 64, 4);
        try (Model model = RandomWeights.create(c, DType.BF16, 2);
             ModelRunner one = BACKEND.load(model, kv, Progress.NONE);
             ModelRunner stages = BACKEND.loadPipelineParallel(model, kv, new int[] {2, 2}, Progress.NONE)) {
            BlockTable table = stages.blockAllocator().newTable();
            table.reserveOrFail(8, stages.blockAllocator());
            int vocab = c.vocabSize();
            EmberException e = assertThrows(EmberException.class, () -> stages.forward(
                    ForwardBatch.of(new ForwardBatch.Chunk(new int[] {1, vocab + 5}, 0, table)), new float[vocab]));
            assertTrue(e.getMessage().contains(String.valueOf(vocab + 5)), e.getMessage());
            table.release(stages.blockAllocator());
            int[] prompt = {3, 1, 4, 1, 5, 9};
            assertArrayEquals(StreamingFixtures.lastLogits(one, prompt), StreamingFixtures.lastLogits(stages, prompt), 1e-5f);
        }
    }
}
