package dev.ember.tokenizer;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One turn of a conversation, as HF chat templates see it: {@code {"role": ..., "content": ...}}, and for tool calling
 * an assistant turn's {@code tool_calls} and a tool turn's {@code tool_call_id}.
 *
 * @param role       {@code system}, {@code user}, {@code assistant}, {@code tool} or whatever else the model's template
 *                   accepts
 * @param content    the turn's text
 * @param toolCalls  the calls an assistant turn made, each as OpenAI writes it ({@code {"id", "type": "function",
 *                   "function": {"name", "arguments"}}}); empty otherwise
 * @param toolCallId the call a tool turn answers; null otherwise
 * @param reasoning  an assistant turn's thinking, given apart from its content ({@code reasoning_content}, which Qwen3's
 *                   template writes back for the turns after the last question); null otherwise
 */
public record ChatMessage(String role, String content, List<Map<String, Object>> toolCalls, String toolCallId,
                          String reasoning) {
    public ChatMessage {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(content, "content");
        toolCalls = List.copyOf(toolCalls);
    }

    public ChatMessage(String role, String content, List<Map<String, Object>> toolCalls, String toolCallId) {
        this(role, content, toolCalls, toolCallId, null);
    }

    public ChatMessage(String role, String content) {
        this(role, content, List.of(), null);
    }
}
