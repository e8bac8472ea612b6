package dev.ember.backend.cpu;

import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.RandomShapes;
import dev.ember.backend.StreamingFixtures;
import dev.ember.kvcache.BlockAllocator;
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

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.ember.Numerics.relativeError;
import static org.junit.jupiter.api.Assertions.*;

/** The CPU backend against the naive float64 {@link ReferenceForward}, on random models of every family. */
class CpuBackendTest {
    private static final CpuBackend BACKEND = new CpuBackend(2);

    @AfterAll
    static void shutdown() {
        BACKEND.close();
    }

    record Case(String name, ModelConfig config, DType dtype) {
        @Override
        public String toString() {
            return name;
        }
    }

    static ModelConfig config(Architecture arch, int hidden, int heads, int kvHeads, int headDim, boolean tie,
                              RopeScaling scaling, int window) {
        return config(arch, hidden, heads, kvHeads, headDim, tie, scaling, window, arch.biases(false, false));
    }

    static ModelConfig config(Architecture arch, int hidden, int heads, int kvHeads, int headDim, boolean tie,
                              RopeScaling scaling, int window, Biases biases) {
        return new ModelConfig(arch, hidden, 96, 2, heads, kvHeads, headDim, 300, 512, 1e-5, 10000, scaling, tie,
                biases, window, 1, List.of(2), DType.BF16);
    }

    static Stream<Case> cases() {
        return Stream.of(
                new Case("llama3-gqa-bf16", config(Architecture.LLAMA, 64, 4, 2, 16, false,
                        new RopeScaling.Llama3(8, 1, 4, 32), 0), DType.BF16),
                new Case("llama-tied-f16", config(Architecture.LLAMA, 48, 3, 3, 16, true, new RopeScaling.None(), 0), DType.F16),
                new Case("qwen2-bias-f32", config(Architecture.QWEN2, 64, 4, 1, 16, true, new RopeScaling.None(), 0), DType.F32),
                new Case("qwen3-qknorm-bf16", config(Architecture.QWEN3, 64, 4, 2, 32, false, new RopeScaling.None(), 0), DType.BF16),
                // attention_bias and mlp_bias: biases on q, k, v, o, gate, up and down.
                new Case("llama-all-biases-bf16", config(Architecture.LLAMA, 64, 4, 2, 16, false, new RopeScaling.None(), 0,
                        new Biases(true, true, true)), DType.BF16),
                new Case("qwen3-attention-bias-f32", config(Architecture.QWEN3, 64, 4, 2, 16, true, new RopeScaling.None(), 0,
                        Biases.ATTENTION), DType.F32),
                // YaRN over an original context of 512: pair 0 kept, pairs 1-8 on the ramp, 9-15 interpolated; scores x1.30.
                new Case("qwen3-yarn-bf16", config(Architecture.QWEN3, 64, 4, 2, 32, false,
                        new RopeScaling.Yarn(4, 512, 32, 1, true, RopeScaling.Yarn.magnitudeScale(4, 1)), 0), DType.BF16),
                new Case("mistral-window-bf16", config(Architecture.MISTRAL, 64, 4, 2, 16, false, new RopeScaling.None(), 5), DType.BF16),
                // Sizes no vector divides: hidden 52 (not heads x head_dim), head_dim 10, one KV head for five query heads,
                // an intermediate size of 90 and a vocabulary of 301.
                new Case("odd-sizes-bf16", new ModelConfig(Architecture.QWEN3, 52, 90, 2, 5, 1, 10, 301, 512, 1e-6, 10000,
                        new RopeScaling.None(), true, Biases.NONE, 0, 1, List.of(2), DType.BF16), DType.BF16),
                // The shape of the tiny random checkpoints libraries test with: hidden 16, four heads of 4.
                new Case("tiny-heads-f32", config(Architecture.LLAMA, 16, 4, 4, 4, false, new RopeScaling.None(), 0), DType.F32));
    }

    static Stream<Case> randomShapes() {
        return RandomShapes.draw(16).map(s -> new Case(s.name(), s.config(), s.dtype()));
    }

