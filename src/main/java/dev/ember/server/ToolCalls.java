package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Tool calling in Hermes' format, the one Qwen's chat templates teach: each call a JSON object {@code {"name": ...,
 * "arguments": {...}}} between {@code <tool_call>} and {@code </tool_call>} (vLLM's {@code hermes} parser). What a chat
 * request asked ({@link Request}), and the calls read back out of the model's text ({@link #parse}).
 */
final class ToolCalls {
    static final String OPEN = "<tool_call>", CLOSE = "</tool_call>";
    /** What a forced call is written as: the tag on a line of its own, as the templates show it. */
    static final String FORCED_OPEN = OPEN + "\n", FORCED_CLOSE = "\n" + CLOSE;

    private static final Pattern BLOCK = Pattern.compile(Pattern.quote(OPEN) + "(.*?)(?:" + Pattern.quote(CLOSE) + "|$)", Pattern.DOTALL);
    private static final ObjectMapper JSON = new ObjectMapper();

    private ToolCalls() {
    }

    /** OpenAI's {@code tool_choice}: the model decides, must call some function, must call the one named, or calls none. */
    enum Choice { AUTO, REQUIRED, NAMED, NONE }

    /**
     * A chat request's tools: the functions as the template writes them, each one's parameters schema by name, and
     * whether the output is a call ({@link Choice#REQUIRED}, or the function {@code named}).
     */
    record Request(List<Map<String, Object>> templateTools, Map<String, JsonNode> parameters, Choice choice, String named) {
        /** Whether the model's text is read for calls: unless the request said none. */
        boolean parsed() {
            return choice != Choice.NONE;
        }
    }

    /** One call the model made, as OpenAI's answer lists it ({@code arguments} the JSON text of an object). */
    record Call(String id, String name, String arguments) {
        static Call of(String name, String arguments) {
            return new Call("chatcmpl-tool-" + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong()), name, arguments);
        }
    }

    /** The model's text read for calls: the text outside them (null where there is none), and the calls in order. */
    record Parsed(String content, List<Call> calls) {
    }

    /**
     * The calls in {@code text}: each {@code <tool_call>} block whose body is an object with a string "name" and an
     * object "arguments" (a last block the output ended inside counts when its body is whole). A block that is not such
     * a call stays in the content, as written.
     */
    static Parsed parse(String text) {
        List<Call> calls = new ArrayList<>();
        StringBuilder content = new StringBuilder();
        Matcher block = BLOCK.matcher(text);
        int from = 0;
        while (block.find()) {
            Call call = call(block.group(1));
            if (call == null) {
                continue;
            }
            content.append(text, from, block.start());
            from = block.end();
            calls.add(call);
        }
        content.append(text.substring(from));
        String rest = content.toString().strip();
        return new Parsed(rest.isEmpty() && !calls.isEmpty() ? null : calls.isEmpty() ? text : rest, calls);
    }

    private static Call call(String body) {
        try {
            JsonNode call = JSON.readTree(body.strip());
            JsonNode name = call == null ? null : call.get("name");
            JsonNode arguments = call == null ? null : call.has("arguments") ? call.get("arguments") : call.get("parameters");
            if (name == null || !name.isTextual() || arguments == null || !arguments.isObject()) {
                return null;
            }
            return Call.of(name.asText(), JSON.writeValueAsString(arguments));
        } catch (Exception e) {
            return null;
        }
    }
}
