package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import dev.ember.EmberException;
import dev.ember.engine.RequestError;
import dev.ember.engine.RequestEvent;
import dev.ember.engine.RequestHandle;
import dev.ember.engine.RequestOutcome;
import dev.ember.engine.RequestOutput;
import dev.ember.engine.ServingEngine;
import dev.ember.sampling.SamplingParams;
import dev.ember.tokenizer.ChatMessage;
import dev.ember.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * {@code POST /v1/completions} and {@code POST /v1/chat/completions}: the request's fields turned into a prompt
 * and {@link SamplingParams}, submitted to the engine, and its output written back whole or as server-sent
 * events ({@code data: {chunk}} lines ending with {@code data: [DONE]}). A streaming client that goes away is
 * noticed at the next write, and its request is cancelled.
 */
final class CompletionEndpoint {
    enum Kind { TEXT, CHAT }

    /** A request read and checked, ready for the engine. */
    record Parsed(int[] prompt, SamplingParams params, boolean stream, boolean includeUsage) {
    }

    /** Request fields with no effect in Ember, accepted at their neutral value and refused otherwise. */
    private static final List<String> NEUTRAL_ZERO = List.of("presence_penalty", "frequency_penalty");

    private final ServingEngine engine;
    private final Tokenizer tokenizer;
    private final String modelName;
    private final ObjectMapper json;

    CompletionEndpoint(ServingEngine engine, String modelName, ObjectMapper json) {
        this.engine = engine;
        this.tokenizer = engine.tokenizer();
        this.modelName = modelName;
        this.json = json;
    }

    void handle(HttpExchange exchange, JsonNode body, Kind kind) throws IOException {
        Parsed request = parse(new RequestFields(body), kind);
        RequestHandle handle;
        try {
            handle = engine.submit(request.prompt(), request.params(), request.stream());
        } catch (ServingEngine.ShutDownException e) {
            throw new ApiException(503, "service_unavailable", null, null, e.getMessage());
        } catch (EmberException e) {
            throw ApiException.invalid("prompt", e.getMessage());
        }
        String id = (kind == Kind.CHAT ? "chatcmpl-" : "cmpl-") + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
        long created = System.currentTimeMillis() / 1000;
        try {
            if (request.stream()) {
                stream(exchange, handle, kind, id, created, request.includeUsage());
            } else {
                respond(exchange, handle, kind, id, created);
            }
        } catch (InterruptedException e) {
            handle.cancel();
            Thread.currentThread().interrupt();
        } catch (IOException | RuntimeException e) {
            // The client went away (or writing failed): stop generating for it.
            handle.cancel();
            throw e;
        }
    }

    Parsed parse(RequestFields fields, Kind kind) {
        String model = fields.string("model", modelName);
        if (!model.equals(modelName)) {
            throw new ApiException(400, "invalid_request_error", "model", "model_not_found",
                    "the model \"" + model + "\" does not exist; this server serves \"" + modelName + "\"");
        }
        refuseUnsupported(fields, kind);
        int[] prompt = kind == Kind.CHAT ? chatPrompt(fields) : textPrompt(fields);
        try {
            engine.validate(prompt);
        } catch (EmberException e) {
            throw ApiException.invalid(kind == Kind.CHAT ? "messages" : "prompt", e.getMessage());
        }
        int context = engine.contextLength();
        int room = context - prompt.length;
        String maxName = kind == Kind.CHAT && fields.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        long maxTokens = fields.integer(maxName, room, Long.MIN_VALUE, Long.MAX_VALUE);
        if (maxTokens < 1) {
            throw ApiException.invalid(maxName, maxName + " = " + maxTokens + " must be at least 1");
        }
        if (maxTokens > room) {
            throw ApiException.invalid(maxName, maxName + " = " + maxTokens + " is too large: the context holds " + context
                    + " tokens and the prompt takes " + prompt.length + ", so at most " + room + " can be generated");
        }
        boolean stream = fields.bool("stream", false);
        boolean includeUsage = false;
        if (fields.has("stream_options")) {
            if (!stream) {
                throw ApiException.invalid("stream_options", "stream_options is only allowed with \"stream\": true");
            }
            JsonNode options = fields.node("stream_options");
            if (!options.isObject()) {
                throw RequestFields.wrongType("stream_options", "an object", options);
            }
            includeUsage = new RequestFields(options).bool("include_usage", false);
        }
        int topK = (int) fields.integer("top_k", 0, -1, Integer.MAX_VALUE);
        SamplingParams params;
        try {
            params = new SamplingParams((float) fields.number("temperature", 1.0), Math.max(0, topK),
                    (float) fields.number("top_p", 1.0), (float) fields.number("min_p", 0.0),
                    (float) fields.number("repetition_penalty", 1.0),
                    fields.integer("seed", ThreadLocalRandom.current().nextLong(), Long.MIN_VALUE, Long.MAX_VALUE),
                    (int) maxTokens, fields.strings("stop"), fields.bool("ignore_eos", false));
        } catch (EmberException e) {
            throw ApiException.invalid(null, e.getMessage());
        }
        return new Parsed(prompt, params, stream, includeUsage);
    }

