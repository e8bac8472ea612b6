package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * {@code POST /v1/responses}, OpenAI's Responses API, as vLLM serves it: the request is read into the chat completion it
 * asks for ({@code input} items as messages, {@code instructions} as the system message, function tools, {@code text}'s
 * format as {@code response_format}), which runs as any chat request does, and its answer is written back as a response:
 * {@code output} items (reasoning, a message of {@code output_text}, function calls), or streamed as the API's typed
 * events ({@code response.created}, {@code response.output_text.delta}, ..., {@code response.completed}). Responses
 * are not stored: {@code previous_response_id} is refused, and a conversation goes whole in {@code input}, calls and
 * their outputs as {@code function_call} and {@code function_call_output} items. vLLM's extensions of the chat request
 * that shape the answer pass through ({@code chat_template_kwargs}, {@code thinking_token_budget}, {@code logit_bias}),
 * and {@code reasoning.effort} goes to the template as vLLM gives it.
 * Every field is honoured or refused by name.
 */
final class ResponsesEndpoint extends ChatAdapter {
    /** The parts a text may be given in. */
    private static final List<String> TEXT_PARTS = List.of("input_text", "output_text", "text");
    private static final Set<String> FIELDS = Set.of("model", "input", "instructions", "max_output_tokens", "temperature",
            "top_p", "stream", "tools", "tool_choice", "parallel_tool_calls", "text", "store", "metadata", "user",
            "service_tier", "truncation", "previous_response_id", "reasoning", "include", "background", "seed",
            "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty", "safety_identifier",
            "prompt_cache_key", "stream_options", "chat_template_kwargs", "thinking_token_budget", "logit_bias");

    ResponsesEndpoint(CompletionEndpoint chat, ObjectMapper json, String modelName) {
        super(chat, json, modelName, "/v1/responses", FIELDS);
    }

