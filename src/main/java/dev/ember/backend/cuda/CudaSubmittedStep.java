package dev.ember.backend.cuda;

import dev.ember.backend.SubmittedStep;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import dev.ember.sampling.TokenLogprobs;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * The CUDA runner's {@link SubmittedStep}. It keeps what is still needed once the step is queued: the slot its tokens
 * (and logprobs) come back in, and its samplers, because rows whose sampler needs more than sample_tokens does are drawn
 * on the host when the step is awaited, because the logprobs computed on the GPU are recorded in their samplers then,
 * and because the next step may carry only tokens this one sampled on the GPU.
 */
final class CudaSubmittedStep implements SubmittedStep {
    final CudaModelRunner runner;
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
        return sampler != null && !sampler.isPlainTopKTopP() && !masksOnDevice(sampler);
    }

    /**
     * Whether {@code sampler}'s row is drawn on the GPU after mask_logits applied its grammar's mask (a grammar and
     * nothing else a plain row lacks), rather than on the host from a copied row; EMBER_DEVICE_MASKS=0 keeps such rows
     * on the host.
     */
    static boolean masksOnDevice(Sampler sampler) {
        return DEVICE_MASKS && sampler != null && sampler.isPlainButForItsGrammar();
    }

    private static final boolean DEVICE_MASKS = !"0".equals(System.getenv("EMBER_DEVICE_MASKS"));

    /** Whether {@code sampler}'s row, sampled on the GPU, has its logprobs computed there too (token_logprobs). */
    static boolean logprobsOnDevice(Sampler sampler) {
        return sampler != null && !samplesOnHost(sampler) && sampler.topLogprobs() >= 0;
    }

    /** Whether output {@code output} (a chunk's, in a step of plain chunks) samples its token on the GPU, where the next step can carry it. */
    boolean samplesOnDevice(int output) {
        return output < outputs && samplers[output] != null && !samplesOnHost(samplers[output]);
    }

    /**
     * Tells a masked row's grammar the token drawn for it; false where that grammar has failed, as the step's masks were
     * written ({@link StepLayout#writeMasks}) or now, which ends the row's request alone ({@link Sampler#failure}).
     */
    private static boolean grammarTook(Sampler sampler, int token) {
        if (sampler.failure() != null) {
            return false;
        }
        try {
            sampler.drewElsewhere(token);
            return true;
        } catch (RuntimeException e) {
            sampler.fail(e.getMessage());
            return false;
        }
    }

    /** The token output {@code output} sampled; valid once the step's copies are done. */
    int token(int output) {
        return slot.hostSampled.segment().getAtIndex(ValueLayout.JAVA_INT, output);
    }

    /** The token of every output, sampled or not, once the step's copies are done (waiting for them on the host). */
    int[] copiedTokens() {
        slot.done.synchronize();
        int[] tokens = new int[outputs];
        Arrays.setAll(tokens, this::token);
        return tokens;
    }

    /** Whether no step of its runner came after it: its sampled tokens are still in the runner's buffer. */
    boolean isLastOfItsRunner() {
        return runner.submittedLast(this);
    }

    /**
     * The logprobs token_logprobs computed for output {@code output}, whose token is {@code token}; valid once the step's
     * copies are done. Fewer top tokens than asked only where the vocabulary has fewer (the kernel's -1 ends them).
     */
    TokenLogprobs logprobs(int output, int token, int top) {
        int from = output * SamplingParams.MAX_LOGPROBS;
        int found = 0;
        while (found < top && slot.hostTopIds.segment().getAtIndex(ValueLayout.JAVA_INT, from + found) >= 0) {
            found++;
        }
        int[] ids = new int[found];
        float[] logprobs = new float[found];
        MemorySegment.copy(slot.hostTopIds.segment(), ValueLayout.JAVA_INT, 4L * from, ids, 0, found);
        MemorySegment.copy(slot.hostTopLogprobs.segment(), ValueLayout.JAVA_FLOAT, 4L * from, logprobs, 0, found);
        return new TokenLogprobs(token, slot.hostLogprob.segment().getAtIndex(ValueLayout.JAVA_FLOAT, output), ids, logprobs);
    }

    /**
     * Draws the host rows and reads the others' tokens, output by output; so the rows of a verification, whose samplers
     * share their sequence's draws, record their logprobs in row order, host and device rows alike, as {@link
     * Sampler#sample} would have for all of them.
     */
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
                if (masksOnDevice(samplers[i]) && !grammarTook(samplers[i], tokens[i])) {
                    tokens[i] = -1;
                    continue;
                }
                if (logprobsOnDevice(samplers[i])) {
                    try {
                        samplers[i].recordLogprobs(logprobs(i, tokens[i], samplers[i].topLogprobs()));
                    } catch (IllegalArgumentException e) {  // a NaN row: its request ends, the step's others go on
                        samplers[i].fail(e.getMessage());
                        tokens[i] = -1;
                    }
                }
            }
        }
        awaited = true;
        runner.counts.forwardNanos += System.nanoTime() - start;
    }
}
