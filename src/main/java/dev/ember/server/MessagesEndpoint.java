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
 * {@code POST /v1/messages}, Anthropic's Messages API, as vLLM and llama.cpp's server answer it: the request is read into
 * the chat completion it asks for ({@code system}, the messages' text, {@code tool_use} and {@code tool_result} blocks as
 * calls and tool messages, {@code thinking} blocks as the turn's reasoning, {@code tools} with their
 * {@code input_schema}, {@code tool_choice} auto / any / tool / none, {@code stop_sequences}, {@code thinking} as the
 * template's switch and a budget), which runs as any chat
 * request does, and its answer is written back as a message of content blocks (thinking, text, tool_use) with Anthropic's
 * {@code stop_reason}, or streamed as its events ({@code message_start}, {@code content_block_start},
 * {@code content_block_delta} with {@code text_delta}, {@code input_json_delta} or {@code thinking_delta},
 * {@code content_block_stop}, {@code message_delta}, {@code message_stop}). Every field is honoured or refused by name.
 */
final class MessagesEndpoint extends ChatAdapter {
    /** The parts a text may be given in. */
    private static final List<String> TEXT_PARTS = List.of("text");
    private static final Set<String> FIELDS = Set.of("model", "messages", "system", "max_tokens", "stop_sequences", "stream",
            "temperature", "top_p", "top_k", "tools", "tool_choice", "metadata", "service_tier", "thinking");

    MessagesEndpoint(CompletionEndpoint chat, ObjectMapper json, String modelName) {
        super(chat, json, modelName, "/v1/messages", FIELDS);
    }

    @Override
    CompletionEndpoint.Answer answer(Exchange exchange, RequestFields fields, ObjectNode request, CompletionRequest read,
                                     boolean streamed) {
        String id = "msg_" + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
        List<String> stops = fields.strings("stop_sequences");
        return streamed ? new Streamed(exchange, id, stops, read.promptTokens()) : new Whole(exchange, id, stops);
    }

    /**
     * {@code POST /v1/messages/count_tokens}: the tokens the request's prompt takes (its system, messages and tools
     * through the chat template), as {@code {"input_tokens": N}}; a request of the Messages API but for max_tokens.
     */
    ObjectNode countTokens(JsonNode body) throws InterruptedException {
        if (!body.isObject()) {
            throw RequestFields.wrongType("body", "a JSON object", body);
        }
        ObjectNode counted = ((ObjectNode) body).deepCopy();
        counted.put("max_tokens", 1);
        counted.remove(List.of("stream", "stop_sequences", "temperature", "top_p", "top_k"));
        ObjectNode request = chatRequest(new RequestFields(counted));
        request.remove(List.of("max_tokens", "thinking_token_budget"));
        CompletionRequest read = chat.reader().read(new RequestFields(request), CompletionEndpoint.Kind.CHAT);
        return json.createObjectNode().put("input_tokens", read.prompts().getFirst().length);
    }

    /** The chat completion a messages request asks for. */
    @Override
    ObjectNode chatRequest(RequestFields fields) {
        if (!fields.has("max_tokens")) {
            throw ApiException.invalid("max_tokens", "max_tokens is required");
        }
        ObjectNode request = json.createObjectNode();
        if (fields.has("thinking")) {
            thinking(fields.node("thinking"), request);
        }
        for (String same : new String[] {"model", "max_tokens", "stream", "temperature", "top_p", "top_k", "service_tier"}) {
            if (fields.has(same)) {
                request.set(same, fields.node(same));
            }
        }
        if (fields.bool("stream", false)) {
            request.putObject("stream_options").put("include_usage", true);
        }
        if (fields.has("stop_sequences")) {
            request.set("stop", fields.node("stop_sequences"));
        }
        ArrayNode messages = request.putArray("messages");
        if (fields.has("system")) {
            messages.addObject().put("role", "system").put("content", text(fields.node("system"), "system", TEXT_PARTS));
        }
        messages(fields, messages);
        if (fields.has("tools")) {
            request.set("tools", chatTools(fields.node("tools"), "custom", true, "input_schema"));
        }
        if (fields.has("tool_choice")) {
            JsonNode choice = fields.node("tool_choice");
            switch (choice.path("type").asText()) {
                case "auto" -> request.put("tool_choice", "auto");
                case "any" -> request.put("tool_choice", "required");
                case "none" -> request.put("tool_choice", "none");
                case "tool" -> request.putObject("tool_choice").put("type", "function").putObject("function")
                        .put("name", choice.path("name").asText());
                default -> throw ApiException.invalid("tool_choice", "tool_choice must be {\"type\": \"auto\" | \"any\" | "
                        + "\"tool\" | \"none\"}, got " + RequestFields.describe(choice));
            }
            if (choice.path("disable_parallel_tool_use").asBoolean(false)) {
                request.put("parallel_tool_calls", false);
            }
        }
        return request;
    }

    /**
     * Anthropic's {@code thinking} as the chat request's: {@code enabled} (with its {@code budget_tokens}) and
     * {@code adaptive} turn the template's {@code enable_thinking} on (Qwen3's), {@code disabled} turns it off; a budget
     * closes the thinking after that many tokens (vLLM's {@code thinking_token_budget}, which needs the server's reasoning
     * parser). As in Anthropic's API, the thinking counts towards max_tokens.
     */
    private void thinking(JsonNode thinking, ObjectNode request) {
        String type = thinking.path("type").asText();
        switch (type) {
            case "enabled" -> {
                JsonNode budget = thinking.path("budget_tokens");
                if (!budget.isIntegralNumber() || !budget.canConvertToInt() || budget.asInt() < 0) {
                    throw ApiException.invalid("thinking.budget_tokens", "thinking {\"type\": \"enabled\"} needs "
                            + "budget_tokens, a non-negative integer, got " + RequestFields.describe(budget));
                }
                request.putObject("chat_template_kwargs").put("enable_thinking", true);
                request.put("thinking_token_budget", budget.asInt());
            }
            case "adaptive" -> request.putObject("chat_template_kwargs").put("enable_thinking", true);
            case "disabled" -> request.putObject("chat_template_kwargs").put("enable_thinking", false);
            default -> throw ApiException.invalid("thinking", "thinking must be {\"type\": \"enabled\" | \"adaptive\" | "
                    + "\"disabled\"}, got " + RequestFields.describe(thinking));
        }
    }

    /**
     * The messages as chat messages: a user turn's {@code tool_result} blocks as tool messages (first, as they answer the
     * calls before), its text as the user's message; an assistant turn's text as its content, its {@code tool_use}
     * blocks as its calls and its {@code thinking} as its reasoning.
     */
    private void messages(RequestFields fields, ArrayNode messages) {
        JsonNode input = fields.node("messages");
        if (input == null || !input.isArray() || input.isEmpty()) {
            throw RequestFields.wrongType("messages", "a non-empty list of messages", input);
        }
        for (int i = 0; i < input.size(); i++) {
            JsonNode message = input.get(i);
            String at = "messages[" + i + "]";
            String role = message.path("role").asText();
            JsonNode content = message.get("content");
            if (!role.equals("user") && !role.equals("assistant")) {
                throw ApiException.invalid(at + ".role", at + ".role must be \"user\" or \"assistant\", got " + message.path("role"));
            }
            if (content != null && content.isTextual()) {
                messages.addObject().put("role", role).put("content", content.asText());
                continue;
            }
            if (content == null || !content.isArray()) {
                throw RequestFields.wrongType(at + ".content", "a string or a list of content blocks", content);
            }
            StringBuilder text = new StringBuilder(), thinking = new StringBuilder();
            ArrayNode calls = json.createArrayNode();
            for (int b = 0; b < content.size(); b++) {
                JsonNode block = content.get(b);
                String blockAt = at + ".content[" + b + "]";
                switch (block.path("type").asText()) {
                    case "text" -> text.append(block.path("text").asText());
                    case "thinking" -> thinking.append(block.path("thinking").asText());
                    case "redacted_thinking" -> { }
                    case "tool_use" -> {
                        if (!role.equals("assistant")) {
                            throw ApiException.invalid(blockAt, blockAt + ": tool_use blocks belong to assistant turns");
                        }
                        ObjectNode call = calls.addObject().put("id", block.path("id").asText()).put("type", "function");
                        call.putObject("function").put("name", block.path("name").asText())
                                .put("arguments", block.has("input") ? block.get("input").toString() : "{}");
                    }
                    case "tool_result" -> {
                        if (!role.equals("user")) {
                            throw ApiException.invalid(blockAt, blockAt + ": tool_result blocks belong to user turns");
                        }
                        JsonNode result = block.get("content");
                        String output = result == null ? "" : result.isTextual() ? result.asText() : text(result, blockAt + ".content", TEXT_PARTS);
                        messages.addObject().put("role", "tool").put("tool_call_id", block.path("tool_use_id").asText())
                                .put("content", block.path("is_error").asBoolean(false) ? "Error: " + output : output);
                    }
                    default -> throw ApiException.invalid(blockAt, blockAt + " of type \"" + block.path("type").asText()
                            + "\" is not supported: text, thinking, tool_use and tool_result blocks are");
                }
            }
            if (role.equals("user")) {
                if (!text.isEmpty()) {
                    messages.addObject().put("role", "user").put("content", text.toString());
                }
                continue;
            }
            ObjectNode turn = messages.addObject().put("role", "assistant");
            if (text.isEmpty() && !calls.isEmpty()) {
                turn.putNull("content");
            } else {
                turn.put("content", text.toString());
            }
            if (!calls.isEmpty()) {
                turn.set("tool_calls", calls);
            }
            if (!thinking.isEmpty()) {
                turn.put("reasoning_content", thinking.toString());
            }
        }
    }



    /** Anthropic's stop reason for a chat choice's finish: a call made, the budget spent, a stop sequence, or the turn's end. */
    private static String stopReason(String finishReason, JsonNode stopReason, List<String> stops) {
        return switch (finishReason) {
            case "tool_calls" -> "tool_use";
            case "length" -> "max_tokens";
            default -> stopReason != null && stopReason.isTextual() && stops.contains(stopReason.asText()) ? "stop_sequence" : "end_turn";
        };
    }

    private ObjectNode usage(JsonNode usage) {
        ObjectNode u = json.createObjectNode();
        u.put("input_tokens", usage == null ? 0 : usage.path("prompt_tokens").asInt());
        u.put("cache_read_input_tokens", usage == null ? 0 : usage.at("/prompt_tokens_details/cached_tokens").asInt());
        u.put("output_tokens", usage == null ? 0 : usage.path("completion_tokens").asInt());
        return u;
    }

    /** The message object, its content blocks to come. */
    private ObjectNode message(String id, String model) {
        ObjectNode message = json.createObjectNode().put("id", id).put("type", "message").put("role", "assistant").put("model", model);
        message.putArray("content");
        return message;
    }

    /** A call's arguments as the object Anthropic's {@code input} is ({@code {}} where they are not one). */
    private JsonNode input(String arguments) {
        try {
            JsonNode input = json.readTree(arguments);
            return input != null && input.isObject() ? input : json.createObjectNode();
        } catch (IOException e) {
            return json.createObjectNode();
        }
    }

    /** A whole chat completion written back as one message. */
    private final class Whole implements CompletionEndpoint.Answer.Whole {
        private final Exchange exchange;
        private final String id;
        private final List<String> stops;

        Whole(Exchange exchange, String id, List<String> stops) {
            this.exchange = exchange;
            this.id = id;
            this.stops = stops;
        }

        @Override
        public void onClientGone(Runnable action) {
            exchange.onClientGone(action);
        }

        @Override
        public void whole(ObjectNode body) throws IOException {
            JsonNode choice = body.at("/choices/0");
            JsonNode chatMessage = choice.path("message");
            ObjectNode message = message(id, body.path("model").asText(modelName));
            ArrayNode content = (ArrayNode) message.get("content");
            if (chatMessage.path("reasoning_content").isTextual()) {
                content.addObject().put("type", "thinking").put("thinking", chatMessage.get("reasoning_content").asText())
                        .put("signature", "");
            }
            if (chatMessage.path("content").isTextual() && !chatMessage.get("content").asText().isEmpty()) {
                content.addObject().put("type", "text").put("text", chatMessage.get("content").asText());
            }
            for (JsonNode call : chatMessage.path("tool_calls")) {
                content.addObject().put("type", "tool_use").put("id", call.path("id").asText())
                        .put("name", call.at("/function/name").asText()).set("input", input(call.at("/function/arguments").asText()));
            }
            JsonNode stopReason = choice.get("stop_reason");
            message.put("stop_reason", MessagesEndpoint.stopReason(choice.path("finish_reason").asText(), stopReason, stops));
            message.set("stop_sequence", "stop_sequence".equals(message.get("stop_reason").asText()) ? stopReason : null);
            message.set("usage", usage(body.get("usage")));
            exchange.sendJson(200, json.writeValueAsBytes(message));
        }

    }

    /**
     * A streamed chat completion written back as the Messages API's events: each run of thinking, text or a call's
     * arguments a content block, started when it begins, grown by deltas and stopped when the next begins or the answer
     * ends; {@code message_delta} carries the stop reason and the usage, {@code message_stop} ends the stream.
     */
    private final class Streamed implements CompletionEndpoint.Answer {
        private enum Block { NONE, THINKING, TEXT, TOOL }

        private final Exchange exchange;
        private final String id;
        private final List<String> stops;
        private final TypedEvents events;
        private Block open = Block.NONE;
        private int index = -1;
        private String finishReason;
        private JsonNode stopReason;
        private JsonNode usage;
        private boolean failed;
        /** The prompt's tokens, which the message's start already says (its output's come at the end). */
        private final int promptTokens;

        Streamed(Exchange exchange, String id, List<String> stops, int promptTokens) {
            this.exchange = exchange;
            this.events = new TypedEvents(exchange, json, false);
            this.id = id;
            this.stops = stops;
            this.promptTokens = promptTokens;
        }

        @Override
        public void onClientGone(Runnable action) {
            exchange.onClientGone(action);
        }

        @Override
        public void whole(ObjectNode body) {
            throw new IllegalStateException("a streamed message comes in chunks");
        }

        @Override
        public void startStream() throws IOException {
            exchange.startEventStream();
            ObjectNode start = message(id, modelName);
            start.putNull("stop_reason");
            start.putNull("stop_sequence");
            start.set("usage", usage(null).put("input_tokens", promptTokens));
            events.event("message_start").set("message", start);
            events.flush();
        }

        @Override
        public void chunk(ObjectNode chunk) throws IOException {
            if (chunk.has("error")) {
                ObjectNode error = events.event("error");
                error.putObject("error").put("type", "api_error").put("message", chunk.at("/error/message").asText());
                failed = true;
                events.flush();
                return;
            }
            if (chunk.hasNonNull("usage") && chunk.path("choices").isEmpty()) {
                usage = chunk.get("usage");
            }
            for (JsonNode choice : chunk.path("choices")) {
                JsonNode delta = choice.path("delta");
                if (delta.path("reasoning_content").isTextual()) {
                    grow(Block.THINKING, "thinking_delta", "thinking", delta.get("reasoning_content").asText());
                }
                if (delta.path("content").isTextual() && !delta.get("content").asText().isEmpty()) {
                    grow(Block.TEXT, "text_delta", "text", delta.get("content").asText());
                }
                for (JsonNode call : delta.path("tool_calls")) {
                    if (call.has("id")) {
                        start(Block.TOOL, json.createObjectNode().put("type", "tool_use").put("id", call.get("id").asText())
                                .put("name", call.at("/function/name").asText()).set("input", json.createObjectNode()));
                    }
                    String arguments = call.at("/function/arguments").asText("");
                    if (!arguments.isEmpty()) {
                        grow(Block.TOOL, "input_json_delta", "partial_json", arguments);
                    }
                }
                if (choice.hasNonNull("finish_reason")) {
                    finishReason = choice.get("finish_reason").asText();
                    stopReason = choice.get("stop_reason");
                }
            }
            events.flush();
        }

        @Override
        public void endStream() throws IOException {
            if (!failed) {
                stop();
                ObjectNode delta = events.event("message_delta");
                String reason = MessagesEndpoint.stopReason(finishReason == null ? "stop" : finishReason, stopReason, stops);
                delta.putObject("delta").put("stop_reason", reason)
                        .set("stop_sequence", "stop_sequence".equals(reason) ? stopReason : null);
                delta.set("usage", usage(usage));
                events.event("message_stop");
                events.flush();
            }
            exchange.endEventStreamQuietly();
        }

        /** Adds {@code text} to the block of its kind, starting one (and stopping the one before) where it is another. */
        private void grow(Block kind, String deltaType, String field, String text) {
            if (open != kind) {
                start(kind, switch (kind) {
                    case THINKING -> json.createObjectNode().put("type", "thinking").put("thinking", "").put("signature", "");
                    case TEXT -> json.createObjectNode().put("type", "text").put("text", "");
                    default -> throw new IllegalStateException("a call's arguments come after it started");
                });
            }
            events.event("content_block_delta").put("index", index).putObject("delta").put("type", deltaType).put(field, text);
        }

        private void start(Block kind, ObjectNode block) {
            stop();
            open = kind;
            index++;
            events.event("content_block_start").put("index", index).set("content_block", block);
        }

        private void stop() {
            if (open == Block.NONE) {
                return;
            }
            if (open == Block.THINKING) {
                events.event("content_block_delta").put("index", index).putObject("delta").put("type", "signature_delta").put("signature", "");
            }
            events.event("content_block_stop").put("index", index);
            open = Block.NONE;
        }

    }
}
