package dev.ember.scheduler;

import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.RequestListener;
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
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import dev.ember.sampling.ScoredToken;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Prompt logprobs (vLLM's {@code prompt_logprobs}, and the scores an echo with logprobs writes): through the engine, in
 * chunks, in batches beside requests that ask for none, with overlap, the prefix cache and preemption, every prompt
 * token's score equals what one forward pass over the whole prompt gives, and the generated tokens are those of plain
 * greedy decoding.
 */
class PromptLogprobsTest {
    private static final ModelConfig CONFIG = new ModelConfig(Architecture.LLAMA, 64, 128, 2, 4, 2, 16, 200, 1024,
            1e-5, 10000, new RopeScaling.None(), false, Biases.NONE, 0, 1, List.of(), DType.BF16);
    private static final int TOP = 3;
    private static CpuBackend backend;
    private static Model model;
    private static ModelRunner reference;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
        model = RandomWeights.create(CONFIG, DType.BF16, 41);
        reference = backend.load(model, KvCacheSpec.forTokens(CONFIG, 512, 16), Progress.NONE);
    }

    @AfterAll
    static void tearDown() {
        reference.close();
        model.close();
        backend.close();
    }

    /** Each prompt token from the second on, scored from one forward pass whose every position is an output. */
    private static ScoredToken[] referenceScores(int[] prompt) {
        int vocab = CONFIG.vocabSize();
        BlockTable table = new BlockTable(16);
        assertTrue(table.reserve(prompt.length, reference.blockAllocator()));
        float[] logits = new float[prompt.length * vocab];
        try {
            reference.forward(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table, -1, prompt.length)), logits);
        } finally {
            table.release(reference.blockAllocator());
        }
        ScoredToken[] scores = new ScoredToken[prompt.length];
        for (int p = 1; p < prompt.length; p++) {
            scores[p] = ScoredToken.of(logits, (p - 1) * vocab, vocab, prompt[p], TOP);
        }
        return scores;
    }

    private static void assertScores(int[] prompt, Sampler sampler, String what) {
        ScoredToken[] expected = referenceScores(prompt);
        assertNull(sampler.promptLogprobs(0), what + ": the first token has no score");
        for (int p = 1; p < prompt.length; p++) {
            ScoredToken got = sampler.promptLogprobs(p);
            assertNotNull(got, what + ": position " + p + " was not scored");
            assertEquals(prompt[p], got.logprobs().token(), what + ": position " + p);
            assertEquals(expected[p].logprobs().logprob(), got.logprobs().logprob(), 1e-4, what + ": position " + p);
            assertTrue(got.logprobs().logprob() < 0, what + ": a log-probability is negative");
            assertArrayEquals(expected[p].logprobs().topLogprobs(), got.logprobs().topLogprobs(), 1e-4f, what + ": position " + p);
            assertEquals(TOP, got.logprobs().topTokens().length);
            assertEquals(expected[p].rank(), got.rank(), what + ": rank at position " + p);
        }
        assertNull(sampler.promptLogprobs(prompt.length), what + ": nothing past the prompt");
    }

    private record Request(int arrivalStep, int[] prompt, int maxTokens, boolean scored) {
    }

    /** Runs the requests, each added at its arrival step, and checks scores, tokens and blocks; returns the preemptions. */
    private static long run(List<Request> requests, SchedulerConfig config, int kvTokens) {
        try (ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(CONFIG, kvTokens, 16), Progress.NONE)) {
            LlmEngine engine = new LlmEngine(runner, config, Set.of(), null);
            Sequence[] sequences = new Sequence[requests.size()];
            int added = 0;
            for (int step = 0; added < requests.size() || engine.hasWork(); step++) {
                for (int i = 0; i < requests.size(); i++) {
                    Request r = requests.get(i);
                    if (sequences[i] == null && r.arrivalStep() <= step) {
                        SamplingParams params = SamplingParams.greedy(r.maxTokens()).withPromptLogprobs(r.scored() ? TOP : -1);
                        sequences[i] = engine.add(r.prompt(), params, RequestListener.NONE);
                        added++;
                    }
                }
                engine.step();
                assertTrue(step < 10_000, "the engine did not finish");
            }
            for (int i = 0; i < requests.size(); i++) {
                Request r = requests.get(i);
                assertArrayEquals(LlmEngineTest.greedyAlone(reference, r.prompt(), r.maxTokens()), sequences[i].generatedTokens(),
                        "request " + i + ": scoring the prompt changes no generated token");
                if (r.scored()) {
                    assertScores(r.prompt(), sequences[i].sampler(), "request " + i);
                } else {
                    assertNull(sequences[i].sampler().promptLogprobs(1), "request " + i + " asked for no scores");
                }
            }
            if (engine.scheduler().prefixCache() != null) {
                engine.scheduler().prefixCache().clear();
            }
            assertEquals(runner.blockAllocator().capacity(), runner.blockAllocator().freeBlocks(), "KV blocks leaked");
            return engine.scheduler().preemptions();
        }
    }

    /** Random prompts, half of them sharing a prefix, every other one scored; the last repeats an earlier prompt. */
    private static List<Request> requests(long seed, int count) {
        SplittableRandom random = new SplittableRandom(seed);
        int[] shared = random.ints(40, 0, CONFIG.vocabSize()).toArray();
        List<Request> requests = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int[] own = random.ints(random.nextInt(1, 50), 0, CONFIG.vocabSize()).toArray();
            int[] prompt = random.nextBoolean() ? LlmEngineTest.concat(shared, own) : own;
            requests.add(new Request(random.nextInt(0, 10), prompt, random.nextInt(1, 12), i % 2 == 1));
        }
        // The same prompt again, scored, after the first has left its blocks in the prefix cache.
        Request first = requests.getFirst();
        requests.add(new Request(40, first.prompt(), 3, true));
        return requests;
    }

    @ParameterizedTest
    @CsvSource({"DECODE_FIRST, true", "DECODE_FIRST, false", "PREFILL_FIRST, true", "PREFILL_FIRST, false"})
    void everyPromptTokenIsScoredAsOneForwardPassScoresIt(SchedulePolicy policy, boolean overlap) {
        run(requests(3, 12), new SchedulerConfig(6, 48, 16, policy, true, overlap), 4096);
    }

    @Test
    void preemptedPromptsAreScoredWhole() {
        // 8 blocks of 16 tokens: a few sequences at a time, so later ones preempt earlier ones mid-prompt and after.
        long preemptions = run(requests(4, 10), new SchedulerConfig(6, 48, 16, SchedulePolicy.DECODE_FIRST, true, true), 128);
        assertTrue(preemptions > 0, "the test should force preemption");
    }

    @Test
    void aPromptOfOneTokenHasNothingToScore() {
        run(List.of(new Request(0, new int[] {17}, 4, true)), new SchedulerConfig(4, 32, 16, SchedulePolicy.DECODE_FIRST,
                true, true), 512);
    }

    /** The scheduler scores no more prompt positions in a step than it was given, whatever its token budget. */
    @Test
    void aStepScoresNoMorePositionsThanItsLimit() {
        BlockAllocator allocator = new BlockAllocator(64, 16);
        Scheduler scheduler = new Scheduler(new SchedulerConfig(8, 256, 256, SchedulePolicy.DECODE_FIRST, true, false),
                allocator, Set.of(), 10);
        SamplingParams scored = SamplingParams.greedy(4).withPromptLogprobs(0);
        int[] prompt = new SplittableRandom(5).ints(25, 0, CONFIG.vocabSize()).toArray();
        Sequence a = new Sequence(0, prompt, scored, new Sampler(scored, CONFIG.vocabSize()), allocator.newTable(),
                SequenceText.NONE, 0, 1024);
        Sequence b = new Sequence(1, prompt, SamplingParams.greedy(4), new Sampler(SamplingParams.greedy(4), CONFIG.vocabSize()),
                allocator.newTable(), SequenceText.NONE, 0, 1024);
        scheduler.add(a);
        scheduler.add(b);
        List<Integer> counts = new ArrayList<>();
        while (a.computed() < prompt.length) {
            ScheduledStep step = scheduler.schedule();
            int outputs = 0;
            for (ScheduledStep.Work w : step.work()) {
                if (w.sequence() == a) {
                    assertTrue(w.scoresPrompt());
                    assertEquals(w.count(), w.outputs(), "every position of a scored chunk is an output");
                    counts.add(w.count());
                } else {
                    assertFalse(w.scoresPrompt(), "a request that asked for no scores has one output a chunk");
                }
                outputs += w.outputs();
            }
            scheduler.submitted(step);
            int[] tokens = new int[outputs];
            java.util.Arrays.fill(tokens, 3);
            scheduler.update(step, tokens, 0, new ArrayList<>());
        }
        assertEquals(List.of(10, 10, 5), counts);
        assertEquals(1, a.generatedCount(), "the last scored chunk samples the first token");
    }
}
