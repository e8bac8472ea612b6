package dev.ember.scheduler;

import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.RequestListener;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
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
import org.junit.jupiter.params.provider.CsvSource;

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
            1e-6, 10000, new RopeScaling.None(), false, Biases.NONE, 0, 1, List.of(), DType.BF16);
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
        return greedyAlone(reference, prompt, maxTokens);
    }

    /** Greedy tokens for one prompt on {@code runner}, one forward at a time. */
    static int[] greedyAlone(ModelRunner runner, int[] prompt, int maxTokens) {
        BlockTable table = new BlockTable(16);
        assertTrue(table.reserve(prompt.length + maxTokens, runner.blockAllocator()));
        float[] logits = new float[runner.config().vocabSize()];
        try {
            runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table)), logits);
            int[] out = new int[maxTokens];
            for (int i = 0; i < maxTokens; i++) {
                out[i] = dev.ember.Numerics.argmax(logits, 0, logits.length);
                if (i + 1 < maxTokens) {
                    runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(new int[]{out[i]}, prompt.length + i, table)), logits);
                }
            }
            return out;
        } finally {
            table.release(runner.blockAllocator());
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
            LlmEngine engine = new LlmEngine(runner, config, Set.of(), null);
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
                        sequences[i] = engine.add(r.prompt(), SamplingParams.greedy(r.maxTokens()), listener);
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
    @CsvSource({"DECODE_FIRST, true", "DECODE_FIRST, false", "PREFILL_FIRST, true", "PREFILL_FIRST, false"})
    void randomArrivalsMatchOneAtATimeGreedy(SchedulePolicy policy, boolean overlap) {
        List<Request> requests = randomRequests(1, 24, new int[0]);
        long[] preemptions = new long[1];
        int[][] out = runBatched(requests, new SchedulerConfig(8, 64, 16, policy, false, overlap), 4096, preemptions, new double[1]);
        assertMatchesReference(requests, out);
    }

    @ParameterizedTest
    @CsvSource({"DECODE_FIRST, true", "DECODE_FIRST, false", "PREFILL_FIRST, true", "PREFILL_FIRST, false"})
    void preemptionUnderAScarceCacheRecomputesAndLosesNothing(SchedulePolicy policy, boolean overlap) {
        List<Request> requests = randomRequests(2, 16, new int[0]);
        long[] preemptions = new long[1];
        // 8 blocks of 16 tokens: room for two or three sequences, so later ones preempt earlier ones. Under PREFILL_FIRST
        // a prompt that cannot grow must not take its blocks back every step from the decodes that would free them.
        int[][] out = runBatched(requests, new SchedulerConfig(8, 64, 16, policy, true, overlap), 128, preemptions, new double[1]);
        assertTrue(preemptions[0] > 0, "the test should force preemption");
        assertMatchesReference(requests, out);
    }

    /**
     * With overlap, the engine submits step N+1 before it awaits step N, and N+1's decodes carry N's tokens; a request
     * that stops on EOS while the next step is in flight ends with exactly the reference tokens up to its EOS.
     */
    @Test
    void overlappedStepsCarryTokensAndStopOnEos() {
        List<Request> requests = randomRequests(6, 10, new int[0]);
        int[][] reference = new int[requests.size()][];
        for (int i = 0; i < reference.length; i++) {
            reference[i] = greedyAlone(requests.get(i).prompt(), requests.get(i).maxTokens());
        }
        int eos = reference[0][reference[0].length / 2];  // a token some request generates part-way
        try (ModelRunner cpu = backend.load(model, KvCacheSpec.forTokens(CONFIG, 2048, 16), Progress.NONE);
             RecordingRunner runner = new RecordingRunner(cpu)) {
            LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(8, 64, 16, SchedulePolicy.DECODE_FIRST, true, true), Set.of(eos), null);
            Sequence[] sequences = new Sequence[requests.size()];
            for (int i = 0; i < sequences.length; i++) {
                sequences[i] = engine.add(requests.get(i).prompt(), SamplingParams.greedy(requests.get(i).maxTokens()),
                        RequestListener.NONE);
            }
            while (engine.hasWork()) {
                engine.step();
            }
            for (int i = 0; i < sequences.length; i++) {
                int stop = 0;
                while (stop < reference[i].length && reference[i][stop] != eos) {
                    stop++;
                }
                int[] expected = Arrays.copyOf(reference[i], Math.min(stop + 1, reference[i].length));
                assertArrayEquals(expected, sequences[i].generatedTokens(), "request " + i);
                assertEquals(stop < reference[i].length ? FinishReason.STOP : FinishReason.LENGTH, sequences[i].finishReason());
            }
            assertTrue(runner.submittedBeforeAwait > 0, "steps should overlap: " + runner.events);
            assertTrue(runner.carriedChunks > 0, "decodes should carry tokens from the step in flight");
            engine.scheduler().prefixCache().clear();
            assertEquals(runner.blockAllocator().capacity(), runner.blockAllocator().freeBlocks(), "KV blocks leaked");
        }
    }

    /** A runner that records the order of submits and awaits and counts carried chunks. */
    private static final class RecordingRunner implements ModelRunner {
        final ModelRunner inner;
        final List<String> events = new ArrayList<>();
        int outstanding, submittedBeforeAwait, carriedChunks, next;

        RecordingRunner(ModelRunner inner) {
            this.inner = inner;
        }

        @Override
        public dev.ember.backend.SubmittedStep submit(ForwardBatch batch, dev.ember.sampling.Sampler[] samplers) {
            int id = next++;
            events.add("submit " + id);
            if (outstanding > 0) {
                submittedBeforeAwait++;
            }
            outstanding++;
            carriedChunks += (int) batch.chunks().stream().filter(c -> c.carriedFrom() >= 0).count();
            dev.ember.backend.SubmittedStep step = inner.submit(batch, samplers);
            return tokens -> {
                events.add("await " + id);
                outstanding--;
                step.await(tokens);
            };
        }

        @Override
        public boolean carriesTokens(dev.ember.sampling.Sampler sampler) {
            return inner.carriesTokens(sampler);
        }

        @Override
        public dev.ember.backend.WorkMarks workMarks(int points) {
            return inner.workMarks(points);
        }

        @Override
        public void forward(ForwardBatch batch, float[] logits) {
            inner.forward(batch, logits);
        }

        @Override
        public ModelConfig config() {
            return inner.config();
        }

        @Override
        public KvCacheSpec kvSpec() {
            return inner.kvSpec();
        }

        @Override
        public dev.ember.kvcache.BlockAllocator blockAllocator() {
            return inner.blockAllocator();
        }

        @Override
        public int kvElementBytes() {
            return inner.kvElementBytes();
        }

        @Override
        public int weightElementBytes() {
            return inner.weightElementBytes();
        }

        @Override
        public String deviceName() {
            return inner.deviceName();
        }

        @Override
        public void close() {
        }
    }

    @Test
    void sharedPrefixesHitTheCacheAndChangeNothing() {
        int[] system = new SplittableRandom(5).ints(48, 0, CONFIG.vocabSize()).toArray();
        List<Request> requests = randomRequests(3, 20, system);
        double[] hitRate = new double[1];
        int[][] cached = runBatched(requests, new SchedulerConfig(4, 256, 64, SchedulePolicy.DECODE_FIRST, true, true), 2048, new long[1], hitRate);
        assertTrue(hitRate[0] > 0.2, "prefix-cache hit rate " + hitRate[0]);
        assertMatchesReference(requests, cached);
    }

    /**
     * Copies of prompts arriving together (the choices of {@code n > 1} requests) wait for the first copy's prefill
     * and share its blocks, under both policies and with a cache scarce enough to preempt: nothing changes in the tokens.
     */
    @ParameterizedTest
    @CsvSource({"DECODE_FIRST, 4096", "PREFILL_FIRST, 4096", "DECODE_FIRST, 160", "PREFILL_FIRST, 160"})
    void copiesOfPromptsArrivingTogetherShareTheirPrefillAndChangeNothing(SchedulePolicy policy, int kvTokens) {
        int[] system = new SplittableRandom(11).ints(32, 0, CONFIG.vocabSize()).toArray();
        List<Request> requests = new ArrayList<>();
        for (Request r : randomRequests(12, 8, system)) {
            for (int copy = 0; copy <= r.arrivalStep() % 3; copy++) {
                requests.add(r);
            }
        }
        double[] hitRate = new double[1];
        int[][] out = runBatched(requests, new SchedulerConfig(6, 64, 16, policy, true, true), kvTokens, new long[1], hitRate);
        assertTrue(hitRate[0] > 0.2, "prefix-cache hit rate " + hitRate[0]);
        assertMatchesReference(requests, out);
    }

    @Test
    void chunkedPrefillGivesTheSameTokensAsWholePrefill() {
        List<Request> requests = randomRequests(4, 6, new int[0]);
        int[][] chunked = runBatched(requests, new SchedulerConfig(4, 7, 3, SchedulePolicy.DECODE_FIRST, false, true), 1024, new long[1], new double[1]);
        int[][] whole = runBatched(requests, new SchedulerConfig(4, 1024, 1024, SchedulePolicy.DECODE_FIRST, false, true), 1024, new long[1], new double[1]);
        assertArrayEquals(whole, chunked);
        assertMatchesReference(requests, whole);
    }
}
