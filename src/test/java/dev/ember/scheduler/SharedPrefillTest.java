package dev.ember.scheduler;

import dev.ember.kvcache.BlockAllocator;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Prompts whose leading blocks a running sequence is still computing (the choices of an {@code n > 1} request) wait for
 * that prefill and take the blocks from the prefix cache instead of computing them again, without holding back the
 * unrelated prompts queued behind them; every block comes back at the end.
 */
class SharedPrefillTest {
    private static final int BLOCK = 4, VOCAB = 100;
    /** Three full blocks and one token more: the three blocks can be shared, the last token is always recomputed. */
    private static final int PROMPT = 3 * BLOCK + 1;

    private final BlockAllocator allocator = new BlockAllocator(64, BLOCK);
    private long nextId;
    private int promptTokensScheduled;

    private static Scheduler scheduler(BlockAllocator allocator, int maxBatchedTokens, int chunkTokens, boolean prefixCaching) {
        return new Scheduler(new SchedulerConfig(8, maxBatchedTokens, chunkTokens, SchedulePolicy.DECODE_FIRST, prefixCaching, false),
                allocator, Set.of());
    }

    private static int[] prompt(long seed) {
        return new SplittableRandom(seed).ints(PROMPT, 0, VOCAB).toArray();
    }

    private Sequence add(Scheduler scheduler, int[] prompt, int maxTokens) {
        SamplingParams params = SamplingParams.greedy(maxTokens);
        Sequence s = new Sequence(nextId++, prompt, params, new Sampler(params, VOCAB), allocator.newTable(),
                SequenceText.NONE, 0, 1 << 12);
        scheduler.add(s);
        return s;
    }

    /** Schedules and submits one step and lands a token for each sampling work; returns the sequences it scheduled. */
    private List<Sequence> step(Scheduler scheduler) {
        ScheduledStep step = scheduler.schedule();
        scheduler.submitted(step);
        int[] tokens = new int[step.outputs()];  // no drafts here: one output per work
        List<Sequence> scheduled = new ArrayList<>();
        for (int i = 0; i < tokens.length; i++) {
            ScheduledStep.Work w = step.work().get(i);
            tokens[i] = w.samples() ? 1 : -1;
            scheduled.add(w.sequence());
            promptTokensScheduled += Math.max(0, Math.min(w.start() + w.count(), w.sequence().promptLength()) - w.start());
        }
        scheduler.update(step, tokens, 1, new ArrayList<>());
        return scheduled;
    }

