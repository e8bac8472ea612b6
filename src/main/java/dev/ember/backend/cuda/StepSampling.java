package dev.ember.backend.cuda;

/**
 * What a step queues after its logits: nothing ({@link CudaModelRunner#forward}: they are copied back whole), or
 * sample_tokens, after mask_logits where some row's grammar is applied on the device ({@code masks}) and before
 * token_logprobs where some row's logprobs are computed there ({@code logprobs}). Part of a captured graph's key, since
 * the graph holds those launches: a step where no row needs one does not launch it (token_logprobs reads each asking
 * row twice over).
 */
record StepSampling(boolean tokens, boolean masks, boolean logprobs) {
    static final StepSampling NONE = new StepSampling(false, false, false);
    /** A submitted step: each output's token chosen on the device. */
    static final StepSampling TOKENS = new StepSampling(true, false, false);
}
