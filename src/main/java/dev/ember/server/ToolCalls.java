package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Tool calling: what a chat request asked ({@link Request}), the format the model's chat template teaches it to call
 * in ({@link Format}), and the calls read back out of its text ({@link Format#parse}), as vLLM's tool-call parsers of
 * the same names read them.
 */
final class ToolCalls {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ToolCalls() {
    }

    /**
     * How a model writes a call. {@link #HERMES} (Qwen 2.5 and 3): each call a JSON object {@code {"name", "arguments"}}
     * between {@code <tool_call>} and {@code </tool_call>}. {@link #LLAMA3_JSON} (Llama 3.1 to 3.3): the answer is the
     * call, a JSON object {@code {"name", "parameters"}} (several joined by {@code ;}), after an optional
     * {@code <|python_tag|>}.
     */
    enum Format {
        HERMES("<tool_call>\n", "arguments", "\n</tool_call>"),
        LLAMA3_JSON("", "parameters", "");

        private static final Pattern HERMES_BLOCK = Pattern.compile("<tool_call>(.*?)(?:</tool_call>|$)", Pattern.DOTALL);

        /** How a forced call is written: its opening, the key of its arguments, its closing. */
        final String before, argumentsKey, after;

        Format(String before, String argumentsKey, String after) {
            this.before = before;
            this.argumentsKey = argumentsKey;
            this.after = after;
        }

        /** The format {@code tokenizer}'s chat template teaches, or null where it teaches none Ember reads. */
        static Format of(Tokenizer tokenizer) {
            if (tokenizer.chatTemplateContains("<tool_call>")) {
                return HERMES;
            }
            if (tokenizer.chatTemplateContains("\"parameters\": dictionary of argument name")) {
                return LLAMA3_JSON;
            }
            return null;
        }

        /**
         * The calls in {@code text}. A block (or answer) that is not a call, an object with a string "name" and an
         * object of arguments, stays in the content as written.
         */
        Parsed parse(String text) {
            return this == HERMES ? hermes(text) : llama3(text);
        }

        private static Parsed hermes(String text) {
            List<Call> calls = new ArrayList<>();
            StringBuilder content = new StringBuilder();
            Matcher block = HERMES_BLOCK.matcher(text);
            int from = 0;
            while (block.find()) {
                Call call = call(block.group(1), "arguments");
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

        private static Parsed llama3(String text) {
            String body = text.strip();
            body = body.startsWith("<|python_tag|>") ? body.substring("<|python_tag|>".length()).strip() : body;
            if (!body.startsWith("{")) {
                return new Parsed(text, List.of());
            }
            List<Call> calls = new ArrayList<>();
            try (MappingIterator<JsonNode> values = JSON.readerFor(JsonNode.class).readValues(body.replaceAll("}\\s*;\\s*\\{", "} {"))) {
                while (values.hasNext()) {
                    Call call = call(values.next().toString(), "parameters");
                    if (call == null) {
                        return new Parsed(text, List.of());
                    }
                    calls.add(call);
                }
            } catch (Exception e) {
                return new Parsed(text, List.of());
            }
            return calls.isEmpty() ? new Parsed(text, List.of()) : new Parsed(null, calls);
        }
    }

    /** OpenAI's {@code tool_choice}: the model decides, must call some function, must call the one named, or calls none. */
    enum Choice { AUTO, REQUIRED, NAMED, NONE }

    /**
     * A chat request's tools: the functions as the template writes them, each one's parameters schema by name, whether
     * the output is a call ({@link Choice#REQUIRED}, or the function {@code named}), and the format its calls are in
     * (null where the request lets the model call nothing).
     */
    record Request(List<Map<String, Object>> templateTools, Map<String, JsonNode> parameters, Choice choice, String named,
                   Format format) {
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

    /** A call of {@code body}, a JSON object with a string "name" and an object under {@code argumentsKey} (or the other one). */
    private static Call call(String body, String argumentsKey) {
        try {
            JsonNode call = JSON.readTree(body.strip());
            JsonNode name = call == null ? null : call.get("name");
            JsonNode arguments = call == null ? null : call.has(argumentsKey) ? call.get(argumentsKey)
                    : call.get(argumentsKey.equals("arguments") ? "parameters" : "arguments");
            if (name == null || !name.isTextual() || arguments == null || !arguments.isObject()) {
                return null;
            }
            return Call.of(name.asText(), JSON.writeValueAsString(arguments));
        } catch (Exception e) {
            return null;
        }
    }
}
