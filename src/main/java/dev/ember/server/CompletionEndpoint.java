package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
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
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.BooleanSupplier;

/**
 * {@code POST /v1/completions} and {@code POST /v1/chat/completions}: the request's fields turned into a prompt
 * and {@link SamplingParams}, submitted to the engine, and its output written back whole or as server-sent
 * events ({@code data: {chunk}} lines ending with {@code data: [DONE]}). A streaming client that goes away is
 * noticed at the next write, and its request is cancelled.
 *
 * <p>Every field of a request is either honoured or refused with a 400 that names it: a client never gets something
 * other than it asked for.
 */
final class CompletionEndpoint {
    enum Kind { TEXT, CHAT }

    /** A request read and checked, ready for the engine. */
    record Parsed(int[] prompt, SamplingParams params, boolean stream, boolean includeUsage) {
    }

    /** Request fields with no effect in Ember, accepted at their neutral value and refused otherwise. */
    private static final List<String> NEUTRAL_ZERO = List.of("presence_penalty", "frequency_penalty");
    /** The fields both endpoints honour (or accept at a neutral value); any other is refused by name. */
    private static final Set<String> COMMON_FIELDS = Set.of("model", "max_tokens", "temperature", "top_p", "top_k", "min_p",
            "repetition_penalty", "seed", "stop", "ignore_eos", "stream", "stream_options", "n", "presence_penalty",
            "frequency_penalty", "logprobs", "user");
    private static final Set<String> TEXT_FIELDS = Set.of("prompt", "best_of", "echo");
    private static final Set<String> CHAT_FIELDS = Set.of("messages", "max_completion_tokens", "top_logprobs", "tools",
            "tool_choice");
    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant");

    private final ServingEngine engine;
    private final Tokenizer tokenizer;
    private final PromptEncoder encoder;
    private final String modelName;
    private final ObjectMapper json;
    private final BooleanSupplier aborting;

    /** @param aborting whether the server's drain has timed out, so that requests cut off now end as aborted */
    CompletionEndpoint(ServingEngine engine, String modelName, ObjectMapper json, BooleanSupplier aborting) {
        this.engine = engine;
        this.tokenizer = engine.tokenizer();
        this.encoder = new PromptEncoder(engine.tokenizer(), engine.contextLength());
        this.modelName = modelName;
        this.json = json;
        this.aborting = aborting;
    }

