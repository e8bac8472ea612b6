package dev.ember.bench.client;

/**
 * One request of a client benchmark: its prompt and the tokens to ask for.
 *
 * @param maxTokens {@code max_tokens} of the request
 */
public record ClientRequest(Prompt prompt, int maxTokens) {

    /** What is sent as the prompt: text, or token ids for servers that take them in /v1/completions. */
    public sealed interface Prompt {
    }

    public record Text(String text) implements Prompt {
    }

    public record TokenIds(int[] ids) implements Prompt {
    }
}
