package dev.ember.backend.cuda;

import dev.ember.backend.ForwardBatch;
import dev.ember.Progress;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.StreamingFixtures;
import dev.ember.backend.SubmittedStep;
import dev.ember.engine.DraftModelProposer;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.NgramProposer;
import dev.ember.engine.Proposer;
import dev.ember.engine.RequestListener;
import dev.ember.engine.Speculation;
import dev.ember.engine.StepObserver;
import dev.ember.engine.VerificationWatch;
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
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.scheduler.Sequence;
import dev.ember.scheduler.SpeculationStats;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Speculative decoding on the GPU: a chunk with several outputs (a verification) gives each position the logits a
 * step of its own would, and the engine speculating with the target's first layers or with n-gram lookup gives the
 * target's greedy tokens, judged by margins ({@link GreedyRuns}): bf16 may round a verification and a decode differently.
 */
class CudaSpeculativeTest {
    private static final ModelConfig CONFIG = new ModelConfig(Architecture.LLAMA, 256, 512, 4, 8, 2, 32, 512, 2048, 1e-5,
            10000, new RopeScaling.None(), false, Biases.NONE, 0, 1, List.of(), DType.BF16);
    private static final int BLOCK = 16;

    @Test
    void aChunkOfSeveralOutputsGivesEachPositionsLogits() {
        Gpu.context();
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, 1024, BLOCK), 5)) {
            int vocab = CONFIG.vocabSize();
            int[] tokens = new SplittableRandom(3).ints(24, 0, vocab).toArray();
            float[] together = logits(runner, tokens, 5), alone = new float[5 * vocab];
            for (int k = 0; k < 5; k++) {
                float[] one = logits(runner, Arrays.copyOf(tokens, tokens.length - 4 + k), 1);
                System.arraycopy(one, 0, alone, k * vocab, vocab);
            }
            double worst = worstDifference(together, alone);
            System.out.printf("[gpu-check] 5 outputs of one chunk against 5 prefills: worst difference %.2e of the largest logit%n", worst);
            assertTrue(worst <= 2e-2, "outputs of one chunk differ from steps of their own by " + worst);
        }
    }

    /**
     * A verification (a chunk of five tokens, every one an output) after a cached prefix is attended row by row by the
     * decode kernel, each row at its own position over the keys the step writes for the rows before it: its logits are
     * those of prefilling each prefix on its own, up to rounding.
     */
    @Test
    void aVerificationAfterACachedPrefixGivesEachPositionsLogits() {
        Gpu.context();
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, 1024, BLOCK), 5)) {
            int vocab = CONFIG.vocabSize();
            int[] tokens = new SplittableRandom(4).ints(24, 0, vocab).toArray();
            float[] verified = new float[5 * vocab], alone = new float[5 * vocab];
            BlockTable table = runner.blockAllocator().newTable();
            try {
                table.reserveOrFail(tokens.length, runner.blockAllocator());
                runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(Arrays.copyOf(tokens, 19), 0, table, -1, 1)), new float[vocab]);
                runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(Arrays.copyOfRange(tokens, 19, 24), 19, table, -1, 5)), verified);
            } finally {
                table.release(runner.blockAllocator());
            }
            for (int k = 0; k < 5; k++) {
                System.arraycopy(logits(runner, Arrays.copyOf(tokens, 20 + k), 1), 0, alone, k * vocab, vocab);
            }
            double worst = worstDifference(verified, alone);
            System.out.printf("[gpu-check] a verification of 5 rows against 5 prefills: worst difference %.2e of the largest logit%n", worst);
            assertTrue(worst <= 2e-2, "a verification's rows differ from steps of their own by " + worst);
        }
    }

    /** The largest difference between {@code got} and {@code reference}, over the reference's largest magnitude. */
    private static double worstDifference(float[] got, float[] reference) {
        double worst = 0, scale = 0;
        for (int i = 0; i < reference.length; i++) {
            worst = Math.max(worst, Math.abs(got[i] - reference[i]));
            scale = Math.max(scale, Math.abs(reference[i]));
        }
        return worst / scale;
    }

    /** The logits of the last {@code outputs} positions of {@code tokens}, prefilled in one chunk. */
    private static float[] logits(ModelRunner runner, int[] tokens, int outputs) {
        BlockTable table = runner.blockAllocator().newTable();
        try {
            table.reserveOrFail(tokens.length, runner.blockAllocator());
            float[] logits = new float[outputs * CONFIG.vocabSize()];
            runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(tokens, 0, table, -1, outputs)), logits);
            return logits;
        } finally {
            table.release(runner.blockAllocator());
        }
    }

    /**
     * Verifications whose last tokens another runner's last step sampled on the device (a draft's, on its own stream,
     * not awaited) give the tokens of the same verifications with those tokens written on the host, bit for bit: with
     * their step replayed from a graph, and (24 sequences) when the step first grows the target's buffers and takes the
     * tokens on the host instead. A step its runner submitted another after, or whose row was drawn on the host, is
     * refused as a source.
     */
    @Test
    void verificationsTakeTheirLastTokensFromAnotherRunnersStep() {
        Gpu.context();
        try (CudaBackend backend = new CudaBackend(); ModelRunner target = target(backend, 5);
             ModelRunner draft = twoLayers(backend, 6)) {
            for (int sequences : new int[] {4, 24}) {
                Verifications v = new Verifications(target, draft, prompts(sequences));
                int[] onDeviceFirst = v.run(true);  // for 24 sequences the first grows the target's buffers: on the host
                int[] onHost = v.run(false);
                long replayedBefore = target.counters().replayedSteps();
                int[] onDevice = v.run(true);
                assertArrayEquals(onHost, onDeviceFirst, sequences + " verifications, the first carrying");
                assertArrayEquals(onHost, onDevice, sequences + " verifications carrying their last token on the device");
                assertTrue(target.counters().replayedSteps() > replayedBefore, "a uniform verification replays a graph");
                v.release();
                System.out.printf("[gpu-check] %d verifications taking their last token from the draft's step on the device "
                        + "equal those given it on the host%n", sequences);
            }
            refusesSourcesItCannotCarryFrom(target, draft);
        }
    }

    private static void refusesSourcesItCannotCarryFrom(ModelRunner target, ModelRunner draft) {
        int vocab = CONFIG.vocabSize();
        BlockTable draftTable = draft.blockAllocator().newTable(), targetTable = target.blockAllocator().newTable();
        draftTable.reserveOrFail(8, draft.blockAllocator());
        targetTable.reserveOrFail(8, target.blockAllocator());
        Sampler[] greedy = {new Sampler(SamplingParams.greedy(4), vocab), new Sampler(SamplingParams.greedy(4), vocab)};
        ForwardBatch prompt = ForwardBatch.of(new ForwardBatch.Chunk(new int[] {1, 2, 3, 4, 5, 6}, 0, draftTable));
        SubmittedStep first = draft.submit(prompt, greedy), second = draft.submit(prompt, greedy);
        var e = assertThrows(IllegalStateException.class, () -> target.submit(ForwardBatch.of(
                new ForwardBatch.Chunk(new int[] {1, 0}, 6, targetTable, 0, 2, first)), greedy));
        assertTrue(e.getMessage().contains("submitted another after"), e.getMessage());
        first.await(new int[1]);
        second.await(new int[1]);
        Sampler[] onHost = {new Sampler(SamplingParams.greedy(4).withRepetitionPenalty(1.2f), vocab)};
        SubmittedStep drawnOnHost = draft.submit(prompt, onHost);
        e = assertThrows(IllegalStateException.class, () -> target.submit(ForwardBatch.of(
                new ForwardBatch.Chunk(new int[] {1, 0}, 6, targetTable, 0, 2, drawnOnHost)), greedy));
        assertTrue(e.getMessage().contains("did not sample it on the GPU"), e.getMessage());
        drawnOnHost.await(new int[1]);
        draftTable.release(draft.blockAllocator());
        targetTable.release(target.blockAllocator());
    }

    /**
     * Verifications of gamma 1 for {@code prompts}: the target holds each prompt but its last token, the draft drafts the
     * next token after the whole prompt, and the target verifies the last token and that draft, two outputs each.
     */
    private static final class Verifications {
        final ModelRunner target, draft;
        final int[][] prompts;
        final BlockTable[] tables;
        final Sampler[] greedy;

        Verifications(ModelRunner target, ModelRunner draft, int[][] prompts) {
            this.target = target;
            this.draft = draft;
            this.prompts = prompts;
            this.tables = new BlockTable[prompts.length];
            this.greedy = new Sampler[2 * prompts.length];
            List<ForwardBatch.Chunk> prefixes = new ArrayList<>();
            for (int i = 0; i < prompts.length; i++) {
                tables[i] = target.blockAllocator().newTable();
                tables[i].reserveOrFail(prompts[i].length + 1, target.blockAllocator());
                prefixes.add(new ForwardBatch.Chunk(Arrays.copyOf(prompts[i], prompts[i].length - 1), 0, tables[i]));
            }
            Arrays.setAll(greedy, i -> new Sampler(SamplingParams.greedy(4), CONFIG.vocabSize()));
            target.forward(new ForwardBatch(prefixes), new float[prompts.length * CONFIG.vocabSize()]);
        }

        /** The verifications' tokens, their drafted token taken from the draft's step on the device or written on the host. */
        int[] run(boolean onDevice) {
            BlockTable[] draftTables = new BlockTable[prompts.length];
            List<ForwardBatch.Chunk> drafting = new ArrayList<>();
            for (int i = 0; i < prompts.length; i++) {
                draftTables[i] = draft.blockAllocator().newTable();
                draftTables[i].reserveOrFail(prompts[i].length, draft.blockAllocator());
                drafting.add(new ForwardBatch.Chunk(prompts[i], 0, draftTables[i]));
            }
            SubmittedStep drafted = draft.submit(new ForwardBatch(drafting), greedy);
            int[] draftTokens = new int[prompts.length];
            if (!onDevice) {
                drafted.await(draftTokens);
            }
            List<ForwardBatch.Chunk> verifying = new ArrayList<>();
            for (int i = 0; i < prompts.length; i++) {
                int[] tokens = {prompts[i][prompts[i].length - 1], draftTokens[i]};
                int start = prompts[i].length - 1;
                verifying.add(onDevice ? new ForwardBatch.Chunk(tokens, start, tables[i], i, 2, drafted)
                        : new ForwardBatch.Chunk(tokens, start, tables[i], -1, 2));
            }
            int[] verified = new int[2 * prompts.length];
            target.submit(new ForwardBatch(verifying), greedy).await(verified);
            if (onDevice) {
                drafted.await(draftTokens);
            }
            for (BlockTable t : draftTables) {
                t.release(draft.blockAllocator());
            }
            return verified;
        }

        void release() {
            for (BlockTable t : tables) {
                t.release(target.blockAllocator());
            }
        }
    }

    @Test
    void speculatingGivesTheTargetsGreedyTokens() {
        Gpu.context();
        try (CudaBackend backend = new CudaBackend(); ModelRunner target = target(backend, 7)) {
            int[][] prompts = prompts(6);
            int[][] plain = run(target, prompts, null);
            ModelRunner draft = selfDraft(target);
            for (Proposer proposer : new Proposer[] {new DraftModelProposer(draft, "self:2", CONFIG.vocabSize(), draft),
                    new NgramProposer(1, 3)}) {
                try (Speculation speculation = new Speculation(proposer, 4, 64)) {
                    GreedyRuns.assertSameUpToNearTies("speculative (" + proposer.describe() + ")", target, prompts, plain,
                            run(target, prompts, speculation));
                }
            }
        }
    }

    /**
     * A greedy draft at gamma 1 and 2, alone and in a batch of six: each verification takes its last drafted token from
     * the draft's step on the device (the host awaits that step only after the verification; alone, every one does),
     * rounds take their first drafted token from the draft's catch-up behind the verification before, and the tokens
     * are the target's own greedy ones up to near-ties.
     */
    @Test
    void greedyDraftsReachTheVerificationOnTheDevice() {
        Gpu.context();
        try (CudaBackend backend = new CudaBackend(); ModelRunner target = target(backend, 7);
             ModelRunner draft = selfDraft(target)) {
            int[][] prompts = prompts(6);
            for (int[][] batch : new int[][][] {Arrays.copyOf(prompts, 1), prompts}) {
                int[][] plain = run(target, batch, null);
                for (int gamma : new int[] {1, 2}) {
                    String what = "gamma " + gamma + ", " + batch.length + " requests";
                    VerificationWatch watch = new VerificationWatch();
                    DraftModelProposer proposer = new DraftModelProposer(draft, "self:2", CONFIG.vocabSize(), null);
                    try (Speculation speculation = new Speculation(proposer, gamma, 64)) {
                        GreedyRuns.assertSameUpToNearTies(what, target, batch, plain, run(target, batch, speculation, watch));
                    }
                    System.out.printf("[gpu-check] %s: %d of %d verifications took their last drafted token on the device, "
                            + "%d rounds their first from the draft's catch-up%n", what, watch.lastTokenOnDevice(),
                            watch.verifications(), proposer.caughtUpRounds());
                    assertTrue(watch.lastTokenOnDevice() > 0, what);
                    assertTrue(proposer.caughtUpRounds() > 0, what + ": the draft caught up behind verifications");
                    if (batch.length == 1) {
                        assertEquals(watch.verifications(), watch.lastTokenOnDevice(), what);
                    }
                }
            }
            assertEquals(draft.blockAllocator().capacity(), draft.blockAllocator().freeBlocks(), "draft blocks leaked");
        }
    }

    /** A target runner with random weights of {@code seed}. */
    private static ModelRunner target(CudaBackend backend, long seed) {
        return backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, 8192, BLOCK), seed);
    }

    /** A draft runner: the target's shape with two layers, random weights of {@code seed}. */
    private static ModelRunner twoLayers(CudaBackend backend, long seed) {
        return backend.loadRandom(CONFIG.withLayers(2), DType.BF16, KvCacheSpec.forTokens(CONFIG.withLayers(2), 8192, BLOCK), seed);
    }

    /** The target's first two layers, its final norm and output projection, over its own device weights. */
    private static ModelRunner selfDraft(ModelRunner target) {
        return target.firstLayers(2, KvCacheSpec.forTokens(CONFIG.withLayers(2), 8192, BLOCK)).orElseThrow();
    }

    /**
     * A self:K draft reads the target's weights where they are: opening it takes the device memory of its cache and
     * step buffers, not that of its layers, embedding and output projection again; its logits are those of the same
     * layers uploaded on their own, and the target computes as before once it is closed.
     */
    @Test
    void aSelfDraftReadsTheTargetsDeviceWeights() {
        CudaContext context = Gpu.context();
        ModelConfig wide = new ModelConfig(Architecture.LLAMA, 1024, 4096, 4, 8, 2, 128, 32000, 2048, 1e-5, 10000,
                new RopeScaling.None(), false, Biases.NONE, 0, 1, List.of(), DType.BF16);
        ModelConfig twoLayers = wide.withLayers(2);
        KvCacheSpec kv = KvCacheSpec.forTokens(twoLayers, 256, BLOCK);
        int[] prompt = new SplittableRandom(2).ints(40, 0, wide.vocabSize()).toArray();
        try (CudaBackend backend = new CudaBackend(); Model model = RandomWeights.create(wide, DType.BF16, 3);
             ModelRunner target = backend.load(model, KvCacheSpec.forTokens(wide, 256, BLOCK), Progress.NONE)) {
            float[] targetBefore = StreamingFixtures.lastLogits(target, prompt), alone;
            long weights = DeviceWeights.deviceBytes(twoLayers, DType.BF16), free = context.memoryInfo().free(), uploadedTakes;
            try (ModelRunner uploaded = backend.load(model.firstLayers(2), kv, Progress.NONE)) {
                alone = StreamingFixtures.lastLogits(uploaded, prompt);
                uploadedTakes = free - context.memoryInfo().free();
            }
            free = context.memoryInfo().free();
            try (ModelRunner draft = target.firstLayers(2, kv).orElseThrow()) {
                float[] drafted = StreamingFixtures.lastLogits(draft, prompt);
                long takes = free - context.memoryInfo().free();
                System.out.printf("[gpu-check] a self:2 draft takes %.1f MB of device memory, the same layers uploaded %.1f MB "
                        + "(their weights %.1f MB)%n", takes / 1e6, uploadedTakes / 1e6, weights / 1e6);
                assertTrue(takes <= uploadedTakes - weights / 2, "the draft takes " + takes + " bytes, the layers uploaded "
                        + uploadedTakes + ", of which weights " + weights);
                assertEquals(0, worstDifference(drafted, alone), 1e-3, "the draft's logits against the same layers uploaded alone");
            }
            assertEquals(0, worstDifference(StreamingFixtures.lastLogits(target, prompt), targetBefore), 1e-3,
                    "the target after its draft closed");
        }
    }

    /** Random prompts of 8 to 99 tokens. */
    private static int[][] prompts(int count) {
        int[][] prompts = new int[count][];
        SplittableRandom random = new SplittableRandom(9);
        for (int i = 0; i < prompts.length; i++) {
            prompts[i] = random.ints(random.nextInt(8, 100), 0, CONFIG.vocabSize()).toArray();
        }
        return prompts;
    }

    private static int[][] run(ModelRunner runner, int[][] prompts, Speculation speculation) {
        return run(runner, prompts, speculation, StepObserver.NONE);
    }

    private static int[][] run(ModelRunner runner, int[][] prompts, Speculation speculation, StepObserver observer) {
        LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(8, 512, 256, SchedulePolicy.DECODE_FIRST, false, true),
                Set.of(), null);
        engine.setObserver(observer);
        if (speculation != null) {
            engine.speculate(speculation);
        }
        Sequence[] sequences = new Sequence[prompts.length];
        for (int i = 0; i < prompts.length; i++) {
            sequences[i] = engine.add(prompts[i], SamplingParams.greedy(48), RequestListener.NONE);
        }
        long replayedBefore = runner.counters().replayedSteps();
        while (engine.hasWork()) {
            engine.step();
        }
        if (speculation != null) {
            SpeculationStats s = engine.scheduler().speculation();
            long replayed = runner.counters().replayedSteps() - replayedBefore;
            System.out.printf("[gpu-check] speculative (%s): %d of %d drafted tokens accepted, %.2f tokens per verification "
                    + "(%d verifications), %d steps replayed from graphs%n", speculation.proposer().describe(), s.accepted(),
                    s.proposed(), s.meanAcceptedLength(), s.verifications(), replayed);
            assertTrue(s.verifications() > 0, "verifications ran");
            // Verifications of gamma + 1 tokens in every sequence replay their own graph; n-gram drafts of several
            // lengths beside plain decodes replay the decode graph of their rows.
            assertTrue(replayed > 0, "verifications replay graphs");
        }
        assertEquals(runner.blockAllocator().capacity(), runner.blockAllocator().freeBlocks(), "KV blocks leaked");
        return Arrays.stream(sequences).map(Sequence::generatedTokens).toArray(int[][]::new);
    }
}
