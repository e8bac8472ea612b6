package dev.ember.scheduler;

import dev.ember.kvcache.BlockAllocator;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import dev.ember.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The scheduler ends sequences where their tokens land ({@link Scheduler#update}): at an end-of-sequence token (unless
 * ignored), at the token that completes a stop string, at the length limit; a token of a sequence that ended while
 * its step was in flight is dropped, and an ended sequence's blocks go back to the pool.
 */
class SchedulerUpdateTest {
    private static final int BLOCK = 4, EOS = 7;
    private static Tokenizer tokenizer;

    @BeforeAll
    static void loadTokenizer() {
        tokenizer = Tokenizer.load(Path.of("models", "ember-tiny"));
    }

    @AfterAll
    static void closeTokenizer() {
        tokenizer.close();
    }

    private final BlockAllocator allocator = new BlockAllocator(64, BLOCK);
    private final Scheduler scheduler = new Scheduler(
            new SchedulerConfig(8, 256, 256, SchedulePolicy.DECODE_FIRST, false, false), allocator, Set.of(EOS));
    private long nextId;

    private Sequence add(int[] prompt, SamplingParams params, SequenceText text) {
        Sequence s = new Sequence(nextId++, prompt, params, new Sampler(params, tokenizer.vocabSize()), allocator.newTable(),
                text, 0, 1 << 12);
        scheduler.add(s);
        return s;
    }

    /** Schedules and submits one step, then lands {@code tokens} (one per work of the step, in its order). */
    private List<SequenceOutput> step(int... tokens) {
        ScheduledStep step = scheduler.schedule();
        scheduler.submitted(step);
        assertEquals(tokens.length, step.work().size());
        List<SequenceOutput> out = new ArrayList<>();
        scheduler.update(step, tokens, 1, out);
        return out;
    }

    @Test
    void anEndOfSequenceTokenEndsTheSequenceUnlessIgnored() {
        Sequence stops = add(new int[] {11, 12, 13}, SamplingParams.greedy(10), SequenceText.NONE);
        Sequence ignores = add(new int[] {21, 22}, SamplingParams.greedy(10).withIgnoreEos(true), SequenceText.NONE);
        List<SequenceOutput> out = step(EOS, EOS);
        assertEquals(FinishReason.STOP, out.get(0).finished());
        assertTrue(stops.isFinished());
        assertNull(out.get(1).finished());
        assertFalse(ignores.isFinished());
        assertEquals(1, scheduler.runningCount());
        assertEquals(1, allocator.usedBlocks(), "only the running sequence holds blocks: one for its 3 tokens");
    }

    @Test
    void theLengthLimitEndsTheSequenceAtItsLastToken() {
        Sequence s = add(new int[] {11, 12, 13, 14, 15}, SamplingParams.greedy(2), SequenceText.NONE);
        assertNull(step(30).getFirst().finished());
        SequenceOutput last = step(31).getFirst();
        assertEquals(FinishReason.LENGTH, last.finished());
        assertEquals(FinishReason.LENGTH, s.finishReason());
        assertEquals(List.of(30, 31), List.of(s.generatedTokens()[0], s.generatedTokens()[1]));
        assertEquals(0, allocator.usedBlocks());
        assertFalse(scheduler.hasWork());
    }

    @Test
    void aStopStringEndsTheSequenceAtTheTokenThatCompletesIt() {
        int[] continuation = tokenizer.encode(" the sea and the land");
        String text = tokenizer.decode(continuation, true);
        String stop = "and";
        int stopEnd = text.indexOf(stop) + stop.length();
        SamplingParams params = SamplingParams.greedy(100).withStopStrings(List.of(stop));
        Sequence s = add(tokenizer.encode("Once"), params, SequenceText.of(tokenizer, params.stopStrings(), true));
        StringBuilder shown = new StringBuilder();
        int landed = 0;
        while (!s.isFinished()) {
            SequenceOutput o = step(continuation[landed++]).getFirst();
            shown.append(o.text());
        }
        assertEquals(FinishReason.STOP, s.finishReason());
        assertEquals(text.substring(0, stopEnd - stop.length()), shown.toString(), "text up to the stop string, not past it");
        assertEquals(shown.toString(), s.text());
        assertTrue(tokenizer.decode(Arrays.copyOf(continuation, landed), true).length() >= stopEnd,
                "ended once the stop string was complete");
        assertTrue(tokenizer.decode(Arrays.copyOf(continuation, landed - 1), true).length() < stopEnd,
                "and not a token later");
    }

    @Test
    void theTokenOfASequenceThatEndedWhileItsStepWasInFlightIsDropped() {
        Sequence s = add(new int[] {11, 12, 13}, SamplingParams.greedy(10), SequenceText.NONE);
        ScheduledStep first = scheduler.schedule();
        scheduler.submitted(first);
        scheduler.finish(s, FinishReason.STOP, 1);  // a client went away
        List<SequenceOutput> out = new ArrayList<>();
        scheduler.update(first, new int[] {30}, 2, out);
        assertTrue(out.isEmpty());
        assertEquals(0, s.generatedCount());
        assertEquals(0, allocator.usedBlocks());
    }
}
