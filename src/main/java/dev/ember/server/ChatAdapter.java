package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * Another API served over the chat path (OpenAI's Responses, Anthropic's Messages): its request checked field by field
 * and read into the chat completion it asks for, which runs as any chat request does, and the answer written back in
 * the API's shape by the {@link CompletionEndpoint.Answer} it makes.
 */
abstract class ChatAdapter {
    protected final CompletionEndpoint chat;
    protected final ObjectMapper json;
    protected final String modelName;
    private final String path;
    private final Set<String> fields;

    /**
     * @param path   the endpoint's path, for messages
     * @param fields the API's fields this server takes; any other is refused by name
     */
    ChatAdapter(CompletionEndpoint chat, ObjectMapper json, String modelName, String path, Set<String> fields) {
        this.chat = chat;
        this.json = json;
        this.modelName = modelName;
        this.path = path;
        this.fields = Set.copyOf(fields);
    }

    final void handle(Exchange exchange, JsonNode body) throws IOException, InterruptedException {
        if (!body.isObject()) {
            throw RequestFields.wrongType("body", "a JSON object", body);
        }
        RequestFields request = new RequestFields(body);
        for (Iterator<String> names = request.names(); names.hasNext(); ) {
            String name = names.next();
            if (!fields.contains(name) && request.has(name)) {
                throw ApiException.invalid(name, name + " is not supported by " + path + " on this server");
            }
        }
        ObjectNode chatRequest = chatRequest(request);
        CompletionRequest read = chat.reader().read(new RequestFields(chatRequest), CompletionEndpoint.Kind.CHAT);
        chat.handle(answer(exchange, request, chatRequest, read, request.bool("stream", false)), read, CompletionEndpoint.Kind.CHAT);
    }

    /**
     * A text: a string, or parts of one of {@code partTypes} ({@code {"type": ..., "text": ...}}) joined; anything else
     * (an image) refused, naming {@code at}.
     */
    static String text(JsonNode content, String at, List<String> partTypes) {
        if (content != null && content.isTextual()) {
            return content.asText();
        }
        if (content == null || !content.isArray()) {
            throw RequestFields.wrongType(at, "a string or a list of text parts", content);
        }
        StringBuilder text = new StringBuilder();
        for (JsonNode part : content) {
            if (!partTypes.contains(part.path("type").asText()) || !part.path("text").isTextual()) {
                throw ApiException.invalid(at, at + ": only text parts ({\"type\": \"" + partTypes.getFirst()
                        + "\", \"text\": ...}) are supported, got " + RequestFields.describe(part));
            }
            text.append(part.get("text").asText());
        }
        return text.toString();
    }

    /**
     * The API's tools as chat tools: each of {@code type} (or of none where {@code typeOptional}), its {@code name},
     * {@code description} and its parameters' schema under {@code schemaKey}; a tool of another type (one the API's own
     * servers run) refused by name.
     */
    ArrayNode chatTools(JsonNode tools, String type, boolean typeOptional, String schemaKey) {
        if (!tools.isArray()) {
            throw RequestFields.wrongType("tools", "a list of tools", tools);
        }
        ArrayNode chatTools = json.createArrayNode();
        for (int i = 0; i < tools.size(); i++) {
            JsonNode tool = tools.get(i);
            if (!(typeOptional && !tool.has("type")) && !type.equals(tool.path("type").asText())) {
                throw ApiException.invalid("tools[" + i + "]", "tools[" + i + "] of type \"" + tool.path("type").asText()
                        + "\" is not supported: only tools the model calls and the client runs");
            }
            ObjectNode function = chatTools.addObject().put("type", "function").putObject("function");
            function.set("name", tool.get("name"));
            if (tool.hasNonNull("description")) {
                function.set("description", tool.get("description"));
            }
            if (tool.hasNonNull(schemaKey)) {
                function.set("parameters", tool.get(schemaKey));
            }
        }
        return chatTools;
    }

    /** The chat completion {@code request} asks for, each of its fields already among those taken. */
    abstract ObjectNode chatRequest(RequestFields request);

    /** Where the chat completion ({@code read}) answers, {@code streamed} or whole, written in the API's shape. */
    abstract CompletionEndpoint.Answer answer(Exchange exchange, RequestFields request, ObjectNode chatRequest, CompletionRequest read,
                                              boolean streamed);
}
