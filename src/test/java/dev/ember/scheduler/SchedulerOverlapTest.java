package dev.ember.scheduler;

import dev.ember.backend.ForwardBatch;
import dev.ember.kvcache.BlockAllocator;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The scheduler with a token in flight (the engine schedules step N+1 before step N's tokens reach the host): the next
 * decode carries that token from its chunk of step N, a sequence whose token in flight is its last is not scheduled
 * again, and a preempted sequence waits for its token before it is recomputed.
 */
class SchedulerOverlapTest {
    private static final int BLOCK = 4, VOCAB = 50;

    private static Sequence sequence(long id, int promptLength, int maxTokens) {
        int[] prompt = new int[promptLength];
        for (int i = 0; i < promptLength; i++) {
            prompt[i] = (int) (7 * id + 3 * i) % VOCAB;
        }
        SamplingParams params = SamplingParams.greedy(maxTokens);
        return new Sequence(id, prompt, params, new Sampler(params, VOCAB), BLOCK, 0, 1000);
    }

    @Test
    void aTokenInFlightIsCarriedAndNeverPastTheLastOne() {
        Scheduler scheduler = new Scheduler(new SchedulerConfig(8, 64, 64, SchedulePolicy.DECODE_FIRST, false, true),
                new BlockAllocator(32), BLOCK);
        Sequence a = sequence(1, 6, 2), b = sequence(2, 5, 5);
        scheduler.add(a);
        scheduler.add(b);
        ScheduledStep prefill = scheduler.schedule();
        assertEquals(2, prefill.work().size());
        assertTrue(prefill.work().stream().allMatch(ScheduledStep.Work::samples));
        scheduler.submitted(prefill);

        ScheduledStep decode = scheduler.schedule();  // before the prefill's tokens reached the host
        assertEquals(2, decode.work().size());
        ForwardBatch batch = decode.toForwardBatch();
        assertEquals(0, batch.chunks().get(0).carriedFrom(), "a's first token comes from chunk 0 of the prefill step");
        assertEquals(1, batch.chunks().get(1).carriedFrom());
        assertEquals(6, batch.chunks().get(0).startPosition());
        scheduler.submitted(decode);

        a.append(11, 0);  // the prefill step's tokens land
        b.append(12, 0);
        ScheduledStep third = scheduler.schedule();
        assertEquals(1, third.work().size(), "a's token in flight is its second and last: only b decodes");
        assertSame(b, third.work().getFirst().sequence());
        assertEquals(1, third.work().getFirst().carriedFrom(), "b sampled in chunk 1 of the step in flight");
        assertEquals(6, third.work().getFirst().start());
    }

    @Test
    void aPreemptedSequenceWaitsForItsTokenInFlight() {
        // Four blocks of four slots: two prompts of eight tokens fill them; the first decode needs a fifth.
        BlockAllocator allocator = new BlockAllocator(4);
        Scheduler scheduler = new Scheduler(new SchedulerConfig(8, 64, 64, SchedulePolicy.DECODE_FIRST, false, true),
                allocator, BLOCK);
        Sequence old = sequence(1, 8, 20), young = sequence(2, 8, 20);
        scheduler.add(old);
        scheduler.add(young);
        ScheduledStep first = scheduler.schedule();
        assertEquals(2, first.work().size(), "both prompts fit: 2 blocks each");
        scheduler.submitted(first);
        ScheduledStep second = scheduler.schedule();  // old needs a third block: young is preempted
        assertEquals(1, scheduler.preemptions());
        assertEquals(Sequence.Status.WAITING, young.status());
        assertEquals(1, young.inFlight(), "its token from the first step is still in flight");
        assertTrue(second.work().stream().noneMatch(w -> w.sequence() == young), "not recomputed while its token is out");
        scheduler.submitted(second);
        old.append(5, 0);
        young.append(6, 0);  // the first step's tokens land
        assertEquals(0, young.inFlight());
        scheduler.finish(old, FinishReason.STOP, 0);
        ScheduledStep third = scheduler.schedule();
        assertEquals(1, third.work().size());
        assertSame(young, third.work().getFirst().sequence());
        assertEquals(0, third.work().getFirst().start(), "recomputed from the start, its landed token included");
        assertEquals(9, third.work().getFirst().count());
    }
}
