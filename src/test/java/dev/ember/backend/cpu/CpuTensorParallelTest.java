package dev.ember.backend.cpu;

import dev.ember.EmberException;
import dev.ember.Numerics;
import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.StreamingFixtures;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.RandomWeights;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tensor parallel on the CPU, its ranks threads of one process: every family split over 2 ranks (and 4 where the KV
 * heads allow) gives the logits of one rank within 1e-5 (the partial sums are added in another order) and, through the
 * engine, the same greedy tokens.
 */
class CpuTensorParallelTest {
    private static final CpuBackend BACKEND = new CpuBackend(2);

    @AfterAll
    static void shutdown() {
        BACKEND.close();
    }

    record Split(CpuBackendTest.Case model, int size) {
        @Override
        public String toString() {
            return model.name() + " over " + size;
        }
    }

    static Stream<Split> splits() {
        return Stream.concat(CpuBackendTest.cases(), CpuBackendTest.randomShapes()).flatMap(c -> Stream.of(2, 4)
                .filter(size -> c.config().numKvHeads() % size == 0 && c.config().intermediateSize() % size == 0)
                .map(size -> new Split(c, size)));
    }

    @ParameterizedTest
    @MethodSource("splits")
    void theRanksTogetherGiveTheLogitsOfOne(Split split) {
        var c = split.model().config();
        KvCacheSpec kv = KvCacheSpec.forTokens(c, 64, 4);
        try (Model model = RandomWeights.create(c, split.model().dtype(), 42);
             ModelRunner one = BACKEND.load(model, kv, Progress.NONE);
             ModelRunner ranks = BACKEND.loadTensorParallel(model, kv, split.size(), Progress.NONE)) {
            assertSameLogits(one, ranks, split.toString());
        }
    }

    /**
     * {@code split} (a model split over ranks) gives the logits of {@code one} (the whole model) within 1e-5, step by
     * step: two sequences prefilled (one in two chunks), then decoded; callers see the whole model's config and cache.
     */
    static void assertSameLogits(ModelRunner one, ModelRunner split, String what) {
        var c = one.config();
        assertEquals(c, split.config(), "callers see the whole model");
        assertEquals(one.kvSpec(), split.kvSpec());
        int vocab = c.vocabSize();
        SplittableRandom random = new SplittableRandom(7);
        int[] a = random.ints(13, 0, vocab).toArray(), b = random.ints(6, 0, vocab).toArray();
        BlockTable[] oneTables = {one.blockAllocator().newTable(), one.blockAllocator().newTable()};
        BlockTable[] splitTables = {split.blockAllocator().newTable(), split.blockAllocator().newTable()};
        for (BlockTable t : oneTables) {
            t.reserveOrFail(16, one.blockAllocator());
        }
        for (BlockTable t : splitTables) {
            t.reserveOrFail(16, split.blockAllocator());
        }
        int[][][] steps = {{Arrays.copyOf(a, 8), Arrays.copyOf(b, 6)}, {Arrays.copyOfRange(a, 8, 13), null},
                {{a[0]}, {b[0]}}, {{a[1]}, {b[1]}}};
        int[] at = {0, 0};
        for (int s = 0; s < steps.length; s++) {
            ForwardBatch.Chunk[] oneChunks = chunks(steps[s], at, oneTables), splitChunks = chunks(steps[s], at, splitTables);
            float[] expected = new float[oneChunks.length * vocab], got = new float[splitChunks.length * vocab];
            one.forward(ForwardBatch.of(oneChunks), expected);
            split.forward(ForwardBatch.of(splitChunks), got);
            for (int row = 0; row < oneChunks.length; row++) {
                double[] reference = new double[vocab];
                for (int i = 0; i < vocab; i++) {
                    reference[i] = expected[row * vocab + i];
                }
                double error = Numerics.relativeError(got, row * vocab, reference, 0, vocab);
                assertTrue(error < 1e-5, what + ", step " + s + ", row " + row + ": relative error " + error);
            }
            for (int i = 0; i < steps[s].length; i++) {
                at[i] += steps[s][i] == null ? 0 : steps[s][i].length;
            }
        }
        for (BlockTable t : splitTables) {
            t.release(split.blockAllocator());
        }
    }