    private void runToEnd(Scheduler scheduler) {
        for (int i = 0; scheduler.hasWork(); i++) {
            assertTrue(i < 100, "the scheduler did not finish");
            step(scheduler);
        }
        scheduler.prefixCache().clear();
        assertEquals(allocator.capacity(), allocator.freeBlocks(), "KV blocks leaked");
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 3})
    void copiesOfAPromptAddedTogetherComputeItOnce(int copies) {
        Scheduler scheduler = scheduler(allocator, 256, 256, true);
        int[] prompt = prompt(1);
        List<Sequence> choices = new ArrayList<>();
        for (int i = 0; i < copies; i++) {
            choices.add(add(scheduler, prompt, 3));
        }
        assertEquals(List.of(choices.getFirst()), step(scheduler), "the first copy computes the prompt, the others wait");
        assertEquals(choices, step(scheduler), "the first decodes, the others are admitted on its cached blocks");
        runToEnd(scheduler);
        assertEquals(0, choices.getFirst().cachedPromptTokens());
        for (Sequence s : choices.subList(1, copies)) {
            assertEquals(3 * BLOCK, s.cachedPromptTokens(), "every full block of the prompt comes from the cache");
            assertEquals(List.of(1, 1, 1), Arrays.stream(s.generatedTokens()).boxed().toList());
        }
        assertEquals(PROMPT + (copies - 1), promptTokensScheduled, "one prompt, and the last token of each other copy");
    }

    @Test
    void unrelatedPromptsQueuedBetweenAndBehindAreAdmittedAtOnce() {
        Scheduler scheduler = scheduler(allocator, 256, 256, true);
        int[] prompt = prompt(2);
        Sequence first = add(scheduler, prompt, 2);
        Sequence between = add(scheduler, prompt(3), 2);
        Sequence second = add(scheduler, prompt, 2);
        Sequence behind = add(scheduler, prompt(4), 2);
        assertEquals(List.of(first, between, behind), step(scheduler));
        assertEquals(1, scheduler.waitingCount());
        assertTrue(step(scheduler).contains(second));
        runToEnd(scheduler);
        assertEquals(3 * BLOCK, second.cachedPromptTokens());
        assertEquals(0, behind.cachedPromptTokens());
    }

    /** A copy waits through every chunk of the first one's prompt, while an unrelated prompt takes the budget left. */
    @Test
    void aCopyWaitsForAChunkedPrefillToFinish() {
        Scheduler scheduler = scheduler(allocator, 2 * BLOCK, BLOCK, true);
        int[] prompt = prompt(5);
        Sequence first = add(scheduler, prompt, 2);
        Sequence second = add(scheduler, prompt, 2);
        Sequence unrelated = add(scheduler, prompt(6), 2);
        assertEquals(List.of(first, unrelated), step(scheduler));
        while (first.computed() < first.promptLength()) {
            assertFalse(step(scheduler).contains(second), "admitted before the shared blocks were computed");
        }
        assertTrue(step(scheduler).contains(second));
        runToEnd(scheduler);
        assertEquals(3 * BLOCK, second.cachedPromptTokens());
        assertEquals(2 * PROMPT + 1, promptTokensScheduled);
    }

    /** The wait ends when the sequence waited for leaves; the blocks it computed before it went are shared still. */
    @Test
    void aCancelledPrefillEndsTheWait() {
        Scheduler scheduler = scheduler(allocator, 256, 2 * BLOCK, true);
        int[] prompt = prompt(7);
        Sequence first = add(scheduler, prompt, 2);
        Sequence second = add(scheduler, prompt, 2);
        assertEquals(List.of(first), step(scheduler));
        scheduler.finish(first, FinishReason.STOP, 1);
        assertEquals(List.of(second), step(scheduler));
        runToEnd(scheduler);
        assertEquals(2 * BLOCK, second.cachedPromptTokens(), "the two blocks computed before the cancel");
    }

    /** A prompt that shares only blocks the cache already holds has nothing to wait for. */
    @Test
    void aPrefixAlreadyCachedDoesNotDeferAdmission() {
        Scheduler scheduler = scheduler(allocator, 256, 256, true);
        int[] system = prompt(8);
        add(scheduler, system, 1);
        step(scheduler);
        assertFalse(scheduler.hasWork());
        int[] left = LlmEngineTest.concat(Arrays.copyOf(system, 2 * BLOCK), prompt(9));
        int[] right = LlmEngineTest.concat(Arrays.copyOf(system, 2 * BLOCK), prompt(10));
        Sequence first = add(scheduler, left, 2);
        Sequence second = add(scheduler, right, 2);
        assertEquals(List.of(first, second), step(scheduler));
        runToEnd(scheduler);
        assertEquals(2 * BLOCK, first.cachedPromptTokens());
        assertEquals(2 * BLOCK, second.cachedPromptTokens());
    }

    @Test
    void withoutPrefixCachingCopiesAreAdmittedTogetherAndComputeTheirOwn() {
        Scheduler scheduler = scheduler(allocator, 256, 256, false);
        int[] prompt = prompt(11);
        Sequence first = add(scheduler, prompt, 2);
        Sequence second = add(scheduler, prompt, 2);
        assertEquals(List.of(first, second), step(scheduler));
        while (scheduler.hasWork()) {
            step(scheduler);
        }
        assertNull(scheduler.prefixCache());
        assertEquals(0, second.cachedPromptTokens());
        assertEquals(2 * PROMPT, promptTokensScheduled);
        assertEquals(allocator.capacity(), allocator.freeBlocks(), "KV blocks leaked");
    }
}
