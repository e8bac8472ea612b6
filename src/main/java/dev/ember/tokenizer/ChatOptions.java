package dev.ember.tokenizer;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How a conversation becomes a prompt beside its messages, as HF's {@code apply_chat_template} and vLLM's chat requests
 * take it.
 *
 * @param addGenerationPrompt  end with the opening of the assistant's turn, for the model to write it
 * @param continueFinalMessage end inside the last message instead (an assistant turn the model is to go on with),
 *                             its end-of-turn left out; not with {@code addGenerationPrompt}
 * @param tools                the functions the model may call, as OpenAI's request lists them; none when empty
 * @param variables            further template variables (vLLM's {@code chat_template_kwargs}, such as Qwen3's
 *                             {@code enable_thinking}); they cannot replace the messages, the tools or the flags
 */
public record ChatOptions(boolean addGenerationPrompt, boolean continueFinalMessage, List<Map<String, Object>> tools,
                          Map<String, Object> variables) {
    public ChatOptions {
        if (addGenerationPrompt && continueFinalMessage) {
            throw new IllegalArgumentException("a prompt either opens the assistant's turn or continues the last message");
        }
        tools = List.copyOf(tools);
        // A variable may be None, as a request's JSON null reaches HF's template (Map.copyOf takes no null).
        variables = Collections.unmodifiableMap(new LinkedHashMap<>(variables));
    }

    /** The prompt of a chat request: the conversation, then the opening of the assistant's turn. */
    public static ChatOptions generation() {
        return new ChatOptions(true, false, List.of(), Map.of());
    }
}