    private static void refuseUnsupported(RequestFields fields, Kind kind) {
        if (fields.integer("n", 1, Long.MIN_VALUE, Long.MAX_VALUE) != 1) {
            throw ApiException.invalid("n", "n must be 1: Ember returns one choice per request");
        }
        if (fields.integer("best_of", 1, Long.MIN_VALUE, Long.MAX_VALUE) != 1) {
            throw ApiException.invalid("best_of", "best_of must be 1: Ember returns one choice per request");
        }
        for (String name : NEUTRAL_ZERO) {
            if (fields.number(name, 0) != 0) {
                throw ApiException.invalid(name, name + " is not supported (use repetition_penalty)");
            }
        }
        if (fields.bool("echo", false)) {
            throw ApiException.invalid("echo", "echo is not supported");
        }
        boolean logprobs = kind == Kind.CHAT ? fields.bool("logprobs", false)
                : fields.integer("logprobs", 0, Long.MIN_VALUE, Long.MAX_VALUE) != 0;
        if (logprobs || fields.has("top_logprobs")) {
            throw ApiException.invalid("logprobs", "logprobs are not supported");
        }
        JsonNode tools = fields.node("tools");
        if (tools != null && !tools.isNull() && !tools.isEmpty()) {
            throw ApiException.invalid("tools", "tools are not supported");
        }
    }

    /** A string, an array of one string, or token ids (an array of integers, or an array of one such array). */
    private int[] textPrompt(RequestFields fields) {
        if (!fields.has("prompt")) {
            throw ApiException.invalid("prompt", "prompt is required");
        }
        JsonNode prompt = fields.node("prompt");
        if (prompt.isArray() && prompt.size() == 1 && (prompt.get(0).isTextual() || prompt.get(0).isArray())) {
            prompt = prompt.get(0);
        }
        if (prompt.isTextual()) {
            return encode(prompt.asText(), true, "prompt");
        }
        if (prompt.isArray() && !prompt.isEmpty()) {
            int[] ids = new int[prompt.size()];
            for (int i = 0; i < ids.length; i++) {
                JsonNode id = prompt.get(i);
                if (id.isTextual() || id.isArray()) {
                    throw ApiException.invalid("prompt", "a request takes one prompt; send one request per prompt");
                }
                if (!id.isIntegralNumber() || !id.canConvertToInt()) {
                    throw RequestFields.wrongType("prompt", "a string or an array of token ids", prompt);
                }
                ids[i] = id.asInt();
            }
            return ids;
        }
        throw RequestFields.wrongType("prompt", "a string or an array of token ids", prompt);
    }

    private int[] chatPrompt(RequestFields fields) {
        JsonNode messages = fields.node("messages");
        if (messages == null || messages.isNull()) {
            throw ApiException.invalid("messages", "messages is required");
        }
        if (!messages.isArray() || messages.isEmpty()) {
            throw RequestFields.wrongType("messages", "a non-empty array of messages", messages);
        }
        List<ChatMessage> turns = new ArrayList<>();
        for (JsonNode message : messages) {
            RequestFields m = new RequestFields(message);
            String role = m.string("role", null);
            if (role == null) {
                throw ApiException.invalid("messages", "every message needs a \"role\"");
            }
            turns.add(new ChatMessage(role, content(m)));
        }
        String rendered;
        try {
            rendered = tokenizer.applyChatTemplate(turns, true);
        } catch (EmberException e) {
            throw ApiException.invalid("messages", e.getMessage());
        }
        // A template writes its own special tokens; the plain fallback does not, so the tokenizer adds them.
        return encode(rendered, !tokenizer.hasChatTemplate(), "messages");
    }

    /** A message's content: a string, null (an assistant turn without text), or an array of text parts. */
    private static String content(RequestFields message) {
        if (!message.has("content")) {
            return "";
        }
        JsonNode content = message.node("content");
        if (content.isTextual()) {
            return content.asText();
        }
        if (content.isArray()) {
            StringBuilder text = new StringBuilder();
            for (JsonNode part : content) {
                RequestFields p = new RequestFields(part);
                if (!"text".equals(p.string("type", null))) {
                    throw ApiException.invalid("messages", "only content parts of type \"text\" are supported");
                }
                text.append(p.string("text", ""));
            }
            return text.toString();
        }
        throw RequestFields.wrongType("content", "a string or an array of content parts", content);
    }

    private int[] encode(String text, boolean addSpecialTokens, String param) {
        try {
            return tokenizer.encode(text, addSpecialTokens);
        } catch (EmberException e) {
            throw ApiException.invalid(param, e.getMessage());
        }
    }

