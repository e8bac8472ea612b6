package dev.ember.engine;

import dev.ember.Progress;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import dev.ember.sampling.SamplingParams;
import dev.ember.sampling.TokenLogprobs;
import dev.ember.scheduler.ScheduledStep;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.scheduler.Sequence;
import dev.ember.scheduler.SpeculationStats;
import dev.ember.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.function.IntFunction;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Speculative decoding is lossless under greedy sampling: with every draft source (the shipped draft model, the
 * target's own first layers, n-gram prompt lookup), alone and in a batch of mixed lengths, each request's tokens are
 * the target's own greedy tokens, drafts are really accepted, and every KV block of target and draft comes back.
 */
class SpeculativeDecodingTest {
    private static final Path TARGET = Path.of("models", "ember-tiny"), DRAFT = Path.of("models", "ember-tiny-draft");
    private static final List<String> PROMPTS = List.of("In the beginning God created the heaven and the earth.",
            "The LORD is my shepherd; I shall not want.", "A wise son maketh a glad father:",
            "Blessed is the man that walketh not in the counsel of the ungodly,", "Love is patient,",
            "The quick brown fox jumps over the lazy dog. The quick brown fox", "To be, or not to be", "Once");
    private static CpuBackend backend;
    private static Model target, draft;
    private static Tokenizer tokenizer;
    private static ModelRunner targetRunner;

    @BeforeAll
    static void load() {
        backend = new CpuBackend(2);
        target = ModelLoader.load(TARGET);
        draft = ModelLoader.load(DRAFT);
        tokenizer = Tokenizer.load(TARGET);
        targetRunner = backend.load(target, KvCacheSpec.forTokens(target.config(), 4096, 16), Progress.NONE);
    }

    @AfterAll
    static void close() {
        targetRunner.close();
        tokenizer.close();
        draft.close();
        target.close();
        backend.close();
    }

    /** The requests' greedy tokens through an engine, speculating with what {@code proposer} makes (none: plain). */
    private static List<int[]> run(List<String> prompts, int maxTokens, Function<ModelRunner, Proposer> proposer,
                                   SpeculationStats[] stats) {
        return run(prompts, maxTokens, proposer, 64, StepObserver.NONE, stats);
    }

    /** The same, speculating only in steps with at most {@code batchLimit} decoding sequences, watched by {@code observer}. */
    private static List<int[]> run(List<String> prompts, int maxTokens, Function<ModelRunner, Proposer> proposer,
                                   int batchLimit, StepObserver observer, SpeculationStats[] stats) {
        return run(prompts, greedyOfMixedLengths(maxTokens), proposer, 4, batchLimit, observer, stats).stream()
                .map(Sequence::generatedTokens).toList();
    }

    /** Greedy requests of {@code maxTokens}, 3 fewer for each later one, that do not stop at the end-of-sequence token. */
    private static IntFunction<SamplingParams> greedyOfMixedLengths(int maxTokens) {
        return i -> SamplingParams.greedy(maxTokens - 3 * i).withIgnoreEos(true);
    }

    /** The finished sequences of the requests, the i-th with {@code params.apply(i)}, speculating as {@link #run} does. */
    private static List<Sequence> run(List<String> prompts, IntFunction<SamplingParams> params,
                                      Function<ModelRunner, Proposer> proposer, SpeculationStats[] stats) {
        return run(prompts, params, proposer, 4, 64, StepObserver.NONE, stats);
    }

    /** The same, drafting {@code gamma} tokens, only in steps with at most {@code batchLimit} decoding sequences. */
    private static List<Sequence> run(List<String> prompts, IntFunction<SamplingParams> params,
                                      Function<ModelRunner, Proposer> proposer, int gamma, int batchLimit,
                                      StepObserver observer, SpeculationStats[] stats) {
        LlmEngine engine = LlmEngine.of(targetRunner, new SchedulerConfig(8, 512, 512, SchedulePolicy.DECODE_FIRST, true, true),
                tokenizer);
        engine.setObserver(observer);
        Proposer p = proposer == null ? null : proposer.apply(targetRunner);
        if (p != null) {
            engine.speculate(new Speculation(p, gamma, batchLimit));
        }
        try {
            List<Sequence> sequences = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                sequences.add(engine.add(tokenizer.encode(prompts.get(i)), params.apply(i), RequestListener.NONE));
            }
            while (engine.hasWork()) {
                engine.step();
            }
            if (stats != null) {
                stats[0] = engine.scheduler().speculation();
            }
            engine.scheduler().prefixCache().clear();
            assertEquals(targetRunner.blockAllocator().capacity(), targetRunner.blockAllocator().freeBlocks(), "target blocks leaked");
            return sequences;
        } finally {
            if (p != null) {
                p.close();
            }
        }
    }

    /**
     * Requests with logprobs and min_tokens speculate too, and stay lossless: the same tokens as plain greedy decoding,
     * each with the target's own logprobs (those of its verification row), and stop tokens masked until min_tokens in
     * the draft and in the verification alike. The stop tokens are ones plain greedy decoding without min_tokens draws
     * early, so that the masking changes the output and a draft that ignored it would be rejected there.
     */
    @ParameterizedTest
    @ValueSource(strings = {"draft", "ngram"})
    void logprobsAndMinTokensSpeculateWithTheTargetsTokensAndLogprobs(String source) {
        Function<ModelRunner, Proposer> proposer = proposer(source);
        List<int[]> free = run(PROMPTS, 40, null, null);
        IntFunction<SamplingParams> params = i -> SamplingParams.greedy(40).withLogprobs(3).withMinTokens(12)
                .withStopTokenIds(java.util.Set.copyOf(List.of(free.get(i)[2], free.get(i)[5])));
        for (List<String> batch : List.of(PROMPTS.subList(0, 1), PROMPTS)) {
            List<Sequence> plain = run(batch, params, null, null);
            SpeculationStats[] stats = new SpeculationStats[1];
            List<Sequence> speculated = run(batch, params, proposer, stats);
            assertTrue(stats[0].verifications() > 0 && stats[0].accepted() > 0, source + ": drafts were verified and accepted");
            for (int i = 0; i < batch.size(); i++) {
                String what = source + ", request " + i + " of " + batch.size();
                Sequence p = plain.get(i), q = speculated.get(i);
                assertArrayEquals(p.generatedTokens(), q.generatedTokens(), what);
                assertTrue(p.generatedCount() >= 12, what + ": no stop before min_tokens");
                for (int t = 0; t < p.generatedCount(); t++) {
                    TokenLogprobs expected = p.sampler().logprobs(t), actual = q.sampler().logprobs(t);
                    assertEquals(expected.token(), actual.token(), what + ", token " + t);
                    assertEquals(expected.logprob(), actual.logprob(), 1e-4, what + ", token " + t);
                    assertArrayEquals(expected.topTokens(), actual.topTokens(), what + ", token " + t);
                    assertArrayEquals(expected.topLogprobs(), actual.topLogprobs(), 1e-4f, what + ", token " + t);
                }
            }
        }
    }

    /** The proposer a test's source names: "draft" (the shipped draft model), "self" (the target's first layers), else n-grams. */
    private static Function<ModelRunner, Proposer> proposer(String source) {
        return switch (source) {
            case "draft" -> SpeculativeDecodingTest::draftModel;
            case "self" -> SpeculativeDecodingTest::selfDraft;
            default -> t -> new NgramProposer(1, 3);
        };
    }

    private static Proposer draftModel(ModelRunner t) {
        ModelRunner d = backend.load(draft, KvCacheSpec.forTokens(draft.config(), 4096, 16), Progress.NONE);
        return new DraftModelProposer(d, "ember-tiny-draft", t.config().vocabSize(), d);
    }

    private static Proposer selfDraft(ModelRunner t) {
        Model firstLayers = target.firstLayers(3);
        ModelRunner d = backend.load(firstLayers, KvCacheSpec.forTokens(firstLayers.config(), 4096, 16), Progress.NONE);
        return new DraftModelProposer(d, "self:3", t.config().vocabSize(), d);
    }

    @ParameterizedTest
    @ValueSource(strings = {"draft", "self", "ngram"})
    void greedySpeculationGivesTheTargetsOwnTokens(String source) {
        Function<ModelRunner, Proposer> proposer = proposer(source);
        for (List<String> batch : List.of(PROMPTS.subList(0, 1), PROMPTS)) {
            List<int[]> plain = run(batch, 40, null, null);
            SpeculationStats[] stats = new SpeculationStats[1];
            List<int[]> speculated = run(batch, 40, proposer, stats);
            for (int i = 0; i < batch.size(); i++) {
                assertArrayEquals(plain.get(i), speculated.get(i), source + ", request " + i + " of " + batch.size());
            }
            assertTrue(stats[0].verifications() > 0, source + ": verification steps ran");
            assertTrue(stats[0].accepted() > 0, source + ": some drafted tokens were accepted");
            assertTrue(stats[0].accepted() < stats[0].proposed() || source.equals("self"),
                    source + ": and some rejected (else the check would not see a rollback)");
        }
    }

    /**
     * Above the batch limit the engine does not draft and overlaps its steps as without speculation; when requests end
     * and the batch falls to the limit it waits for the step in flight and drafts again. Eight requests of 40 down to 19
     * tokens with a limit of 4: the same tokens as plain greedy decoding, steps in flight two at a time while the batch
     * is large, and verifications once it is small.
     */
    @ParameterizedTest
    @ValueSource(strings = {"draft", "ngram"})
    void aboveTheBatchLimitStepsOverlapAndBelowItSpeculationResumes(String source) {
        Function<ModelRunner, Proposer> proposer = proposer(source);
        List<int[]> plain = run(PROMPTS, 40, null, null);
        int[] inFlight = new int[2];  // now, most
        StepObserver watch = new StepObserver() {
            @Override
            public void submitted(ScheduledStep step) {
                inFlight[1] = Math.max(inFlight[1], ++inFlight[0]);
            }

            @Override
            public void retired(ScheduledStep step) {
                inFlight[0]--;
            }
        };
        SpeculationStats[] stats = new SpeculationStats[1];
        List<int[]> speculated = run(PROMPTS, 40, proposer, 4, watch, stats);
        for (int i = 0; i < PROMPTS.size(); i++) {
            assertArrayEquals(plain.get(i), speculated.get(i), source + ", request " + i);
        }
        assertEquals(2, inFlight[1], source + ": steps overlapped while the batch was above the limit");
        assertTrue(stats[0].verifications() > 0, source + ": speculation resumed below the limit");
    }

    /**
     * Greedy drafts of the shipped pair reach the verification on the device: a verification is submitted while the
     * host does not know its last drafted token yet (its chunk carries that token from the draft's last step, awaited
     * only after the verification), and the tokens stay the target's own greedy ones. Alone, every verification takes
     * it so; in a batch of eight of mixed lengths those whose draft ended in the draft's last step do, the others
     * (shorter drafts near their length limit) take it from the host.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2, 4})
    void greedyDraftsReachTheVerificationOnTheDevice(int gamma) {
        for (List<String> batch : List.of(PROMPTS.subList(0, 1), PROMPTS)) {
            List<int[]> plain = run(batch, 40, null, null);
            VerificationWatch watch = new VerificationWatch();
            SpeculationStats[] stats = new SpeculationStats[1];
            List<Sequence> speculated = run(batch, greedyOfMixedLengths(40), SpeculativeDecodingTest::draftModel, gamma, 64,
                    watch, stats);
            String what = "gamma " + gamma + ", " + batch.size() + " requests";
            for (int i = 0; i < batch.size(); i++) {
                assertArrayEquals(plain.get(i), speculated.get(i).generatedTokens(), what + ", request " + i);
            }
            assertTrue(stats[0].accepted() > 0, what + ": drafted tokens were accepted");
            assertEquals(stats[0].verifications(), watch.verifications(), what);
            if (batch.size() == 1) {
                assertEquals(watch.verifications(), watch.lastTokenOnDevice(), what + ": every verification took it on the device");
            } else {
                assertTrue(watch.lastTokenOnDevice() > watch.verifications() / 2,
                        what + ": " + watch.lastTokenOnDevice() + " of " + watch.verifications() + " verifications took it on the device");
            }
        }
    }

    /**
     * The draft's catch-up behind each greedy verification drafts exactly what a first draft step of the next round
     * would: the same tokens proposed and accepted as with every round drafted from the host, at gamma 1, 2 and 4,
     * alone and in a batch of eight of mixed lengths, and the target's own greedy tokens; and most rounds take their first
     * drafted tokens from it. A catch-up fed from a verification not yet computed, or read at the wrong output, would
     * leave the tokens right but change what is accepted.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2, 4})
    void theCatchUpDraftsWhatAFirstDraftStepWould(int gamma) {
        for (List<String> batch : List.of(PROMPTS.subList(0, 1), PROMPTS)) {
            List<int[]> plain = run(batch, 40, null, null);
            SpeculationStats[] fromHost = new SpeculationStats[1], caughtUp = new SpeculationStats[1];
            DraftModelProposer[] proposer = new DraftModelProposer[1];
            int[] rounds = new int[1];
            StepObserver verifying = new StepObserver() {
                @Override
                public void submitted(ScheduledStep step) {
                    rounds[0] += step.verifies() ? 1 : 0;
                }
            };
            run(batch, greedyOfMixedLengths(40), t -> draftModel(t, false), gamma, 64, StepObserver.NONE, fromHost);
            List<Sequence> speculated = run(batch, greedyOfMixedLengths(40), t -> proposer[0] = draftModel(t, true), gamma, 64,
                    verifying, caughtUp);
            String what = "gamma " + gamma + ", " + batch.size() + " requests";
            for (int i = 0; i < batch.size(); i++) {
                assertArrayEquals(plain.get(i), speculated.get(i).generatedTokens(), what + ", request " + i);
            }
            assertEquals(fromHost[0].proposed(), caughtUp[0].proposed(), what + ": drafted tokens");
            assertEquals(fromHost[0].accepted(), caughtUp[0].accepted(), what + ": accepted tokens");
            assertTrue(proposer[0].caughtUpRounds() > rounds[0] / 2,
                    what + ": " + proposer[0].caughtUpRounds() + " of " + rounds[0] + " rounds caught up");
        }
    }

    /**
     * The catch-up under cache pressure: eight requests in a target cache too small for all of them, so that the
     * scheduler preempts and recomputes some, give the target's own greedy tokens, and every block of target and draft
     * comes back once they end (the catch-up reserves a position beyond the draft's own).
     */
    @Test
    void theCatchUpKeepsTheTokensAndTheBlocksWhenSequencesArePreempted() {
        List<int[]> plain = run(PROMPTS, 40, null, null);
        ModelRunner d = backend.load(draft, KvCacheSpec.forTokens(draft.config(), 4096, 16), Progress.NONE);
        try (ModelRunner small = backend.load(target, KvCacheSpec.forTokens(target.config(), 320, 16), Progress.NONE);
             DraftModelProposer proposer = new DraftModelProposer(d, "ember-tiny-draft", target.config().vocabSize(), null, true)) {
            LlmEngine engine = LlmEngine.of(small, new SchedulerConfig(8, 512, 512, SchedulePolicy.DECODE_FIRST, false, true),
                    tokenizer);
            engine.speculate(new Speculation(proposer, 2, 64));
            List<Sequence> sequences = new ArrayList<>();
            for (int i = 0; i < PROMPTS.size(); i++) {
                sequences.add(engine.add(tokenizer.encode(PROMPTS.get(i)), greedyOfMixedLengths(40).apply(i), RequestListener.NONE));
            }
            while (engine.hasWork()) {
                engine.step();
            }
            assertTrue(engine.scheduler().preemptions() > 0, "the small cache preempted some sequence");
            assertTrue(proposer.caughtUpRounds() > 0, "rounds caught up");
            for (int i = 0; i < PROMPTS.size(); i++) {
                assertArrayEquals(plain.get(i), sequences.get(i).generatedTokens(), "request " + i);
            }
            assertEquals(d.blockAllocator().capacity(), d.blockAllocator().freeBlocks(), "draft blocks leaked");
            assertEquals(small.blockAllocator().capacity(), small.blockAllocator().freeBlocks(), "target blocks leaked");
        } finally {
            d.close();
        }
    }

    private static DraftModelProposer draftModel(ModelRunner t, boolean catchesUp) {
        ModelRunner d = backend.load(draft, KvCacheSpec.forTokens(draft.config(), 4096, 16), Progress.NONE);
        return new DraftModelProposer(d, "ember-tiny-draft", t.config().vocabSize(), d, catchesUp);
    }

    /** Sampled requests draft on the host: their verification judges each drafted token by its distribution there. */
    @Test
    void sampledDraftsStayOnTheHost() {
        VerificationWatch watch = new VerificationWatch();
        SpeculationStats[] stats = new SpeculationStats[1];
        run(PROMPTS.subList(0, 2), i -> SamplingParams.greedy(24).withTemperature(0.8f).withSeed(i), SpeculativeDecodingTest::draftModel,
                2, 64, watch, stats);
        assertTrue(watch.verifications() > 0 && stats[0].accepted() > 0, "sampled drafts were verified and accepted");
        assertEquals(0, watch.lastTokenOnDevice(), "no sampled draft's token was left on the device");
    }

    @Test
    void theDraftModelsCacheIsGivenBackWhenItsSequencesEnd() {
        ModelRunner d = backend.load(draft, KvCacheSpec.forTokens(draft.config(), 4096, 16), Progress.NONE);
        try (DraftModelProposer proposer = new DraftModelProposer(d, "ember-tiny-draft", target.config().vocabSize(), null)) {
            LlmEngine engine = LlmEngine.of(targetRunner, new SchedulerConfig(8, 512, 512, SchedulePolicy.DECODE_FIRST, false, true),
                    tokenizer);
            engine.speculate(new Speculation(proposer, 3, 64));
            for (String prompt : PROMPTS) {
                engine.add(tokenizer.encode(prompt), SamplingParams.greedy(20), RequestListener.NONE);
            }
            while (engine.hasWork()) {
                engine.step();
            }
            assertEquals(d.blockAllocator().capacity(), d.blockAllocator().freeBlocks(), "draft blocks leaked");
            assertEquals(targetRunner.blockAllocator().capacity(), targetRunner.blockAllocator().freeBlocks(), "target blocks leaked");
        } finally {
            d.close();
        }
    }

    @Test
    void aVocabularyOfAnotherSizeIsRefused() {
        ModelRunner d = backend.load(draft, KvCacheSpec.forTokens(draft.config(), 64, 16), Progress.NONE);
        try {
            var e = org.junit.jupiter.api.Assertions.assertThrows(dev.ember.EmberException.class,
                    () -> new DraftModelProposer(d, "odd", d.config().vocabSize() + 1, null));
            assertTrue(e.getMessage().contains("same vocabulary"), e.getMessage());
        } finally {
            d.close();
        }
    }

    @Test
    void ngramLookupProposesWhatFollowedTheLatestEarlierMatch() {
        NgramProposer ngram = new NgramProposer(1, 3);
        assertArrayEquals(new int[] {7, 8}, ngram.lookup(new int[] {5, 6, 7, 8, 9, 5, 6}, 2));
        assertArrayEquals(new int[] {9, 5}, ngram.lookup(new int[] {1, 9, 5, 2, 4, 1}, 2), "a 1-gram when no longer one matches");
        assertArrayEquals(new int[0], ngram.lookup(new int[] {1, 2, 3}, 4));
    }
}