    private static ForwardBatch.Chunk[] chunks(int[][] tokens, int[] at, BlockTable[] tables) {
        return java.util.stream.IntStream.range(0, tokens.length).filter(i -> tokens[i] != null)
                .mapToObj(i -> new ForwardBatch.Chunk(tokens[i], at[i], tables[i])).toArray(ForwardBatch.Chunk[]::new);
    }

    /** Through the engine (chunked prefill beside decodes, steps overlapped, tokens carried): the tokens of one rank. */
    @Test
    void theEngineGivesTheGreedyTokensOfOneRank() {
        var c = CpuBackendTest.cases().filter(k -> k.name().equals("qwen3-qknorm-bf16")).findFirst().orElseThrow();
        KvCacheSpec kv = KvCacheSpec.forTokens(c.config(), 512, 16);
        try (Model model = RandomWeights.create(c.config(), DType.F32, 5);
             ModelRunner one = BACKEND.load(model, kv, Progress.NONE);
             ModelRunner ranks = BACKEND.loadTensorParallel(model, kv, 2, Progress.NONE)) {
            assertSameGreedyTokens(one, ranks);
        }
    }

    /** Five requests of random lengths through the engine give {@code split} the greedy tokens of {@code one}. */
    static void assertSameGreedyTokens(ModelRunner one, ModelRunner split) {
        SplittableRandom random = new SplittableRandom(3);
        int[][] prompts = new int[5][];
        int[] lengths = new int[prompts.length];
        for (int i = 0; i < prompts.length; i++) {
            prompts[i] = random.ints(random.nextInt(3, 40), 0, one.config().vocabSize()).toArray();
            lengths[i] = random.nextInt(4, 20);
        }
        int[][] expected = StreamingFixtures.engineGreedy(one, prompts, lengths);
        int[][] got = StreamingFixtures.engineGreedy(split, prompts, lengths);
        for (int i = 0; i < prompts.length; i++) {
            assertArrayEquals(expected[i], got[i], "request " + i);
        }
        assertEquals(split.blockAllocator().capacity(), split.blockAllocator().freeBlocks(), "blocks returned");
    }

    @Test
    void aSizeThatDoesNotDivideTheHeadsIsRefusedSayingWhat() {
        var c = CpuBackendTest.cases().filter(k -> k.name().equals("llama-tied-f16")).findFirst().orElseThrow();
        try (Model model = RandomWeights.create(c.config(), c.dtype(), 1)) {
            EmberException e = assertThrows(EmberException.class, () -> BACKEND.loadTensorParallel(model,
                    KvCacheSpec.forTokens(c.config(), 16, 4), 2, Progress.NONE));
            assertTrue(e.getMessage().contains("3 KV heads"), e.getMessage());
        }
    }

    /** A step that fails on every rank fails whole, naming the problem, and the group computes the next step. */
    @Test
    void aFailedStepLeavesTheGroupWorking() {
        var c = CpuBackendTest.cases().findFirst().orElseThrow();
        KvCacheSpec kv = KvCacheSpec.forTokens(c.config(), 64, 4);
        try (Model model = RandomWeights.create(c.config(), c.dtype(), 2);
             ModelRunner one = BACKEND.load(model, kv, Progress.NONE);
             ModelRunner ranks = BACKEND.loadTensorParallel(model, kv, 2, Progress.NONE)) {
            BlockTable table = ranks.blockAllocator().newTable();
            table.reserveOrFail(8, ranks.blockAllocator());
            int vocab = c.config().vocabSize();
            EmberException e = assertThrows(EmberException.class, () -> ranks.forward(
                    ForwardBatch.of(new ForwardBatch.Chunk(new int[] {1, vocab + 5}, 0, table)), new float[vocab]));
            assertTrue(e.getMessage().contains(String.valueOf(vocab + 5)), e.getMessage());
            int[] prompt = {3, 1, 4, 1, 5, 9};
            float[] expected = StreamingFixtures.lastLogits(one, prompt), got = StreamingFixtures.lastLogits(ranks, prompt);
            double[] reference = new double[vocab];
            for (int i = 0; i < vocab; i++) {
                reference[i] = expected[i];
            }
            assertTrue(Numerics.relativeError(got, 0, reference, 0, vocab) < 1e-5);
        }
    }
}