    /** Each random shape over blocks of 1, 3 and 16 tokens: prefill in uneven chunks, then decode steps. */
    @ParameterizedTest
    @MethodSource("randomShapes")
    void randomShapesMatchReference(Case c) {
        for (int blockSize : new int[] {1, 3, 16}) {
            try (Model model = RandomWeights.create(c.config(), c.dtype(), 17);
                 ModelRunner runner = BACKEND.load(model, KvCacheSpec.forTokens(c.config(), 64, blockSize), Progress.NONE)) {
                int[] tokens = randomTokens(new SplittableRandom(blockSize), 21, c.config().vocabSize());
                feedAndCompare(model, runner, tokens, blockSize, new int[] {7, 1, 9, 1, 1, 1, 1}, c + ", blocks of " + blockSize);
            }
        }
    }

    /** What a step reads of each weight element, for the benchmarks' floors: bf16 and f32 as stored, f16 widened at load. */
    @Test
    void weightElementBytesAreWhatTheRunnerReads() {
        ModelConfig config = config(Architecture.LLAMA, 64, 4, 2, 16, false, new RopeScaling.None(), 0);
        for (DType type : DType.values()) {
            try (Model model = RandomWeights.create(config, type, 3);
                 ModelRunner runner = BACKEND.load(model, KvCacheSpec.forTokens(config, 16, 4), Progress.NONE)) {
                assertEquals(type == DType.F16 ? Float.BYTES : type.bytes(), runner.weightElementBytes(), type.name());
            }
        }
    }

    private static int[] randomTokens(SplittableRandom random, int n, int vocab) {
        return random.ints(n, 0, vocab).toArray();
    }

    private static void assertClose(float[] logits, int offset, double[] ref, String what) {
        double err = relativeError(logits, offset, ref, 0, ref.length);
        assertTrue(err < 1e-5, what + ": relative error " + err);
    }

    /**
     * Blocks of 4 tokens (keys scored a token at a time) and of 16 (a vector of keys at a time where vectors hold 16
     * floats), over 19 tokens: several blocks, the last one part full, a sliding window starting inside a block.
     */
    @ParameterizedTest
    @MethodSource("cases")
    void prefillThenDecodeMatchesReference(Case c) {
        for (int blockSize : new int[] {4, 16}) {
            try (Model model = RandomWeights.create(c.config(), c.dtype(), 42);
                 ModelRunner runner = BACKEND.load(model, KvCacheSpec.forTokens(c.config(), 64, blockSize), Progress.NONE)) {
                SplittableRandom random = new SplittableRandom(7);
                int[] tokens = randomTokens(random, 19, c.config().vocabSize());
                // Prefill the first 12 tokens in chunks of 5, 5 and 2, then decode the rest one at a time.
                feedAndCompare(model, runner, tokens, blockSize, new int[] {5, 5, 2, 1, 1, 1, 1, 1, 1, 1},
                        c + ", blocks of " + blockSize);
            }
        }
    }

    /**
     * Rows of 256 positions and more take the softmax a vector at a time (shorter ones its scalar loops): a prompt
     * of 300 tokens in chunks of 200 and 100, then decode steps, each row long on both sides of that bound.
     */
    @Test
    void longContextsMatchReference() {
        Case c = cases().findFirst().orElseThrow();
        try (Model model = RandomWeights.create(c.config(), c.dtype(), 5);
             ModelRunner runner = BACKEND.load(model, KvCacheSpec.forTokens(c.config(), 320, 16), Progress.NONE)) {
            int[] tokens = randomTokens(new SplittableRandom(13), 303, c.config().vocabSize());
            feedAndCompare(model, runner, tokens, 16, new int[] {200, 100, 1, 1, 1}, c.toString());
        }
    }

