package dev.ember.scheduler;

/**
 * How a step divides its token budget between sequences already decoding and prompts waiting for prefill:
 * the phase-aware choice between admission and decode.
 */
public enum SchedulePolicy {
    /**
     * Every running sequence decodes each step; waiting prompts are prefilled in chunks with the budget left
     * over, in the same batch (vLLM's chunked-prefill default). Smooth inter-token latency.
     */
    DECODE_FIRST,
    /**
     * When prompts are waiting and fit, a step prefills only them and decodes pause (SGLang's default):
     * sooner first tokens and fuller decode batches, at the cost of inter-token latency spikes.
     */
    PREFILL_FIRST
}
