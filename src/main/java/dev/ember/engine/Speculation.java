package dev.ember.engine;

/**
 * Speculative decoding's settings for an engine ({@link LlmEngine#speculate}).
 *
 * @param proposer          where drafted tokens come from
 * @param gamma             the most tokens drafted per sequence and step (vLLM's num_speculative_tokens)
 * @param disableAboveBatch no speculation in a step with more decoding sequences than this (vLLM's
 *                          speculative_disable_by_batch_size): there a verification costs more than it saves
 */
public record Speculation(Proposer proposer, int gamma, int disableAboveBatch) implements AutoCloseable {
    @Override
    public void close() {
        proposer.close();
    }
}