    /**
     * Feeds {@code tokens} to {@code runner} in chunks of {@code lengths} (one sequence, blocks of {@code blockSize})
     * and compares each chunk's last logits with the float64 reference's.
     */
    private static void feedAndCompare(Model model, ModelRunner runner, int[] tokens, int blockSize, int[] lengths, String what) {
        double[][] ref = ReferenceForward.logits(model, tokens);
        float[] logits = new float[model.config().vocabSize()];
        BlockTable table = new BlockTable(blockSize);
        assertTrue(table.reserve(tokens.length, runner.blockAllocator()));
        int pos = 0;
        for (int len : lengths) {
            int[] chunk = java.util.Arrays.copyOfRange(tokens, pos, pos + len);
            runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(chunk, pos, table)), logits);
            pos += len;
            assertClose(logits, 0, ref[pos - 1], what + ", position " + (pos - 1));
        }
        assertEquals(tokens.length, pos);
    }

    @Test
    void batchedSequencesWithInterleavedBlocksMatchSeparateRuns() {
        Case c = cases().findFirst().orElseThrow();
        try (Model model = RandomWeights.create(c.config(), c.dtype(), 3);
             ModelRunner runner = BACKEND.load(model, KvCacheSpec.forTokens(c.config(), 128, 4), Progress.NONE)) {
            SplittableRandom random = new SplittableRandom(11);
            int vocab = c.config().vocabSize();
            int[] a = randomTokens(random, 13, vocab);
            int[] b = randomTokens(random, 7, vocab);
            double[][] refA = ReferenceForward.logits(model, a);
            double[][] refB = ReferenceForward.logits(model, b);
            BlockAllocator alloc = runner.blockAllocator();
            BlockTable ta = new BlockTable(4);
            BlockTable tb = new BlockTable(4);
            // Grow the tables alternately so that the two sequences' blocks interleave in the pool.
            for (int n = 4; n <= 16; n += 4) {
                assertTrue(ta.reserve(n, alloc));
                assertTrue(tb.reserve(n, alloc));
            }
            float[] logits = new float[2 * vocab];
            runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(java.util.Arrays.copyOf(a, 12), 0, ta),
                    new ForwardBatch.Chunk(java.util.Arrays.copyOf(b, 6), 0, tb)), logits);
            assertClose(logits, 0, refA[11], "sequence a prefill");
            assertClose(logits, vocab, refB[5], "sequence b prefill");
            runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(new int[]{b[6]}, 6, tb),
                    new ForwardBatch.Chunk(new int[]{a[12]}, 12, ta)), logits);
            assertClose(logits, 0, refB[6], "sequence b decode");
            assertClose(logits, vocab, refA[12], "sequence a decode");
        }
    }

    /**
     * A self-speculative draft over the target runner's layers computes what the first layers loaded alone compute (f16
     * weights, widened by the target, and tied embeddings), and closing it leaves the target whole.
     */
    @Test
    void aRunnerOfTheFirstLayersReadsTheTargetsWeights() {
        Case c = cases().filter(k -> k.name().equals("llama-tied-f16")).findFirst().orElseThrow();
        int vocab = c.config().vocabSize();
        int[] tokens = randomTokens(new SplittableRandom(5), 9, vocab);
        try (Model model = RandomWeights.create(c.config(), c.dtype(), 8);
             ModelRunner target = BACKEND.load(model, KvCacheSpec.forTokens(c.config(), 64, 4), Progress.NONE)) {
            Model first = model.firstLayers(1);
            KvCacheSpec kv = KvCacheSpec.forTokens(first.config(), 64, 4);
            float[] alone;
            try (ModelRunner loaded = BACKEND.load(first, kv, Progress.NONE)) {
                alone = StreamingFixtures.lastLogits(loaded, tokens);
            }
            try (ModelRunner draft = target.firstLayers(1, kv).orElseThrow()) {
                assertEquals(1, draft.config().numLayers());
                float[] drafted = StreamingFixtures.lastLogits(draft, tokens);
                assertArrayEquals(alone, drafted, 1e-5f);
                assertClose(drafted, 0, ReferenceForward.logits(first, tokens)[tokens.length - 1], "the first layer");
            }
            assertClose(StreamingFixtures.lastLogits(target, tokens), 0, ReferenceForward.logits(model, tokens)[tokens.length - 1],
                    "the target after its draft closed");
        }
    }

    @Test
    void rejectsTokensOutsideTheVocabulary() {
        Case c = cases().findFirst().orElseThrow();
        try (Model model = RandomWeights.create(c.config(), c.dtype(), 1);
             ModelRunner runner = BACKEND.load(model, KvCacheSpec.forTokens(c.config(), 16, 4), Progress.NONE)) {
            BlockTable table = new BlockTable(4);
            table.reserve(1, runner.blockAllocator());
            EmberException e = assertThrows(EmberException.class, () -> runner.forward(
                    ForwardBatch.of(new ForwardBatch.Chunk(new int[]{300}, 0, table)), new float[300]));
            assertTrue(e.getMessage().contains("300"), e.getMessage());
        }
    }
}
