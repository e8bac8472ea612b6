package dev.ember.backend.cuda;

import dev.ember.backend.SubmittedStep;
import dev.ember.sampling.Sampler;

import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * The CUDA runner's {@link SubmittedStep}. It keeps what is still needed once the step is queued: the slot its tokens
 * come back in, and its samplers, because rows whose sampler needs more than sample_tokens does are drawn on the host
 * when the step is awaited, and because the next step may carry only tokens this one sampled on the GPU.
 */
final class CudaSubmittedStep implements SubmittedStep {
    private final CudaModelRunner runner;
    final StepSlots.Slot slot;
    final Sampler[] samplers;
    /** Its outputs: one per chunk but for verifications, whose chunks have several. */
    final int chunks;
    /** Whether a row is sampled on the host: such a step must be awaited before the next is submitted. */
    final boolean hostRows;
    boolean awaited;

    CudaSubmittedStep(CudaModelRunner runner, StepSlots.Slot slot, Sampler[] samplers, int chunks, boolean hostRows) {
        this.runner = runner;
        this.slot = slot;
        this.samplers = samplers;
        this.chunks = chunks;
        this.hostRows = hostRows;
    }

    /**
     * Whether {@code sampler}'s token is drawn on the host from a copied logits row (a repetition penalty, min-p), not
     * on the GPU by sample_tokens.
     */
    static boolean samplesOnHost(Sampler sampler) {
        return sampler != null && !sampler.isPlainTopKTopP();
    }

    /** Whether chunk {@code chunk} samples its token on the GPU, where the next step can carry it. */
    boolean samplesOnDevice(int chunk) {
        return chunk < chunks && samplers[chunk] != null && !samplesOnHost(samplers[chunk]);
    }

    /** The token chunk {@code chunk} sampled; valid once the step's copies are done. */
    int token(int chunk) {
        return slot.hostSampled.segment().getAtIndex(ValueLayout.JAVA_INT, chunk);
    }

    /** The token of every chunk, sampled or not; valid once the step's copies are done. */
    int[] tokens() {
        int[] tokens = new int[chunks];
        Arrays.setAll(tokens, this::token);
        return tokens;
    }

    @Override
    public void await(int[] tokens) {
        if (awaited) {
            throw new IllegalStateException("this step was awaited already");
        }
        long start = System.nanoTime();
        runner.awaitCopies(slot.done, start);
        for (int i = 0; i < chunks; i++) {
            if (samplesOnHost(samplers[i])) {
                tokens[i] = runner.sampleOnHost(samplers[i], i);
            } else {
                tokens[i] = samplers[i] == null ? -1 : token(i);
            }
        }
        awaited = true;
        runner.counts.forwardNanos += System.nanoTime() - start;
    }
}