    private void respond(HttpExchange exchange, RequestHandle handle, Kind kind, String id, long created)
            throws IOException, InterruptedException {
        RequestOutcome outcome = handle.await();
        if (outcome instanceof RequestError(String message)) {
            throw engineError(message);
        }
        RequestOutput out = (RequestOutput) outcome;
        ObjectNode body = envelope(kind == Kind.CHAT ? "chat.completion" : "text_completion", id, created);
        ObjectNode choice = body.putArray("choices").addObject();
        choice.put("index", 0);
        if (kind == Kind.CHAT) {
            ObjectNode message = choice.putObject("message");
            message.put("role", "assistant");
            message.put("content", out.text());
        } else {
            choice.put("text", out.text());
        }
        choice.putNull("logprobs");
        choice.put("finish_reason", out.finishReason().apiName());
        body.set("usage", usage(out));
        OpenAiServer.sendJson(exchange, 200, json.writeValueAsBytes(body));
    }

    private void stream(HttpExchange exchange, RequestHandle handle, Kind kind, String id, long created, boolean includeUsage)
            throws IOException, InterruptedException {
        exchange.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
        exchange.getResponseHeaders().set("Cache-Control", "no-cache");
        exchange.sendResponseHeaders(200, 0);
        OutputStream out = exchange.getResponseBody();
        int sentChars = 0;
        if (kind == Kind.CHAT) {
            ObjectNode first = chunk(kind, id, created, includeUsage);
            first.withArray("choices").addObject().put("index", 0).putNull("logprobs").putNull("finish_reason")
                    .putObject("delta").put("role", "assistant").put("content", "");
            send(out, first);
        }
        while (true) {
            switch (handle.nextEvent()) {
                case RequestEvent.Token(int token, String text) -> {
                    if (!text.isEmpty()) {
                        send(out, textChunk(kind, id, created, includeUsage, text, null));
                        sentChars += text.length();
                    }
                }
                case RequestEvent.Done(RequestOutput output) -> {
                    // Text held back until the end (an unfinished character, a partial stop string) comes last.
                    send(out, textChunk(kind, id, created, includeUsage, output.text().substring(sentChars),
                            output.finishReason().apiName()));
                    if (includeUsage) {
                        ObjectNode usage = envelope(kind == Kind.CHAT ? "chat.completion.chunk" : "text_completion", id, created);
                        usage.putArray("choices");
                        usage.set("usage", usage(output));
                        send(out, usage);
                    }
                    done(out);
                    return;
                }
                case RequestEvent.Done(RequestError(String message)) -> {
                    ApiException error = engineError(message);
                    send(out, OpenAiServer.errorBody(json, error));
                    done(out);
                    return;
                }
            }
        }
    }

    private ApiException engineError(String message) {
        return engine.isAdmitting() ? new ApiException(500, "internal_error", null, null, message)
                : new ApiException(503, "service_unavailable", null, null, message);
    }

    private ObjectNode textChunk(Kind kind, String id, long created, boolean includeUsage, String text, String finishReason) {
        ObjectNode chunk = chunk(kind, id, created, includeUsage);
        ObjectNode choice = chunk.withArray("choices").addObject();
        choice.put("index", 0);
        if (kind == Kind.CHAT) {
            ObjectNode delta = choice.putObject("delta");
            if (!text.isEmpty() || finishReason == null) {
                delta.put("content", text);
            }
        } else {
            choice.put("text", text);
        }
        choice.putNull("logprobs");
        choice.put("finish_reason", finishReason);
        return chunk;
    }

    private ObjectNode chunk(Kind kind, String id, long created, boolean includeUsage) {
        ObjectNode chunk = envelope(kind == Kind.CHAT ? "chat.completion.chunk" : "text_completion", id, created);
        chunk.putArray("choices");
        if (includeUsage) {
            chunk.putNull("usage");
        }
        return chunk;
    }

    private ObjectNode envelope(String object, String id, long created) {
        ObjectNode body = json.createObjectNode();
        body.put("id", id);
        body.put("object", object);
        body.put("created", created);
        body.put("model", modelName);
        return body;
    }

    private ObjectNode usage(RequestOutput out) {
        ObjectNode usage = json.createObjectNode();
        usage.put("prompt_tokens", out.promptTokenCount());
        usage.put("completion_tokens", out.generatedTokenCount());
        usage.put("total_tokens", out.promptTokenCount() + out.generatedTokenCount());
        usage.putObject("prompt_tokens_details").put("cached_tokens", out.cachedPromptTokens());
        return usage;
    }

    private void send(OutputStream out, ObjectNode event) throws IOException {
        out.write(DATA);
        out.write(json.writeValueAsBytes(event));
        out.write(END_OF_EVENT);
        out.flush();
    }

    private static void done(OutputStream out) throws IOException {
        out.write("data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII));
        out.close();
    }

    private static final byte[] DATA = "data: ".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] END_OF_EVENT = "\n\n".getBytes(StandardCharsets.US_ASCII);
}
