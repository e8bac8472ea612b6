package dev.ember.backend.cuda;

import dev.ember.backend.ForwardBatch;

/**
 * The host side of the steps in flight: two slots of pinned buffers, used in turn, so that the host writes step N+1's
 * metadata while step N's copies are still running; and the step submitted last, whose sampled tokens the next step
 * may carry. They live together because a slot may be reused, and a step carried from, only as far as the steps that
 * used them have been awaited.
 */
final class StepSlots implements AutoCloseable {
    private final Slot[] slots = new Slot[2];
    private long taken;
    /** The step submitted last, whose sampled tokens the next step may carry; null after a step not submitted. */
    private CudaSubmittedStep lastSubmitted;

    StepSlots() {
        slots[0] = new Slot();
        try {
            slots[1] = new Slot();
        } catch (RuntimeException e) {
            slots[0].close();
            throw e;
        }
    }

    /**
     * Where a step's metadata is written on the host and its tokens (and the logprobs computed on the device) come back,
     * and the event marking those copies done.
     */
    static final class Slot implements AutoCloseable {
        final CudaEvent done = CudaEvent.create();
        PinnedBuffer hostMeta, hostSampled, hostLogprob, hostTopIds, hostTopLogprobs, hostMasks;
        CudaSubmittedStep owner;

        /** Grows the buffers to the runner's step buffers; called only while no step of this slot is in flight. */
        void fit(StepBuffers a) {
            hostMeta = atLeast(hostMeta, a.meta.byteSize());
            hostSampled = atLeast(hostSampled, a.sampled.byteSize());
            hostLogprob = atLeast(hostLogprob, a.logprob.byteSize());
            hostTopIds = atLeast(hostTopIds, a.topIds.byteSize());
            hostTopLogprobs = atLeast(hostTopLogprobs, a.topLogprobs.byteSize());
            hostMasks = atLeast(hostMasks, a.tokenMasks.byteSize());
        }

        private static PinnedBuffer atLeast(PinnedBuffer buffer, long bytes) {
            if (buffer != null && buffer.segment().byteSize() >= bytes) {
                return buffer;
            }
            if (buffer != null) {
                buffer.close();
            }
            return PinnedBuffer.allocate(bytes);
        }

        @Override
        public void close() {
            for (PinnedBuffer b : new PinnedBuffer[] {hostMeta, hostSampled, hostLogprob, hostTopIds, hostTopLogprobs, hostMasks}) {
                if (b != null) {
                    b.close();
                }
            }
            done.close();
        }
    }

    /** The pinned buffers of the step about to be run; the step that used them last must have been awaited. */
    Slot next() {
        Slot slot = slots[(int) (taken & 1)];
        if (slot.owner != null && !slot.owner.awaited) {
            throw new IllegalStateException("two submitted steps are not awaited yet; await the older first");
        }
        taken++;
        slot.owner = null;
        return slot;
    }

    /** Refuses a step run outside submit while the step submitted last is not awaited. */
    void checkLastAwaited() {
        if (lastSubmitted != null && !lastSubmitted.awaited) {
            throw new IllegalStateException("a submitted step must be awaited before forward");
        }
    }

    /**
     * The step whose sampled tokens {@code batch}'s carried chunks take: the step submitted last, which {@code batch}
     * follows, or the step of another runner the chunks name ({@link ForwardBatch#carrySource}), which must be the last
     * that runner submitted; null when no chunk carries. Refused while the step submitted last draws tokens on the host
     * and is not awaited, and when a chunk carries a token its source did not sample on the GPU.
     */
    CudaSubmittedStep carrySource(ForwardBatch batch) {
        CudaSubmittedStep previous = lastSubmitted;
        if (previous != null && !previous.awaited && previous.hostRows) {
            throw new IllegalStateException("a step whose tokens are drawn on the host must be awaited before the next is submitted");
        }
        if (!batch.carriesTokens()) {
            return null;
        }
        CudaSubmittedStep named = batch.carrySource(CudaSubmittedStep.class, CudaSubmittedStep::isLastOfItsRunner);
        CudaSubmittedStep source = named != null ? named : previous;
        for (ForwardBatch.Chunk c : batch.chunks()) {
            for (int from = c.carriedFrom(); from >= 0 && from < c.carriedFrom() + c.carried(); from++) {
                if (source == null || !source.samplesOnDevice(from)) {
                    throw new IllegalStateException("a chunk carries the token of output " + from + " of "
                            + (batch.carrySource() == null ? "the previous step" : "another runner's step")
                            + ", which did not sample it on the GPU");
                }
            }
        }
        return source;
    }

    /** Whether {@code step} is the step submitted last, whose sampled tokens are still in the runner's buffer. */
    boolean isLast(CudaSubmittedStep step) {
        return lastSubmitted == step;
    }

    /** Records {@code step}, just queued in its slot, as the one the next step may carry tokens from. */
    void submitted(CudaSubmittedStep step) {
        step.slot.owner = step;
        lastSubmitted = step;
    }

    /** After a step not submitted: no source of carried tokens. */
    void noneSubmitted() {
        lastSubmitted = null;
    }

    @Override
    public void close() {
        slots[0].close();
        slots[1].close();
    }
}