    @Override
    CompletionEndpoint.Answer answer(Exchange exchange, RequestFields fields, ObjectNode request, CompletionRequest read,
                                     boolean streamed) {
        Shape shape = new Shape("resp_" + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong()),
                System.currentTimeMillis() / 1000, echoed(fields, request));
        return streamed ? new Streamed(exchange, shape) : new Whole(exchange, shape);
    }

    /** The chat completion a response request asks for. */
    @Override
    ObjectNode chatRequest(RequestFields fields) {
        if (fields.has("previous_response_id")) {
            throw ApiException.invalid("previous_response_id", "previous_response_id: responses are not stored here; send "
                    + "the conversation in input (earlier calls as function_call items, their results as function_call_output)");
        }
        if (fields.bool("background", false)) {
            throw ApiException.invalid("background", "background responses are not supported: the answer comes with the request");
        }
        if (fields.has("truncation") && !"disabled".equals(fields.string("truncation", "disabled"))) {
            throw ApiException.invalid("truncation", "truncation \"" + fields.string("truncation", "") + "\" is not supported: "
                    + "only \"disabled\" (a conversation over the context is refused)");
        }
        if (fields.has("include") && !fields.node("include").isEmpty()) {
            throw ApiException.invalid("include", "include " + fields.node("include") + " is not supported");
        }
        if (fields.has("reasoning") && (!fields.node("reasoning").isObject() || fields.node("reasoning").properties().stream()
                .anyMatch(e -> !e.getKey().equals("effort") && !e.getValue().isNull()))) {
            throw ApiException.invalid("reasoning", "reasoning " + fields.node("reasoning") + " is not supported but for its "
                    + "effort: how a model thinks is its chat template's (chat_template_kwargs)");
        }
        ObjectNode request = json.createObjectNode();
        if (fields.has("reasoning") && fields.node("reasoning").hasNonNull("effort")) {
            request.set("reasoning_effort", fields.node("reasoning").get("effort"));
        }
        if (fields.has("stream_options") && (!fields.node("stream_options").isObject() || fields.node("stream_options").properties()
                .stream().anyMatch(e -> !e.getKey().equals("include_obfuscation") || e.getValue().asBoolean(true)))) {
            throw ApiException.invalid("stream_options", "stream_options " + fields.node("stream_options") + " is not supported "
                    + "(include_obfuscation false alone is: events here carry no padding)");
        }
        for (String same : new String[] {"model", "temperature", "top_p", "stream", "parallel_tool_calls", "store", "metadata",
                "user", "service_tier", "seed", "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty",
                "safety_identifier", "prompt_cache_key", "chat_template_kwargs", "thinking_token_budget", "logit_bias"}) {
            if (fields.has(same)) {
                request.set(same, fields.node(same));
            }
        }
        if (fields.bool("stream", false)) {
            request.putObject("stream_options").put("include_usage", true);
        }
        if (fields.has("max_output_tokens")) {
            request.set("max_tokens", fields.node("max_output_tokens"));
        }
        ArrayNode messages = request.putArray("messages");
        if (fields.has("instructions")) {
            messages.addObject().put("role", "system").put("content", fields.string("instructions", ""));
        }
        messages(fields, messages);
        if (fields.has("tools")) {
            request.set("tools", chatTools(fields.node("tools"), "function", false, "parameters"));
        }
        if (fields.has("tool_choice")) {
            JsonNode choice = fields.node("tool_choice");
            if (choice.isObject()) {
                if (!"function".equals(choice.path("type").asText()) || !choice.path("name").isTextual()) {
                    throw ApiException.invalid("tool_choice", "tool_choice must be \"auto\", \"required\", \"none\" or "
                            + "{\"type\": \"function\", \"name\": ...}, got " + RequestFields.describe(choice));
                }
                ObjectNode named = request.putObject("tool_choice").put("type", "function");
                named.putObject("function").put("name", choice.get("name").asText());
            } else {
                request.set("tool_choice", choice);
            }
        }
        if (fields.has("text")) {
            JsonNode format = fields.node("text").path("format");
            switch (format.path("type").asText("text")) {
                case "text" -> { }
                case "json_object" -> request.putObject("response_format").put("type", "json_object");
                case "json_schema" -> {
                    ObjectNode schema = request.putObject("response_format").put("type", "json_schema").putObject("json_schema");
                    schema.put("name", format.path("name").asText("response"));
                    schema.set("schema", format.get("schema"));
                    if (format.has("strict")) {
                        schema.set("strict", format.get("strict"));
                    }
                }
                default -> throw ApiException.invalid("text.format", "text.format type \"" + format.path("type").asText()
                        + "\" is not one of text, json_object, json_schema");
            }
        }
        return request;
    }

    /**
     * {@code input} as chat messages: a string is the user's message; a list holds messages (a role and a text, or text
     * parts), {@code function_call} items (consecutive ones one assistant turn of calls) and {@code function_call_output}
     * items (a tool message); a {@code reasoning} item's text becomes the {@code reasoning_content} of the assistant turn
     * after it, which templates such as Qwen3's write back in a tool-calling loop.
     */
    private void messages(RequestFields fields, ArrayNode messages) {
        if (!fields.has("input")) {
            throw ApiException.invalid("input", "input is required: a string, or a list of messages and items");
        }
        JsonNode input = fields.node("input");
        if (input.isTextual()) {
            messages.addObject().put("role", "user").put("content", input.asText());
            return;
        }
        if (!input.isArray() || input.isEmpty()) {
            throw RequestFields.wrongType("input", "a string or a non-empty list of messages and items", input);
        }
        ObjectNode calling = null;  // the assistant turn the last function_call items went to
        String reasoning = null;  // the thinking of the next assistant turn
        for (int i = 0; i < input.size(); i++) {
            JsonNode item = input.get(i);
            String at = "input[" + i + "]";
            String type = item.path("type").asText(item.has("role") ? "message" : "");
            switch (type) {
                case "message" -> {
                    ObjectNode message = messages.addObject().put("role", item.path("role").asText());
                    message.put("content", text(item.get("content"), at + ".content", TEXT_PARTS));
                    if ("assistant".equals(item.path("role").asText()) && reasoning != null) {
                        message.put("reasoning_content", reasoning);
                        reasoning = null;
                    }
                    calling = null;
                }
                case "function_call" -> {
                    if (calling == null) {
                        calling = messages.addObject().put("role", "assistant").putNull("content");
                        calling.putArray("tool_calls");
                        if (reasoning != null) {
                            calling.put("reasoning_content", reasoning);
                            reasoning = null;
                        }
                    }
                    ObjectNode call = calling.withArray("tool_calls").addObject()
                            .put("id", item.path("call_id").asText(item.path("id").asText())).put("type", "function");
                    call.putObject("function").put("name", item.path("name").asText()).put("arguments", item.path("arguments").asText("{}"));
                }
                case "function_call_output" -> {
                    JsonNode output = item.get("output");
                    messages.addObject().put("role", "tool").put("tool_call_id", item.path("call_id").asText())
                            .put("content", output == null ? "" : output.isTextual() ? output.asText() : text(output, at + ".output", TEXT_PARTS));
                    calling = null;
                }
                case "reasoning" -> {
                    StringBuilder thinking = new StringBuilder();
                    for (JsonNode part : item.path("content").isArray() ? item.get("content") : item.path("summary")) {
                        thinking.append(part.path("text").asText(""));
                    }
                    reasoning = thinking.toString();
                }
                default -> throw ApiException.invalid(at, at + " of type \"" + type + "\" is not supported: input holds "
                        + "messages, function_call, function_call_output and reasoning items");
            }
        }
    }



    /** What a response repeats of its request. */
    private ObjectNode echoed(RequestFields fields, ObjectNode request) {
        ObjectNode echoed = json.createObjectNode();
        echoed.set("instructions", fields.has("instructions") ? fields.node("instructions") : null);
        echoed.set("max_output_tokens", fields.has("max_output_tokens") ? fields.node("max_output_tokens") : null);
        echoed.put("parallel_tool_calls", fields.bool("parallel_tool_calls", true));
        echoed.put("temperature", fields.has("temperature") ? fields.node("temperature").asDouble() : 1.0);
        echoed.put("top_p", fields.has("top_p") ? fields.node("top_p").asDouble() : 1.0);
        echoed.set("tool_choice", fields.has("tool_choice") ? fields.node("tool_choice") : json.getNodeFactory().textNode("auto"));
        echoed.set("tools", fields.has("tools") ? fields.node("tools") : json.createArrayNode());
        echoed.set("text", fields.has("text") ? fields.node("text") : json.createObjectNode().set("format",
                json.createObjectNode().put("type", "text")));
        echoed.set("metadata", fields.has("metadata") ? fields.node("metadata") : json.createObjectNode());
        echoed.put("store", false);
        echoed.put("truncation", "disabled");
        return echoed;
    }

    /** A response's id, its creation time and what it repeats of its request. */
    private record Shape(String id, long created, ObjectNode echoed) {
    }

    /** The response object: its status, its output items and its usage, with what it repeats of the request. */
    private ObjectNode response(Shape shape, String model, String status, ArrayNode output, JsonNode usage, String incomplete) {
        ObjectNode response = json.createObjectNode();
        response.put("id", shape.id()).put("object", "response").put("created_at", shape.created()).put("status", status);
        response.putNull("error");
        if (incomplete == null) {
            response.putNull("incomplete_details");
        } else {
            response.putObject("incomplete_details").put("reason", incomplete);
        }
        response.put("model", model);
        response.set("output", output);
        response.setAll(shape.echoed());
        if (usage == null) {
            response.putNull("usage");
        } else {
            ObjectNode u = response.putObject("usage");
            u.put("input_tokens", usage.path("prompt_tokens").asInt());
            u.putObject("input_tokens_details").put("cached_tokens", usage.at("/prompt_tokens_details/cached_tokens").asInt());
            u.put("output_tokens", usage.path("completion_tokens").asInt());
            u.putObject("output_tokens_details").put("reasoning_tokens", 0);
            u.put("total_tokens", usage.path("total_tokens").asInt());
        }
        return response;
    }

    private static String itemId(String prefix) {
        return prefix + "_" + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
    }

    /** The items of a chat message: its thinking, its text, its calls, in that order. */
    private ArrayNode output(JsonNode message) {
        ArrayNode output = json.createArrayNode();
        if (message.path("reasoning_content").isTextual()) {
            output.add(reasoningItem(itemId("rs"), message.get("reasoning_content").asText(), "completed"));
        }
        if (message.path("content").isTextual() && !message.get("content").asText().isEmpty()) {
            output.add(messageItem(itemId("msg"), message.get("content").asText(), "completed"));
        }
        for (JsonNode call : message.path("tool_calls")) {
            output.add(callItem(itemId("fc"), call.path("id").asText(), call.at("/function/name").asText(),
                    call.at("/function/arguments").asText(), "completed"));
        }
        return output;
    }

    private ObjectNode reasoningItem(String id, String text, String status) {
        ObjectNode item = json.createObjectNode().put("type", "reasoning").put("id", id).put("status", status);
        item.putArray("summary");
        item.putArray("content").addObject().put("type", "reasoning_text").put("text", text);
        return item;
    }

    private ObjectNode messageItem(String id, String text, String status) {
        ObjectNode item = json.createObjectNode().put("type", "message").put("id", id).put("status", status).put("role", "assistant");
        ArrayNode content = item.putArray("content");
        if (text != null) {
            content.add(textPart(text));
        }
        return item;
    }

    private ObjectNode textPart(String text) {
        ObjectNode part = json.createObjectNode().put("type", "output_text").put("text", text);
        part.putArray("annotations");
        part.putArray("logprobs");
        return part;
    }

    private ObjectNode callItem(String id, String callId, String name, String arguments, String status) {
        return json.createObjectNode().put("type", "function_call").put("id", id).put("call_id", callId).put("name", name)
                .put("arguments", arguments).put("status", status);
    }

    /** The status a chat finish reason gives a response, and why it is incomplete (null where it is not). */
    private static String incomplete(String finishReason) {
        return "length".equals(finishReason) ? "max_output_tokens" : null;
    }

    /** A whole chat completion written back as one response object. */
    private final class Whole implements CompletionEndpoint.Answer.Whole {
        private final Exchange exchange;
        private final Shape shape;

        Whole(Exchange exchange, Shape shape) {
            this.exchange = exchange;
            this.shape = shape;
        }

        @Override
        public void onClientGone(Runnable action) {
            exchange.onClientGone(action);
        }

        @Override
        public void whole(ObjectNode body) throws IOException {
            JsonNode choice = body.at("/choices/0");
            String reason = incomplete(choice.path("finish_reason").asText());
            ObjectNode response = response(shape, body.path("model").asText(), reason == null ? "completed" : "incomplete",
                    output(choice.path("message")), body.get("usage"), reason);
            exchange.sendJson(200, json.writeValueAsBytes(response));
        }

    }

    /**
     * A streamed chat completion written back as the Responses API's events: each run of thinking, text or a call's
     * arguments becomes an output item, opened when it begins ({@code response.output_item.added}), grown by deltas, and
     * done when the next begins or the answer ends; {@code response.completed} carries the whole response, usage
     * included. Every event names its type and carries a sequence number.
     */
    private final class Streamed implements CompletionEndpoint.Answer {
        private enum Open { NONE, REASONING, TEXT, CALL }

        private final Exchange exchange;
        private final Shape shape;
        private final ArrayNode output = json.createArrayNode();
        private final StringBuilder text = new StringBuilder();
        private final TypedEvents events;
        private Open open = Open.NONE;
        private ObjectNode item;
        private boolean failed;
        private String model = modelName;
        private String finishReason;
        private JsonNode usage;

        Streamed(Exchange exchange, Shape shape) {
            this.exchange = exchange;
            this.events = new TypedEvents(exchange, json, true);
            this.shape = shape;
        }

        @Override
        public void onClientGone(Runnable action) {
            exchange.onClientGone(action);
        }

        @Override
        public void whole(ObjectNode body) {
            throw new IllegalStateException("a streamed response comes in chunks");
        }

        @Override
        public void startStream() throws IOException {
            exchange.startEventStream();
            ObjectNode started = response(shape, model, "in_progress", json.createArrayNode(), null, null);
            events.event("response.created").set("response", started);
            events.event("response.in_progress").set("response", started);
            events.flush();
        }

        @Override
        public void chunk(ObjectNode chunk) throws IOException {
            if (chunk.has("error")) {
                close();
                ObjectNode error = events.event("error");
                error.setAll((ObjectNode) chunk.get("error"));
                ObjectNode failed = response(shape, model, "failed", output, null, null);
                failed.set("error", json.createObjectNode().put("code", "server_error")
                        .put("message", chunk.at("/error/message").asText()));
                events.event("response.failed").set("response", failed);
                this.failed = true;
                events.flush();
                return;
            }
            model = chunk.path("model").asText(model);
            if (chunk.hasNonNull("usage") && chunk.path("choices").isEmpty()) {
                usage = chunk.get("usage");
            }
            events.flush();
            for (JsonNode choice : chunk.path("choices")) {
                JsonNode delta = choice.path("delta");
                if (delta.path("reasoning_content").isTextual()) {
                    grow(Open.REASONING, delta.get("reasoning_content").asText());
                }
                if (delta.path("content").isTextual() && !delta.get("content").asText().isEmpty()) {
                    grow(Open.TEXT, delta.get("content").asText());
                }
                for (JsonNode call : delta.path("tool_calls")) {
                    if (call.has("id")) {
                        close();
                        open(Open.CALL, callItem(itemId("fc"), call.get("id").asText(), call.at("/function/name").asText(),
                                "", "in_progress"));
                    }
                    String arguments = call.at("/function/arguments").asText("");
                    if (!arguments.isEmpty()) {
                        grow(Open.CALL, arguments);
                    }
                }
                if (choice.hasNonNull("finish_reason")) {
                    finishReason = choice.get("finish_reason").asText();
                }
            }
            events.flush();
        }

        @Override
        public void endStream() throws IOException {
            if (failed) {
                exchange.endEventStreamQuietly();
                return;
            }
            close();
            String reason = incomplete(finishReason);
            ObjectNode done = response(shape, model, reason == null ? "completed" : "incomplete", output, usage, reason);
            events.event(reason == null ? "response.completed" : "response.incomplete").set("response", done);
            events.flush();
            exchange.endEventStreamQuietly();
        }

        /** Adds {@code delta} to the item of its kind, opening one (and closing the one before) where it is another. */
        private void grow(Open kind, String delta) throws IOException {
            if (open != kind) {
                close();
                open(kind, switch (kind) {
                    case REASONING -> reasoningItem(itemId("rs"), "", "in_progress");
                    case TEXT -> messageItem(itemId("msg"), null, "in_progress");
                    default -> throw new IllegalStateException("a call's arguments come after it opened");
                });
            }
            text.append(delta);
            ObjectNode event = events.event(switch (kind) {
                case REASONING -> "response.reasoning_text.delta";
                case TEXT -> "response.output_text.delta";
                default -> "response.function_call_arguments.delta";
            }).put("item_id", item.get("id").asText()).put("output_index", output.size());
            if (kind != Open.CALL) {
                event.put("content_index", 0);
            }
            event.put("delta", delta);
        }

        private void open(Open kind, ObjectNode opened) {
            open = kind;
            item = opened;
            text.setLength(0);
            events.event("response.output_item.added").put("output_index", output.size()).set("item", opened.deepCopy());
            if (kind == Open.TEXT) {
                events.event("response.content_part.added").put("item_id", opened.get("id").asText()).put("output_index", output.size())
                        .put("content_index", 0).set("part", textPart(""));
            }
        }

        /** Finishes the open item: its done events, and it joins the response's output. */
        private void close() {
            if (open == Open.NONE) {
                return;
            }
            String id = item.get("id").asText();
            int index = output.size();
            switch (open) {
                case REASONING -> {
                    events.event("response.reasoning_text.done").put("item_id", id).put("output_index", index).put("content_index", 0)
                            .put("text", text.toString());
                    item = reasoningItem(id, text.toString(), "completed");
                }
                case TEXT -> {
                    events.event("response.output_text.done").put("item_id", id).put("output_index", index).put("content_index", 0)
                            .put("text", text.toString());
                    events.event("response.content_part.done").put("item_id", id).put("output_index", index).put("content_index", 0)
                            .set("part", textPart(text.toString()));
                    item = messageItem(id, text.toString(), "completed");
                }
                case CALL -> {
                    events.event("response.function_call_arguments.done").put("item_id", id).put("output_index", index)
                            .put("arguments", text.toString());
                    item = callItem(id, item.get("call_id").asText(), item.get("name").asText(), text.toString(), "completed");
                }
                case NONE -> { }
            }
            events.event("response.output_item.done").put("output_index", index).set("item", item);
            output.add(item);
            open = Open.NONE;
        }

    }
}
