package dev.ember.server;

import dev.ember.sampling.SamplingParams;

import java.util.List;

/**
 * A completion or chat request read and checked, ready for the engine: its prompts (one for chat; one or more for
 * completions), each with its parameters, {@code bestOf} sequences generated for each and the {@code n} most likely of
 * them returned; {@code logprobs} is -1 when none were asked for.
 *
 * @param echo           whether a completion's text (and, with {@code logprobs}, its log-probabilities) starts with
 *                       the prompt's
 * @param generates      false for an echo with {@code max_tokens} 0: the answer is the prompt alone (the engine still
 *                       computes one token, which is left out), as a scoring client such as lm-evaluation-harness asks
 * @param promptLogprobs vLLM's {@code prompt_logprobs} field, -1 when not asked: the answer then carries every prompt
 *                       token's scores in vLLM's form
 * @param tools          a chat request's tools whose calls are read out of the text; null where none are
 * @param continuousUsage vLLM's {@code stream_options.continuous_usage_stats}: every streamed chunk carries the usage so
 *                       far, not only the last
 * @param id             the answer's id: {@code chatcmpl-} or {@code cmpl-} and vLLM's {@code request_id} where given
 * @param includeReasoning vLLM's {@code include_reasoning}: false leaves a reasoning parser's thinking out of the answer
 * @param returnTokenIds vLLM's {@code return_token_ids}: the answer also gives the prompt's and each choice's token ids
 */
record CompletionRequest(List<int[]> prompts, List<SamplingParams> params, int n, int bestOf, boolean stream,
                         boolean includeUsage, boolean echo, boolean generates, int logprobs, int promptLogprobs,
                         ToolCalls.Request tools, boolean continuousUsage, String id, boolean includeReasoning,
                         boolean returnTokenIds) {
    /** The most sequences one request may ask for (prompts x best_of). */
    static final int MAX_SEQUENCES = 256;

    /** The tokens of all its prompts, each counted once (what {@code usage.prompt_tokens} reports). */
    int promptTokens() {
        int tokens = 0;
        for (int[] prompt : prompts) {
            tokens += prompt.length;
        }
        return tokens;
    }
}
