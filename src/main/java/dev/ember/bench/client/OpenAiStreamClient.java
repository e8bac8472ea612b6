package dev.ember.bench.client;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Sends one streamed request to an OpenAI-compatible server and times it: {@code /v1/completions} or
 * {@code /v1/chat/completions} with {@code stream: true} and {@code stream_options.include_usage}, read as
 * server-sent events on the calling thread (a virtual thread per request). A chunk counts as a token event when
 * it carries generated text; the token counts are the final {@code usage}, never a re-tokenised text.
 */
public final class OpenAiStreamClient implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int ERROR_BODY_BYTES = 4096;
    private static final int ERROR_CHARS = 300;

    private final HttpClient http;
    private final ExecutorService executor;
    private final URI uri;
    private final boolean chat;
    private final String model;
    private final String apiKey;
    private final boolean ignoreEos;
    private final double temperature;
    private final Duration timeout;

    /**
     * @param endpoint a path under {@code baseUrl}; one ending in {@code /chat/completions} takes chat messages
     * @param apiKey   sent as a bearer token; null for none
     */
    public OpenAiStreamClient(URI baseUrl, String endpoint, String model, String apiKey, boolean ignoreEos, double temperature,
                              Duration timeout) {
        this.executor = Executors.newVirtualThreadPerTaskExecutor();
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(30))
                .executor(executor).build();
        String base = baseUrl.toString().replaceAll("/+$", "");
        this.uri = URI.create(base + (endpoint.startsWith("/") ? endpoint : "/" + endpoint));
        this.chat = endpoint.replaceAll("/+$", "").endsWith("/chat/completions");
        this.model = model;
        this.apiKey = apiKey;
        this.ignoreEos = ignoreEos;
        this.temperature = temperature;
        this.timeout = timeout;
    }

    public boolean isChat() {
        return chat;
    }

    public URI uri() {
        return uri;
    }

    /** The request body: the prompt, max_tokens, streaming with usage, greedy unless told otherwise. */
    String body(ClientRequest request) {
        ObjectNode body = JSON.createObjectNode();
        body.put("model", model);
        switch (request.prompt()) {
            case ClientRequest.Text(String text) when chat -> {
                ArrayNode messages = body.putArray("messages");
                messages.addObject().put("role", "user").put("content", text);
            }
            case ClientRequest.Text(String text) -> body.put("prompt", text);
            case ClientRequest.TokenIds(int[] ids) when chat ->
                    throw new IllegalArgumentException("chat completions take text; token ids need --tokenizer");
            case ClientRequest.TokenIds(int[] ids) -> {
                ArrayNode prompt = body.putArray("prompt");
                Arrays.stream(ids).forEach(prompt::add);
            }
        }
        body.put("max_tokens", request.maxTokens());
        body.put("temperature", temperature);
        body.put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        if (ignoreEos) {
            body.put("ignore_eos", true);
        }
        return body.toString();
    }

    /** Sends {@code request} now and reads its stream to the end; never throws for what the server or network does. */
    public RequestOutcome send(ClientRequest request, long scheduledNanos) {
        HttpRequest.Builder builder = HttpRequest.newBuilder(uri).timeout(timeout)
                .header("Content-Type", "application/json").header("Accept", "text/event-stream")
                .POST(HttpRequest.BodyPublishers.ofString(body(request)));
        if (apiKey != null) {
            builder.header("Authorization", "Bearer " + apiKey);
        }
        long sent = System.nanoTime();
        try {
            HttpResponse<InputStream> response = http.send(builder.build(), HttpResponse.BodyHandlers.ofInputStream());
            try (InputStream in = response.body()) {
                if (response.statusCode() != 200) {
                    String text = new String(in.readNBytes(ERROR_BODY_BYTES), StandardCharsets.UTF_8).strip();
                    return RequestOutcome.failed(scheduledNanos, sent, "HTTP " + response.statusCode() + ": " + errorMessage(text));
                }
                return readStream(in, scheduledNanos, sent);
            }
        } catch (IOException e) {
            return RequestOutcome.failed(scheduledNanos, sent, e.getClass().getSimpleName()
                    + (e.getMessage() != null ? ": " + e.getMessage() : ""));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return RequestOutcome.failed(scheduledNanos, sent, "interrupted");
        }
    }

    private RequestOutcome readStream(InputStream in, long scheduled, long sent) throws IOException {
        BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
        long[] events = new long[64];
        int count = 0;
        int promptTokens = -1;
        int outputTokens = -1;
        boolean done = false;
        String line;
        while ((line = reader.readLine()) != null) {
            if (!line.startsWith("data:")) {
                continue;  // blank separators, comments, event names
            }
            long now = System.nanoTime();
            String data = line.substring(5).strip();
            if (data.equals("[DONE]")) {
                done = true;
                break;
            }
            JsonNode chunk;
            try {
                chunk = JSON.readTree(data);
            } catch (JsonProcessingException e) {
                return RequestOutcome.failed(scheduled, sent, "a stream event that is not JSON: " + abbreviate(data));
            }
            if (chunk.has("error")) {
                return RequestOutcome.failed(scheduled, sent, "error in stream: " + errorMessage(data));
            }
            JsonNode choices = chunk.path("choices");
            if (choices.isArray() && !choices.isEmpty() && !generatedText(choices.get(0)).isEmpty()) {
                if (count == events.length) {
                    events = Arrays.copyOf(events, 2 * count);
                }
                events[count++] = now;
            }
            JsonNode usage = chunk.path("usage");
            if (usage.isObject()) {
                promptTokens = usage.path("prompt_tokens").asInt(-1);
                outputTokens = usage.path("completion_tokens").asInt(-1);
            }
        }
        long end = System.nanoTime();
        if (!done) {
            return RequestOutcome.failed(scheduled, sent, "the stream ended without data: [DONE]");
        }
        if (promptTokens < 0 || outputTokens < 0) {
            return RequestOutcome.failed(scheduled, sent, "the stream carried no usage with prompt_tokens and completion_tokens");
        }
        if (count == 0) {
            return RequestOutcome.failed(scheduled, sent, "the stream carried no generated text");
        }
        return new RequestOutcome(scheduled, sent, Arrays.copyOf(events, count), end, promptTokens, outputTokens, null);
    }

    private String generatedText(JsonNode choice) {
        if (!chat) {
            return choice.path("text").asText("");
        }
        JsonNode delta = choice.path("delta");
        String content = delta.path("content").asText("");
        return content.isEmpty() ? delta.path("reasoning_content").asText("") : content;
    }

    /** The message of an OpenAI-style error body, or the body itself. */
    private static String errorMessage(String body) {
        try {
            JsonNode message = JSON.readTree(body).path("error").path("message");
            if (message.isTextual()) {
                return message.asText();
            }
        } catch (JsonProcessingException e) {
            // not JSON: quote it as it is
        }
        return abbreviate(body);
    }

    private static String abbreviate(String s) {
        return s.length() <= ERROR_CHARS ? s : s.substring(0, ERROR_CHARS) + "...";
    }

    @Override
    public void close() {
        http.close();
        executor.close();
    }
}
