package dev.ember.backend.cuda;

import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.RandomShapes;
import dev.ember.backend.StepCounters;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.RandomWeights;
import dev.ember.model.RopeScaling;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whole models on the GPU against the CPU backend (the project's reference forward pass), on random weights
 * for every family: prefill, chunked prefill mixed with decodes, and graph-replayed decode steps, each
 * sequence in its own paged blocks. Also: graph replay reproduces eager execution exactly.
 */
class CudaModelRunnerTest {
    private static final int BLOCK_SIZE = 16;

    record Case(String name, ModelConfig config, DType dtype, double tolerance) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static ModelConfig config(Architecture arch, int heads, int kvHeads, int headDim, boolean tie, RopeScaling scaling,
                                      int window) {
        return new ModelConfig(arch, 256, 512, 3, heads, kvHeads, headDim, 1000, 512, 1e-5, 500000, scaling, tie,
                arch.biases(false, false), window, 1, List.of(2), DType.BF16);
    }

    static Stream<Case> cases() {
        RopeScaling llama3 = new RopeScaling.Llama3(8, 1, 4, 64);
        return Stream.of(
                new Case("llama3-gqa-bf16", config(Architecture.LLAMA, 8, 2, 32, false, llama3, 0), DType.BF16, 2e-2),
                new Case("llama3-gqa-f32", config(Architecture.LLAMA, 8, 2, 32, false, llama3, 0), DType.F32, 1e-4),
                new Case("qwen2-bias-tied-f16", config(Architecture.QWEN2, 4, 1, 64, true, new RopeScaling.None(), 0), DType.F16, 2e-2),
                new Case("qwen3-qknorm-bf16", config(Architecture.QWEN3, 4, 2, 128, false, new RopeScaling.None(), 0), DType.BF16, 2e-2),
                // attention_bias and mlp_bias: the o, gate/up and down biases added by add_bias.
                new Case("llama-all-biases-bf16", new ModelConfig(Architecture.LLAMA, 256, 512, 3, 8, 2, 32, 1000, 512, 1e-5, 500000,
                        new RopeScaling.None(), false, new Biases(true, true, true), 0, 1, List.of(2), DType.BF16), DType.BF16, 2e-2),
                // YaRN's attention factor reaches the kernels through the attention shape's scale.
                new Case("qwen3-yarn-f32", config(Architecture.QWEN3, 4, 2, 64, false,
                        new RopeScaling.Yarn(4, 64, 32, 1, true, RopeScaling.Yarn.magnitudeScale(4, 1)), 0), DType.F32, 1e-4),
                new Case("mistral-window-bf16", config(Architecture.MISTRAL, 8, 4, 32, false, new RopeScaling.None(), 24), DType.BF16, 2e-2),
                // Sizes no 16-byte load divides: hidden 100 (not heads x head_dim), head_dim 20, five query heads to one
                // KV head, an intermediate size of 150 and a vocabulary of 1001, tied.
                new Case("odd-sizes-bf16", new ModelConfig(Architecture.QWEN3, 100, 150, 3, 5, 1, 20, 1001, 512, 1e-6, 10000,
                        new RopeScaling.None(), true, Biases.NONE, 0, 1, List.of(2), DType.BF16), DType.BF16, 2e-2),
                // The shape of the tiny random checkpoints libraries test with: hidden 16, four heads of 4.
                new Case("tiny-heads-f32", new ModelConfig(Architecture.LLAMA, 16, 64, 2, 4, 4, 4, 1000, 512, 1e-6, 10000,
                        new RopeScaling.None(), false, Biases.NONE, 0, 1, List.of(2), DType.F32), DType.F32, 1e-4));
    }

    /** {@link RandomShapes}' shapes, held to the same bound for their storage type as the shapes above. */
    static Stream<Case> randomShapes() {
        return RandomShapes.draw(16).map(s -> new Case(s.name(), s.config(), s.dtype(), s.dtype() == DType.F32 ? 1e-4 : 2e-2));
    }

    /** Two sequences, stepped identically through any number of runners. */
    private static final class Session {
        final ModelRunner runner;
        final BlockTable a = new BlockTable(BLOCK_SIZE), b = new BlockTable(BLOCK_SIZE);

        Session(ModelRunner runner) {
            this.runner = runner;
        }

        float[] step(ForwardBatch.Chunk... chunks) {
            float[] logits = new float[chunks.length * runner.config().vocabSize()];
            runner.forward(ForwardBatch.of(chunks), logits);
            return logits;
        }

        ForwardBatch.Chunk chunk(BlockTable table, int[] tokens, int start) {
            assertTrue(table.reserve(start + tokens.length, runner.blockAllocator()));
            return new ForwardBatch.Chunk(tokens, start, table);
        }
    }

    /**
     * Runs the scenario on every session, feeding all of them the reference's greedy tokens, and returns each
     * session's logits of every step.
     */
    private static List<List<float[]>> scenario(ModelConfig c, Session... sessions) {
        SplittableRandom random = new SplittableRandom(11);
        int vocab = c.vocabSize();
        int[] promptA = random.ints(37, 0, vocab).toArray();
        int[] promptB = random.ints(20, 0, vocab).toArray();
        List<List<float[]>> out = new ArrayList<>();
        for (Session s : sessions) {
            out.add(new ArrayList<>());
        }
        // Step 1: A's whole prompt beside the first chunk of B's.
        for (int i = 0; i < sessions.length; i++) {
            Session s = sessions[i];
            out.get(i).add(s.step(s.chunk(s.a, promptA, 0), s.chunk(s.b, Arrays.copyOf(promptB, 12), 0)));
        }
        int nextA = argmax(out.getFirst().getLast(), 0, vocab);
        // Step 2: A's first decode beside the rest of B's prompt.
        for (int i = 0; i < sessions.length; i++) {
            Session s = sessions[i];
            out.get(i).add(s.step(s.chunk(s.a, new int[] {nextA}, 37), s.chunk(s.b, Arrays.copyOfRange(promptB, 12, 20), 12)));
        }
        // Steps 3..8: decodes of both (replayed graphs where a runner uses them).
        int posA = 38, posB = 20;
        for (int step = 0; step < 6; step++) {
            float[] ref = out.getFirst().getLast();
            int tokenA = argmax(ref, 0, vocab), tokenB = argmax(ref, vocab, vocab);
            for (int i = 0; i < sessions.length; i++) {
                Session s = sessions[i];
                out.get(i).add(s.step(s.chunk(s.a, new int[] {tokenA}, posA), s.chunk(s.b, new int[] {tokenB}, posB)));
            }
            posA++;
            posB++;
        }
        return out;
    }

    private static int argmax(float[] x, int offset, int n) {
        return dev.ember.Numerics.argmax(x, offset, n);
    }

    @ParameterizedTest
    @MethodSource({"cases", "randomShapes"})
    void logitsMatchTheCpuBackend(Case c) {
        Gpu.context();
        KvCacheSpec kv = KvCacheSpec.forTokens(c.config(), 256, BLOCK_SIZE);
        try (Model model = RandomWeights.create(c.config(), c.dtype(), 42);
             CpuBackend cpuBackend = new CpuBackend(Runtime.getRuntime().availableProcessors());
             CudaBackend gpuBackend = new CudaBackend();
             ModelRunner cpu = cpuBackend.load(model, kv, Progress.NONE);
             ModelRunner gpu = gpuBackend.load(model, kv, Progress.NONE)) {
            List<List<float[]>> logits = scenario(c.config(), new Session(cpu), new Session(gpu));
            int vocab = c.config().vocabSize();
            double worst = 0;
            int argmaxChecked = 0;
            for (int step = 0; step < logits.getFirst().size(); step++) {
                float[] ref = logits.get(0).get(step), out = logits.get(1).get(step);
                for (int chunk = 0; chunk < 2; chunk++) {
                    double[] refRow = new double[vocab];
                    double maxAbs = 0;
                    for (int i = 0; i < vocab; i++) {
                        refRow[i] = ref[chunk * vocab + i];
                        maxAbs = Math.max(maxAbs, Math.abs(out[chunk * vocab + i] - ref[chunk * vocab + i]));
                    }
                    double error = dev.ember.Numerics.relativeError(out, chunk * vocab, refRow, 0, vocab);
                    worst = Math.max(worst, error);
                    assertTrue(error < c.tolerance(), c + " step " + step + " chunk " + chunk + ": relative error " + error);
                    // Where the reference's top two differ by more than twice the largest deviation, the winner cannot move.
                    float[] sorted = Arrays.copyOfRange(ref, chunk * vocab, (chunk + 1) * vocab);
                    Arrays.sort(sorted);
                    if (sorted[vocab - 1] - sorted[vocab - 2] > 2 * maxAbs) {
                        argmaxChecked++;
                        assertEquals(argmax(ref, chunk * vocab, vocab), argmax(out, chunk * vocab, vocab),
                                c + " step " + step + " chunk " + chunk + ": argmax differs");
                    }
                }
            }
            System.out.printf("[gpu-check] whole model %-22s vs CPU: worst rel.err %.3e (limit %.0e), argmax equal at %d of 16%n",
                    c.name(), worst, c.tolerance(), argmaxChecked);
        }
    }

    @Test
    void graphReplayReproducesEagerExecution() {
        Gpu.context();
        ModelConfig c = cases().findFirst().orElseThrow().config();
        KvCacheSpec kv = KvCacheSpec.forTokens(c, 256, BLOCK_SIZE);
        try (Model model = RandomWeights.create(c, DType.BF16, 5);
             CudaBackend graphs = new CudaBackend(true); CudaBackend eager = new CudaBackend(false);
             ModelRunner withGraphs = graphs.load(model, kv, Progress.NONE); ModelRunner without = eager.load(model, kv, Progress.NONE)) {
            List<List<float[]>> logits = scenario(c, new Session(withGraphs), new Session(without));
            for (int step = 0; step < logits.getFirst().size(); step++) {
                assertArrayEquals(logits.get(1).get(step), logits.get(0).get(step), "step " + step);
            }
            assertEquals(1, ((CudaModelRunner) withGraphs).capturedGraphs(), "one decode shape, one graph");
            assertEquals(0, ((CudaModelRunner) without).capturedGraphs());
            System.out.println("[gpu-check] graph-replayed decode steps equal eager ones bit for bit (6 steps, 2 sequences)");
        }
    }

    /**
     * Decode steps of 5 and then 3 sequences, replayed from graphs of 8 and 4 rows (padding rows writing to the scratch
     * block), against the same steps launched eagerly at their own sizes: the same greedy tokens from submitted steps,
     * and logits within fp32 rounding from forward (the products may pick other kernels for other row counts). The
     * warm-up captured every sampled graph the steps need.
     */
    @Test
    void paddedGraphStepsGiveTheTokensOfUnpaddedEagerSteps() {
        Gpu.context();
        ModelConfig c = cases().filter(k -> k.dtype() == DType.F32).findFirst().orElseThrow().config();
        int vocab = c.vocabSize();
        KvCacheSpec kv = KvCacheSpec.forTokens(c, 512, BLOCK_SIZE);
        SplittableRandom random = new SplittableRandom(23);
        int[] promptLengths = {9, 17, 40, 3, 12};  // the longest stays in 3 blocks: one block-table width
        int[][] prompts = Arrays.stream(promptLengths).mapToObj(n -> random.ints(n, 0, vocab).toArray()).toArray(int[][]::new);
        try (Model model = RandomWeights.create(c, DType.F32, 9);
             CudaBackend graphs = new CudaBackend(true); CudaBackend eager = new CudaBackend(false);
             ModelRunner padded = graphs.load(model, kv, Progress.NONE); ModelRunner exact = eager.load(model, kv, Progress.NONE)) {
            padded.warmUp(prompts.length, 64, 48);
            assertEquals(12, ((CudaModelRunner) padded).capturedGraphs(), "sampled graphs of 1, 2, 4, 8 rows, tables 1, 2, 4 wide");
            ModelRunner[] runners = {padded, exact};
            BlockTable[][] tables = new BlockTable[2][prompts.length];
            int[][] next = new int[2][prompts.length];
            for (int r = 0; r < 2; r++) {
                ForwardBatch.Chunk[] chunks = new ForwardBatch.Chunk[prompts.length];
                for (int i = 0; i < prompts.length; i++) {
                    tables[r][i] = new BlockTable(BLOCK_SIZE);
                    assertTrue(tables[r][i].reserve(prompts[i].length, runners[r].blockAllocator()));
                    chunks[i] = new ForwardBatch.Chunk(prompts[i], 0, tables[r][i]);
                }
                runners[r].submit(new ForwardBatch(List.of(chunks)), greedySamplers(prompts.length, vocab)).await(next[r]);
            }
            assertArrayEquals(next[1], next[0], "prefill");
            int[] positions = promptLengths.clone();
            double worst = 0;
            int decodeSteps = 0;
            for (int[] live : new int[][] {{0, 1, 2, 3, 4}, {0, 2, 4}}) {
                for (int step = 0; step < 4; step++, decodeSteps++) {
                    int[][] tokens = new int[2][live.length];
                    float[][] logits = new float[2][live.length * vocab];
                    for (int r = 0; r < 2; r++) {
                        ForwardBatch.Chunk[] chunks = new ForwardBatch.Chunk[live.length];
                        for (int j = 0; j < live.length; j++) {
                            int i = live[j];
                            assertTrue(tables[r][i].reserve(positions[i] + 1, runners[r].blockAllocator()));
                            chunks[j] = new ForwardBatch.Chunk(new int[] {next[1][i]}, positions[i], tables[r][i]);
                        }
                        ForwardBatch batch = new ForwardBatch(List.of(chunks));
                        if (step % 2 == 0) {
                            runners[r].submit(batch, greedySamplers(live.length, vocab)).await(tokens[r]);
                        } else {
                            runners[r].forward(batch, logits[r]);
                            for (int j = 0; j < live.length; j++) {
                                tokens[r][j] = argmax(logits[r], j * vocab, vocab);
                            }
                        }
                    }
                    if (step % 2 == 1) {
                        double[] reference = toDoubles(logits[1]);
                        double error = dev.ember.Numerics.relativeError(logits[0], 0, reference, 0, reference.length);
                        worst = Math.max(worst, error);
                        assertTrue(error < 1e-4, "batch " + live.length + " step " + step + ": relative error " + error);
                    }
                    assertArrayEquals(tokens[1], tokens[0], "batch " + live.length + " step " + step);
                    for (int j = 0; j < live.length; j++) {
                        next[1][live[j]] = tokens[1][j];
                        positions[live[j]]++;
                    }
                }
            }
            StepCounters counters = padded.counters();
            assertEquals(decodeSteps, counters.replayedSteps());
            assertEquals(4L * (8 - 5) + 4L * (4 - 3), counters.paddedRows());
            assertEquals(14, counters.graphsCaptured(), "the warm-up's, and 8 and 4 rows without sampling");
            assertEquals(0, exact.counters().replayedSteps());
            System.out.printf("[gpu-check] padded graph decode steps (5 -> 8, 3 -> 4 rows) give the eager steps' greedy tokens "
                    + "(%d steps), logits within %.1e%n", decodeSteps, worst);
        }
    }

    /**
     * A step of verifications of several lengths beside a decode (what n-gram drafts give) replays the decode graph of
     * its rows, padded from 6 rows to 8, and gives each position the logits the same step launched eagerly gives.
     */
    @Test
    void verificationsOfSeveralLengthsReplayTheDecodeGraphOfTheirRows() {
        Gpu.context();
        ModelConfig c = cases().filter(k -> k.dtype() == DType.F32).findFirst().orElseThrow().config();
        int vocab = c.vocabSize();
        KvCacheSpec kv = KvCacheSpec.forTokens(c, 512, BLOCK_SIZE);
        SplittableRandom random = new SplittableRandom(41);
        int[] promptLengths = {11, 20, 6};
        int[] verifying = {3, 1, 2};
        int[][] prompts = Arrays.stream(promptLengths).mapToObj(n -> random.ints(n, 0, vocab).toArray()).toArray(int[][]::new);
        int[][] drafts = Arrays.stream(verifying).mapToObj(n -> random.ints(n, 0, vocab).toArray()).toArray(int[][]::new);
        try (Model model = RandomWeights.create(c, DType.F32, 13);
             CudaBackend graphs = new CudaBackend(true); CudaBackend eager = new CudaBackend(false);
             ModelRunner padded = graphs.load(model, kv, Progress.NONE); ModelRunner exact = eager.load(model, kv, Progress.NONE)) {
            padded.warmUp(prompts.length, 64, 48);
            ModelRunner[] runners = {padded, exact};
            float[][] logits = new float[2][6 * vocab];
            long replayedBefore = 0;
            for (int r = 0; r < 2; r++) {
                ForwardBatch.Chunk[] prefill = new ForwardBatch.Chunk[prompts.length];
                BlockTable[] tables = new BlockTable[prompts.length];
                for (int i = 0; i < prompts.length; i++) {
                    tables[i] = new BlockTable(BLOCK_SIZE);
                    assertTrue(tables[i].reserve(promptLengths[i] + verifying[i], runners[r].blockAllocator()));
                    prefill[i] = new ForwardBatch.Chunk(prompts[i], 0, tables[i]);
                }
                runners[r].submit(new ForwardBatch(List.of(prefill)), greedySamplers(prompts.length, vocab)).await(new int[prompts.length]);
                ForwardBatch.Chunk[] verify = new ForwardBatch.Chunk[prompts.length];
                for (int i = 0; i < prompts.length; i++) {
                    verify[i] = new ForwardBatch.Chunk(drafts[i], promptLengths[i], tables[i], -1, verifying[i]);
                }
                replayedBefore = r == 0 ? padded.counters().replayedSteps() : replayedBefore;
                runners[r].forward(new ForwardBatch(List.of(verify)), logits[r]);
            }
            double[] reference = toDoubles(logits[1]);
            double error = dev.ember.Numerics.relativeError(logits[0], 0, reference, 0, reference.length);
            assertTrue(error < 1e-4, "relative error " + error);
            assertEquals(replayedBefore + 1, padded.counters().replayedSteps(), "the verifications replayed a graph");
            assertEquals(2, padded.counters().paddedRows(), "6 rows padded to 8");
            assertEquals(0, exact.counters().replayedSteps());
            System.out.printf("[gpu-check] verifications of 3, 1 and 2 tokens replay the decode graph of 8 rows: logits "
                    + "within %.1e of the eager step's%n", error);
        }
    }

    private static Sampler[] greedySamplers(int n, int vocab) {
        Sampler[] samplers = new Sampler[n];
        for (int i = 0; i < n; i++) {
            samplers[i] = new Sampler(SamplingParams.greedy(64), vocab);
        }
        return samplers;
    }

    private static double[] toDoubles(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = x[i];
        }
        return d;
    }

    /**
     * The warm-up chooses the products of every row count the matrix-vector kernel takes, so that no later step stops to
     * time one: here a prefill of a few tokens and a decode step of three sequences, neither a warmed-up graph size.
     */
    @Test
    void theWarmUpChoosesTheProductsOfEverySmallStep() {
        Gpu.context();
        ModelConfig c = cases().filter(k -> k.dtype() == DType.BF16).findFirst().orElseThrow().config();
        KvCacheSpec kv = KvCacheSpec.forTokens(c, 256, BLOCK_SIZE);
        SplittableRandom random = new SplittableRandom(31);
        try (Model model = RandomWeights.create(c, DType.BF16, 5); CudaBackend backend = new CudaBackend(true);
             ModelRunner runner = backend.load(model, kv, Progress.NONE)) {
            runner.warmUp(1, 64, 48);
            List<String> chosen = runner.measuredChoices();
            for (int rows = 1; rows <= EmberKernels.GEMV_MAX_ROWS; rows++) {
                String prefix = "m=" + rows + " ";
                assertTrue(chosen.stream().filter(line -> line.startsWith(prefix)).count() >= 4,
                        "the layers' four products of " + rows + " rows chosen at warm-up: " + chosen);
            }
            int[] next = new int[3];
            BlockTable[] tables = new BlockTable[3];
            ForwardBatch.Chunk[] prompts = new ForwardBatch.Chunk[3];
            for (int i = 0; i < 3; i++) {
                tables[i] = new BlockTable(BLOCK_SIZE);
                assertTrue(tables[i].reserve(6, runner.blockAllocator()));
                prompts[i] = new ForwardBatch.Chunk(random.ints(5, 0, c.vocabSize()).toArray(), 0, tables[i]);
            }
            runner.submit(new ForwardBatch(List.of(prompts[0])), greedySamplers(1, c.vocabSize())).await(new int[1]);
            runner.submit(new ForwardBatch(List.of(prompts[1], prompts[2])), greedySamplers(2, c.vocabSize())).await(new int[2]);
            ForwardBatch.Chunk[] decode = new ForwardBatch.Chunk[3];
            for (int i = 0; i < 3; i++) {
                decode[i] = new ForwardBatch.Chunk(new int[] {random.nextInt(c.vocabSize())}, 5, tables[i]);
            }
            runner.submit(new ForwardBatch(List.of(decode)), greedySamplers(3, c.vocabSize())).await(next);
            assertEquals(chosen, runner.measuredChoices(), "no product chosen after the warm-up");
        }
    }

    @Test
    void aCacheTooLargeForTheGpuSaysHowMuchIsNeededAndFree() {
        Gpu.context();
        ModelConfig c = cases().findFirst().orElseThrow().config();
        long tokens = 400L << 20;  // 400 Mi tokens of 768 bytes: 300 GiB of cache
        KvCacheSpec huge = new KvCacheSpec(c.numLayers(), c.numKvHeads(), c.headDim(), BLOCK_SIZE, (int) (tokens / BLOCK_SIZE));
        try (Model model = RandomWeights.create(c, DType.BF16, 1); CudaBackend backend = new CudaBackend()) {
            EmberException e = assertThrows(EmberException.class, () -> backend.load(model, huge, Progress.NONE).close());
            System.out.println("[gpu-check] too large: " + e.getMessage());
            assertTrue(e.getMessage().contains("does not fit") && e.getMessage().contains("KV cache 300.00 GiB")
                    && e.getMessage().contains("is free"), e.getMessage());
        }
    }
}
