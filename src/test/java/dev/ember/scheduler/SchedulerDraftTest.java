package dev.ember.scheduler;

import dev.ember.kvcache.BlockAllocator;
import dev.ember.kvcache.BlockTable;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Drafts and verifications across steps: what the engine does with a draft left over from a drafting step. */
class SchedulerDraftTest {
    private static final int BLOCK = 4, VOCAB = 50;

    private static Sequence sequence(long id, int[] prompt, int maxTokens) {
        SamplingParams params = SamplingParams.greedy(maxTokens).withIgnoreEos(true);
        return new Sequence(id, prompt, params, new Sampler(params, VOCAB), new BlockTable(BLOCK), SequenceText.NONE, 0, 1000);
    }

    private static void land(Scheduler scheduler, ScheduledStep step, int... tokens) {
        scheduler.update(step, tokens, 0, new ArrayList<>());
    }

    /**
     * A verification still in flight (an overlapped step, as LlmEngine runs a step that verifies a draft left from a
     * drafting step once drafting is off) whose sequence is preempted by the next step's schedule: when its tokens land,
     * the preempted sequence must still count nothing as computed, or it is re-admitted over fresh blocks that hold
     * no keys or values for its earlier positions.
     */
    @Test
    void aVerificationLandingOnAPreemptedSequenceLeavesItToBeRecomputed() {
        BlockAllocator allocator = new BlockAllocator(3, BLOCK);
        Scheduler scheduler = new Scheduler(new SchedulerConfig(8, 64, 64, SchedulePolicy.DECODE_FIRST, false, true),
                allocator, Set.of());
        Sequence old = sequence(1, new int[] {1, 2, 3}, 20), young = sequence(2, new int[] {4, 5, 6, 7}, 20);
        scheduler.add(old);
        scheduler.add(young);
        ScheduledStep prefill = scheduler.schedule();
        scheduler.submitted(prefill);
        land(scheduler, prefill, 10, 11);  // old: 4 tokens, young: 5

        young.propose(new int[] {12, 13}, null);
        ScheduledStep verify = scheduler.schedule();  // old decodes position 3; young verifies positions 4..6
        assertEquals(2, verify.work().get(1).drafted());
        scheduler.submitted(verify);
        assertEquals(0, allocator.freeBlocks());

        ScheduledStep next = scheduler.schedule();  // before verify's tokens land: old needs a second block
        assertEquals(Sequence.Status.WAITING, young.status(), "young was preempted");
        assertEquals(0, young.computed());
        scheduler.submitted(next);

        land(scheduler, verify, 20, 12, 13, 14);  // old's token; young: both drafts accepted and the target's own
        assertEquals(8, young.length());
        assertEquals(0, young.computed(), "a preempted sequence has nothing in the cache");
        land(scheduler, next, 21);
        scheduler.finish(old, FinishReason.STOP, 0);

        ScheduledStep readmit = scheduler.schedule();
        assertSame(young, readmit.work().getFirst().sequence());
        assertEquals(0, readmit.work().getFirst().start(), "recomputed from the start");
        assertEquals(8, readmit.work().getFirst().count());
    }

    /**
     * A draft proposed in a drafting step where the sequence's turn found too little token budget to verify it: the step
     * decodes it plainly, so the draft no longer follows its last token; it must not be verified later (here two tokens
     * later, its positions running past the sequence's length limit).
     */
    @Test
    void aDraftIsNotVerifiedAfterTheSequenceHasGrownPastIt() {
        BlockAllocator allocator = new BlockAllocator(64, BLOCK);
        // Budget 5, chunks of 4: while the older prompt is being prefilled the younger decode gets 1 token of budget.
        Scheduler scheduler = new Scheduler(new SchedulerConfig(8, 5, 4, SchedulePolicy.DECODE_FIRST, false, false),
                allocator, Set.of());
        Sequence older = sequence(1, new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 1);
        Sequence s = sequence(2, new int[] {20}, 4);  // length limit 5
        scheduler.add(older);
        scheduler.add(s);
        ScheduledStep first = scheduler.schedule();  // older [0, 4), s [0, 1) samples
        scheduler.submitted(first);
        land(scheduler, first, -1, 30);
        assertEquals(2, s.length());

        s.propose(new int[] {31, 32}, null);  // the engine's proposer, room min(2, 5 - 2 - 1)
        ScheduledStep second = scheduler.schedule();  // older [4, 8) takes 4: s decodes plainly
        assertEquals(0, second.work().get(1).drafted());
        scheduler.submitted(second);
        land(scheduler, second, -1, 31);
        ScheduledStep third = scheduler.schedule();  // older [8, 12): s decodes plainly again
        scheduler.submitted(third);
        land(scheduler, third, 40, 32);
        assertTrue(older.isFinished());
        assertEquals(4, s.length());

        ScheduledStep fourth = scheduler.schedule();
        ScheduledStep.Work w = fourth.work().getFirst();
        assertSame(s, w.sequence());
        assertEquals(0, w.drafted(), "the draft was proposed for length 2, the sequence has 4 tokens");
        assertTrue(w.start() + w.count() <= s.lengthLimit(), "no position past the length limit");
    }
}