    void handle(Exchange exchange, JsonNode body, Kind kind) throws IOException, InterruptedException {
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
            throw e;
        } catch (IOException | RuntimeException e) {
            // The client went away (or writing failed): stop generating for it.
            handle.cancel();
            throw e;
        }
    }

    Parsed parse(RequestFields fields, Kind kind) throws InterruptedException {
        refuseUnknown(fields, kind);
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

    /** Any field outside those honoured is refused by name; a few with the reason. */
    private static void refuseUnknown(RequestFields fields, Kind kind) {
        for (Iterator<String> names = fields.names(); names.hasNext(); ) {
            String name = names.next();
            if (COMMON_FIELDS.contains(name) || (kind == Kind.CHAT ? CHAT_FIELDS : TEXT_FIELDS).contains(name)) {
                continue;
            }
            if (!fields.has(name)) {
                continue;  // an explicit null is the same as leaving the field out
            }
            String reason = switch (name) {
                case "response_format" -> structuredOutput(fields);
                case "suffix" -> "suffix (insertion) is not supported";
                case "functions", "function_call", "parallel_tool_calls" -> name + ": tool and function calling is not supported";
                case "guided_json", "guided_regex", "guided_choice", "guided_grammar", "structured_outputs" ->
                        name + ": structured output is not supported yet (docs/roadmap.md says how it will be built)";
                default -> name + " is not supported by this server";
            };
            if (reason != null) {
                throw ApiException.invalid(name, reason);
            }
        }
    }

    /** {@code response_format}: plain text is what Ember writes; JSON modes are refused. Null when accepted. */
    private static String structuredOutput(RequestFields fields) {
        JsonNode format = fields.node("response_format");
        if (format.isObject() && "text".equals(format.path("type").asText())) {
            return null;
        }
        return "response_format " + format.path("type").asText(format.toString())
                + " is not supported: structured output (JSON mode, JSON schema) is not built yet (docs/roadmap.md says how it will be)";
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
        if (fields.has("tool_choice") && !"none".equals(fields.node("tool_choice").asText())) {
            throw ApiException.invalid("tool_choice", "tool_choice " + fields.node("tool_choice")
                    + " is not supported: tool calling is not built; only \"none\" is accepted");
        }
    }

    /** A string, an array of one string, or token ids (an array of integers, or an array of one such array). */
    private int[] textPrompt(RequestFields fields) throws InterruptedException {
        if (!fields.has("prompt")) {
            throw ApiException.invalid("prompt", "prompt is required");
        }
        JsonNode prompt = fields.node("prompt");
        if (prompt.isArray() && prompt.size() == 1 && (prompt.get(0).isTextual() || prompt.get(0).isArray())) {
            prompt = prompt.get(0);
        }
        if (prompt.isTextual()) {
            return encoder.encode(prompt.asText(), true, "prompt");
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

    private int[] chatPrompt(RequestFields fields) throws InterruptedException {
        List<ChatMessage> turns = messages(fields);
        long chars = 0;
        for (ChatMessage turn : turns) {
            chars += turn.content().length();
        }
        encoder.checkLength(chars, "messages");
        // A template writes its own special tokens; the plain fallback does not, so the tokenizer adds them.
        return encoder.run(() -> tokenizer.encode(tokenizer.applyChatTemplate(turns, true), !tokenizer.hasChatTemplate()),
                "messages");
    }

    /** The chat messages, each with a known role and text content; a bad one is a 400 naming it ({@code messages[2].content}). */
    private static List<ChatMessage> messages(RequestFields fields) {
        JsonNode messages = fields.node("messages");
        if (messages == null || messages.isNull()) {
            throw ApiException.invalid("messages", "messages is required");
        }
        if (!messages.isArray() || messages.isEmpty()) {
            throw RequestFields.wrongType("messages", "a non-empty array of messages", messages);
        }
        List<ChatMessage> turns = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            String at = "messages[" + i + "]";
            JsonNode message = messages.get(i);
            if (!message.isObject()) {
                throw RequestFields.wrongType(at, "an object with \"role\" and \"content\"", message);
            }
            RequestFields m = new RequestFields(message);
            if (!m.has("role")) {
                throw ApiException.invalid(at + ".role", at + " has no \"role\"");
            }
            String role = m.string("role", null);
            if (!ROLES.contains(role)) {
                throw ApiException.invalid(at + ".role", at + ".role \"" + role + "\" is not one of " + String.join(", ", ROLES.stream().sorted().toList())
                        + (role.equals("tool") || role.equals("function") ? " (tool calling is not supported)" : ""));
            }
            for (Iterator<String> names = m.names(); names.hasNext(); ) {
                String name = names.next();
                if (!name.equals("role") && !name.equals("content") && !name.equals("name") && m.has(name)) {
                    throw ApiException.invalid(at + "." + name, at + "." + name + " is not supported"
                            + (name.equals("tool_calls") ? " (tool calling is not built)" : ""));
                }
            }
            turns.add(new ChatMessage(role, content(m, at + ".content")));
        }
        return turns;
    }

    /** A message's content: a string, or an array of text parts. */
    private static String content(RequestFields message, String param) {
        if (!message.has("content")) {
            throw ApiException.invalid(param, param + " is missing (or null): every message needs its text");
        }
        JsonNode content = message.node("content");
        if (content.isTextual()) {
            return content.asText();
        }
        if (content.isArray()) {
            StringBuilder text = new StringBuilder();
            for (JsonNode part : content) {
                if (!part.isObject() || !"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
                    throw ApiException.invalid(param, param + ": only content parts {\"type\": \"text\", \"text\": \"...\"} are supported, got "
                            + RequestFields.describe(part));
                }
                text.append(part.get("text").asText());
            }
            return text.toString();
        }
        throw RequestFields.wrongType(param, "a string or an array of content parts", content);
    }

    private void respond(Exchange exchange, RequestHandle handle, Kind kind, String id, long created)
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
        exchange.sendJson(200, json.writeValueAsBytes(body));
    }

    private void stream(Exchange exchange, RequestHandle handle, Kind kind, String id, long created, boolean includeUsage)
            throws IOException, InterruptedException {
        exchange.startEventStream();
        int sentChars = 0;
        if (kind == Kind.CHAT) {
            ObjectNode first = chunk(kind, id, created, includeUsage);
            first.withArray("choices").addObject().put("index", 0).putNull("logprobs").putNull("finish_reason")
                    .putObject("delta").put("role", "assistant").put("content", "");
            send(exchange, first);
        }
        while (true) {
            switch (handle.nextEvent()) {
                case RequestEvent.Token(int token, String text) -> {
                    if (!text.isEmpty()) {
                        send(exchange, textChunk(kind, id, created, includeUsage, text, null));
                        sentChars += text.length();
                    }
                }
                case RequestEvent.Done(RequestOutput output) -> {
                    // Text held back until the end (an unfinished character, a partial stop string) comes last.
                    send(exchange, textChunk(kind, id, created, includeUsage, output.text().substring(sentChars),
                            output.finishReason().apiName()));
                    if (includeUsage) {
                        ObjectNode usage = envelope(kind == Kind.CHAT ? "chat.completion.chunk" : "text_completion", id, created);
                        usage.putArray("choices");
                        usage.set("usage", usage(output));
                        send(exchange, usage);
                    }
                    exchange.endEventStream();
                    return;
                }
                case RequestEvent.Done(RequestError(String message)) -> {
                    if (aborting.getAsBoolean()) {
                        // The drain timed out: the stream ends as a stream does, its finish reason saying why.
                        send(exchange, textChunk(kind, id, created, includeUsage, "", "abort"));
                    } else {
                        send(exchange, OpenAiServer.errorBody(json, engineError(message)));
                    }
                    exchange.endEventStream();
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

    private void send(Exchange exchange, ObjectNode event) throws IOException {
        exchange.sendEvent(json.writeValueAsBytes(event));
    }
}
