package dev.ember.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;
import dev.ember.grammar.Grammars;
import dev.ember.sampling.OutputGrammar;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * What a request holds its output to, read from its fields (structured output) or from its tool choice (a forced
 * call), as the grammars of one model ({@link Grammars}, which keeps the vocabulary's trie and compiled grammars).
 */
final class OutputConstraints {
    /** The request fields that hold an output to a grammar, at most one of them a request. */
    static final List<String> FIELDS = List.of("response_format", "guided_json", "guided_choice", "guided_regex",
            "guided_grammar", "grammar", "ebnf", "regex", "json_schema", "structured_outputs");

    private final Grammars grammars;
    private final ObjectMapper json;

    OutputConstraints(Grammars grammars, ObjectMapper json) {
        this.grammars = grammars;
        this.json = json;
    }

    /**
     * The grammar the output must match, or null for free text: OpenAI's {@code response_format} (json_object, or
     * json_schema with its schema), vLLM's {@code guided_json} (a schema, or its text), {@code guided_choice},
     * {@code guided_regex} and {@code guided_grammar} (GBNF), or vLLM's {@code structured_outputs} object of the same
     * ({@code json}, {@code choice}, {@code regex}, {@code grammar}, {@code json_object}); llama.cpp's {@code grammar}
     * and SGLang's {@code ebnf} (GBNF both), SGLang's {@code regex}, {@code json_schema} (llama.cpp's and SGLang's: a
     * schema or its text) and llama.cpp's {@code response_format} json_object with a {@code schema}; one at a time.
     */
    OutputGrammar read(RequestFields fields) {
        List<String> given = new ArrayList<>();
        for (String name : FIELDS) {
            if (fields.has(name) && !(name.equals("response_format") && "text".equals(fields.node(name).path("type").asText()))) {
                given.add(name);
            }
        }
        if (given.isEmpty()) {
            return null;
        }
        if (given.size() > 1) {
            throw ApiException.invalid(given.get(1), given.get(1) + " and " + given.get(0) + " both constrain the output; give one");
        }
        String name = given.getFirst();
        JsonNode node = fields.node(name);
        try {
            return switch (name) {
                case "response_format" -> responseFormat(node);
                case "guided_json", "json_schema" -> grammars.jsonSchema(schemaOf(node, name));
                case "guided_choice" -> grammars.choice(strings(node, name));
                case "guided_regex", "regex" -> grammars.regex(text(node, name, "a regular expression"));
                case "guided_grammar", "grammar", "ebnf" -> grammars.gbnf(text(node, name, "a GBNF grammar"));
                default -> structuredOutputs(node);
            };
        } catch (EmberException e) {
            throw ApiException.invalid(name, name + ": " + e.getMessage());
        }
    }

    private OutputGrammar responseFormat(JsonNode format) {
        if (!format.isObject()) {
            throw RequestFields.wrongType("response_format", "an object with a \"type\"", format);
        }
        String type = format.path("type").asText();
        return switch (type) {
            case "json_object" -> format.has("schema") ? grammars.jsonSchema(schemaOf(format.get("schema"), "response_format.schema"))
                    : grammars.jsonObject();
            case "json_schema" -> {
                JsonNode schema = format.at("/json_schema/schema");
                if (!schema.isObject() && !schema.isBoolean()) {
                    throw new EmberException("json_schema.schema, the schema itself, is missing");
                }
                yield grammars.jsonSchema(schema);
            }
            default -> throw new EmberException("the type \"" + type + "\" is not one of text, json_object and json_schema");
        };
    }

    private OutputGrammar structuredOutputs(JsonNode options) {
        if (!options.isObject() || options.size() != 1) {
            throw new EmberException("an object of exactly one of json, choice, regex, grammar and json_object is held");
        }
        String kind = options.fieldNames().next();
        JsonNode value = options.get(kind);
        return switch (kind) {
            case "json" -> grammars.jsonSchema(schemaOf(value, "json"));
            case "choice" -> grammars.choice(strings(value, "choice"));
            case "regex" -> grammars.regex(text(value, "regex", "a regular expression"));
            case "grammar" -> grammars.gbnf(text(value, "grammar", "a GBNF grammar"));
            case "json_object" -> grammars.jsonObject();
            default -> throw new EmberException(kind + " is not supported (json, choice, regex, grammar and json_object are)");
        };
    }

    /** A schema given as JSON, or as the text of JSON (as vLLM's guided_json also takes it). */
    private JsonNode schemaOf(JsonNode node, String name) {
        if (!node.isTextual()) {
            return node;
        }
        try {
            return json.readTree(node.asText());
        } catch (JsonProcessingException e) {
            throw new EmberException(name + " is a string but not the text of a JSON schema (" + e.getOriginalMessage() + ")");
        }
    }

    private static String text(JsonNode node, String name, String what) {
        if (!node.isTextual() || node.asText().isEmpty()) {
            throw new EmberException(name + " must be " + what + " (a non-empty string), got " + node);
        }
        return node.asText();
    }

    private static List<String> strings(JsonNode node, String name) {
        if (!node.isArray() || node.isEmpty()) {
            throw new EmberException(name + " must be a non-empty list of strings, got " + node);
        }
        List<String> strings = new ArrayList<>();
        for (JsonNode s : node) {
            if (!s.isTextual()) {
                throw new EmberException(name + " must be a list of strings, got " + s + " in it");
            }
            strings.add(s.asText());
        }
        return strings;
    }

    /** The grammar of one call: of the function named, or of any of the tools. */
    /** The most calls a forced answer may make at once. */
    static final int MOST_CALLS = 8;

    OutputGrammar toolCall(ToolCalls.Request tools) {
        Map<String, JsonNode> callable = tools.named() == null ? tools.parameters()
                : java.util.Collections.singletonMap(tools.named(), tools.parameters().get(tools.named()));
        try {
            ToolCalls.Format format = tools.format();
            // "required" lets the model make several calls, where they may be parallel; a named function is one call.
            int most = tools.choice() == ToolCalls.Choice.REQUIRED && tools.parallel() ? MOST_CALLS : 1;
            return grammars.toolCalls(format.before, format.argumentsKey, callable, format.separator, format.after, most);
        } catch (EmberException e) {
            throw ApiException.invalid("tools", "tools: a function's parameters: " + e.getMessage());
        }
    }
}
