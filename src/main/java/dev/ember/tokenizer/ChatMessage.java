package dev.ember.tokenizer;

import java.util.Objects;

/**
 * One turn of a conversation, as HF chat templates see it: {@code {"role": ..., "content": ...}}.
 *
 * @param role    {@code system}, {@code user}, {@code assistant} or whatever else the model's template accepts
 * @param content the turn's text
 */
public record ChatMessage(String role, String content) {
    public ChatMessage {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(content, "content");
    }
}
