package dev.ember.server;

import dev.ember.sampling.SamplingParams;

import java.util.List;

/**
 * A completion or chat request read and checked, ready for the engine: its prompts (one for chat; one or more for
 * completions), each with its parameters, {@code bestOf} sequences generated for each and the {@code n} most likely of
 * them returned; {@code logprobs} is -1 when none were asked for.
 */
record CompletionRequest(List<int[]> prompts, List<SamplingParams> params, int n, int bestOf, boolean stream,
                         boolean includeUsage, boolean echo, int logprobs) {
    /** The most sequences one request may ask for (prompts x best_of). */
    static final int MAX_SEQUENCES = 256;
}
