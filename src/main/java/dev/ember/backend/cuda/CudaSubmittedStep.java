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
    /** Its outputs, each sampling a token: one per chunk but for verifications, whose chunks have several. */
    final int outputs;
    /** Whether a row is sampled on the host: such a step must be awaited before the next is submitted. */
    final boolean hostRows;
    boolean awaited;

    CudaSubmittedStep(CudaModelRunner runner, StepSlots.Slot slot, Sampler[] samplers, int outputs, boolean hostRows) {
        this.runner = runner;
        this.slot = slot;
        this.samplers = samplers;
        this.outputs = outputs;
        this.hostRows = hostRows;
    }

    /**
     * Whether {@code sampler}'s token is drawn on the host from a copied logits row (a repetition penalty, min-p), not
     * on the GPU by sample_tokens.
     */
    static boolean samplesOnHost(Sampler sampler) {
        return sampler != null && !sampler.isPlainTopKTopP();
    }

    /** Whether output {@code output} (a chunk's, in a step of plain chunks) samples its token on the GPU, where the next step can carry it. */
    boolean samplesOnDevice(int output) {
        return output < outputs && samplers[output] != null && !samplesOnHost(samplers[output]);
    }

    /** The token output {@code output} sampled; valid once the step's copies are done. */
    int token(int output) {
        return slot.hostSampled.segment().getAtIndex(ValueLayout.JAVA_INT, output);
    }

    /** The token of every output, sampled or not; valid once the step's copies are done. */
    int[] tokens() {
        int[] tokens = new int[outputs];
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
        for (int i = 0; i < outputs; i++) {
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
