package dev.ember.scheduler;

import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.engine.FinishReason;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.RequestListener;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.RandomWeights;
import dev.ember.model.RopeScaling;
import dev.ember.sampling.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The batched engine against one-request-at-a-time greedy generation on a random model: under random
 * arrivals and lengths, with a KV cache small enough to force preemption, with and without the prefix
 * cache, and with chunked prefill. Every request must finish with exactly the reference tokens, and every
 * KV block must come back.
 */
class LlmEngineTest {
    private static final ModelConfig CONFIG = new ModelConfig(Architecture.QWEN3, 64, 128, 2, 4, 2, 16, 200, 1024,
            1e-6, 10000, new RopeScaling.None(), false, false, 0, 1, List.of(), DType.BF16);
    static CpuBackend backend;
    static Model model;
    private static ModelRunner reference;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
        model = RandomWeights.create(CONFIG, DType.BF16, 99);
        reference = backend.load(model, KvCacheSpec.forTokens(CONFIG, 512, 16), Progress.NONE);
    }

    @AfterAll
    static void tearDown() {
        reference.close();
        model.close();
        backend.close();
    }

    /** Greedy tokens for one prompt, one forward at a time: the reference. */
    static int[] greedyAlone(int[] prompt, int maxTokens) {
        BlockTable table = new BlockTable(16);
        assertTrue(table.reserve(prompt.length + maxTokens, reference.blockAllocator()));
        float[] logits = new float[CONFIG.vocabSize()];
        try {
            reference.forward(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table)), logits);
            int[] out = new int[maxTokens];
            for (int i = 0; i < maxTokens; i++) {
                out[i] = dev.ember.Numerics.argmax(logits, 0, logits.length);
                if (i + 1 < maxTokens) {
                    reference.forward(ForwardBatch.of(new ForwardBatch.Chunk(new int[]{out[i]}, prompt.length + i, table)), logits);
                }
            }
            return out;
        } finally {
            table.release(reference.blockAllocator());
        }
    }

    record Request(int arrivalStep, int[] prompt, int maxTokens) {
    }

    static List<Request> randomRequests(long seed, int count, int[] sharedPrefix) {
        SplittableRandom random = new SplittableRandom(seed);
        List<Request> requests = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int[] own = random.ints(random.nextInt(1, 40), 0, CONFIG.vocabSize()).toArray();
            int[] prompt = sharedPrefix.length > 0 && random.nextBoolean()
                    ? concat(sharedPrefix, own) : own;
            requests.add(new Request(random.nextInt(0, 12), prompt, random.nextInt(1, 24)));
        }
        return requests;
    }

    static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** Runs the requests through the engine, each submitted at its arrival step; returns their tokens. */
    static int[][] runBatched(List<Request> requests, SchedulerConfig config, int kvTokens, long[] preemptions, double[] hitRate) {
        try (ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(CONFIG, kvTokens, 16), Progress.NONE)) {
            LlmEngine engine = new LlmEngine(runner, config, Set.of());
            Sequence[] sequences = new Sequence[requests.size()];
            int[] finished = new int[1];
            RequestListener listener = new RequestListener() {
                @Override
                public void onFinish(Sequence s) {
                    finished[0]++;
                }
            };
            int step = 0;
            int submitted = 0;
            while (submitted < requests.size() || engine.hasWork()) {
                for (int i = 0; i < requests.size(); i++) {
                    Request r = requests.get(i);
                    if (sequences[i] == null && r.arrivalStep() <= step) {
                        sequences[i] = engine.submit(r.prompt(), SamplingParams.greedy(r.maxTokens()), listener);
                        submitted++;
                    }
                }
                engine.step();
                step++;
                assertTrue(step < 10_000, "engine did not finish");
            }
            assertEquals(requests.size(), finished[0], "every request finishes once");
            int[][] out = new int[requests.size()][];
            for (int i = 0; i < out.length; i++) {
                assertEquals(FinishReason.LENGTH, sequences[i].finishReason());
                out[i] = sequences[i].generatedTokens();
            }
            preemptions[0] = engine.scheduler().preemptions();
            PrefixCache cache = engine.scheduler().prefixCache();
            hitRate[0] = cache == null ? 0 : cache.hitRate();
            if (cache != null) {
                cache.clear();
            }
            assertEquals(runner.blockAllocator().capacity(), runner.blockAllocator().freeBlocks(), "KV blocks leaked");
            return out;
        }
    }

    static void assertMatchesReference(List<Request> requests, int[][] out) {
        for (int i = 0; i < requests.size(); i++) {
            Request r = requests.get(i);
            assertArrayEquals(greedyAlone(r.prompt(), r.maxTokens()), out[i], "request " + i);
        }
    }

    @ParameterizedTest
    @EnumSource(SchedulePolicy.class)
    void randomArrivalsMatchOneAtATimeGreedy(SchedulePolicy policy) {
        List<Request> requests = randomRequests(1, 24, new int[0]);
        long[] preemptions = new long[1];
        int[][] out = runBatched(requests, new SchedulerConfig(8, 64, 16, policy, false), 4096, preemptions, new double[1]);
        assertMatchesReference(requests, out);
    }

    @Test
    void preemptionUnderAScarceCacheRecomputesAndLosesNothing() {
        List<Request> requests = randomRequests(2, 16, new int[0]);
        long[] preemptions = new long[1];
        // 8 blocks of 16 tokens: room for two or three sequences, so later ones preempt earlier ones.
        int[][] out = runBatched(requests, new SchedulerConfig(8, 64, 16, SchedulePolicy.DECODE_FIRST, true), 128, preemptions, new double[1]);
        assertTrue(preemptions[0] > 0, "the test should force preemption");
        assertMatchesReference(requests, out);
    }

    @Test
    void sharedPrefixesHitTheCacheAndChangeNothing() {
        int[] system = new SplittableRandom(5).ints(48, 0, CONFIG.vocabSize()).toArray();
        List<Request> requests = randomRequests(3, 20, system);
        double[] hitRate = new double[1];
        int[][] cached = runBatched(requests, new SchedulerConfig(4, 256, 64, SchedulePolicy.DECODE_FIRST, true), 2048, new long[1], hitRate);
        assertTrue(hitRate[0] > 0.2, "prefix-cache hit rate " + hitRate[0]);
        assertMatchesReference(requests, cached);
    }

    @Test
    void chunkedPrefillGivesTheSameTokensAsWholePrefill() {
        List<Request> requests = randomRequests(4, 6, new int[0]);
        int[][] chunked = runBatched(requests, new SchedulerConfig(4, 7, 3, SchedulePolicy.DECODE_FIRST, false), 1024, new long[1], new double[1]);
        int[][] whole = runBatched(requests, new SchedulerConfig(4, 1024, 1024, SchedulePolicy.DECODE_FIRST, false), 1024, new long[1], new double[1]);
        assertArrayEquals(whole, chunked);
        assertMatchesReference(requests, whole);
    }
}
