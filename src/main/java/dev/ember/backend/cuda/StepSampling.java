package dev.ember.backend.cuda;

/**
 * What a step queues after its logits: nothing (they are copied back whole), sample_tokens, or sample_tokens and then
 * token_logprobs. Part of a captured graph's key, since the graph holds those launches.
 */
enum StepSampling {
    /** {@link CudaModelRunner#forward}: the logits themselves are the step's result. */
    NONE,
    /** A submitted step: each output's token chosen on the device. */
    TOKENS,
    /**
     * A submitted step where some output's logprobs are computed on the device too. Kept apart from {@link #TOKENS}
     * because token_logprobs reads each asking row twice over: a step where none asks does not launch it.
     */
    TOKENS_AND_LOGPROBS
}
