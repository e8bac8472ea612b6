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
 * server-sent events on the calling thread (a virtual thread per request). A chunk counts as a token event of its
 * choice when it carries generated text; the token counts are the final {@code usage}, never a re-tokenised text.
 * With {@code n} > 1 every choice must stream; with logprobs asked for, every token of every choice must carry them.
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
    private final RequestSettings settings;
    private final Duration timeout;

    /**
     * @param endpoint a path under {@code baseUrl}; one ending in {@code /chat/completions} takes chat messages
     * @param apiKey   sent as a bearer token; null for none
     */
    public OpenAiStreamClient(URI baseUrl, String endpoint, String model, String apiKey, RequestSettings settings,
                              Duration timeout) {
        this.executor = Executors.newVirtualThreadPerTaskExecutor();
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(30))
                .executor(executor).build();
        String base = baseUrl.toString().replaceAll("/+$", "");
        this.uri = URI.create(base + (endpoint.startsWith("/") ? endpoint : "/" + endpoint));
        this.chat = endpoint.replaceAll("/+$", "").endsWith("/chat/completions");
        this.model = model;
        this.apiKey = apiKey;
        this.settings = settings;
        this.timeout = timeout;
    }

    public boolean isChat() {
        return chat;
    }

    public URI uri() {
        return uri;
    }

    /**
     * The request body: the prompt, max_tokens, streaming with usage, greedy unless told otherwise; {@code n} and
     * logprobs where asked for, in the endpoint's form (chat: {@code logprobs: true} with {@code top_logprobs}).
     */
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
        body.put("temperature", settings.temperature());
        if (settings.n() > 1) {
            body.put("n", settings.n());
        }
        if (settings.wantsLogprobs() && chat) {
            body.put("logprobs", true);
            body.put("top_logprobs", settings.logprobs());
        } else if (settings.wantsLogprobs()) {
            body.put("logprobs", settings.logprobs());
        }
        body.put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        if (settings.ignoreEos()) {
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
        ChoiceStreams choices = new ChoiceStreams(settings.n());
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
            for (JsonNode choice : chunk.path("choices")) {
                int index = choice.path("index").asInt(0);
                if (index < 0 || index >= settings.n()) {
                    return RequestOutcome.failed(scheduled, sent, "a choice of index " + index + " in a request of n " + settings.n());
                }
                if (!generatedText(choice).isEmpty()) {
                    choices.textArrived(index, now);
                }
                if (choice.path("finish_reason").isTextual()) {
                    choices.finished(index);
                }
                String badLogprobs = settings.wantsLogprobs() ? choices.countLogprobs(index, choice.path("logprobs")) : null;
                if (badLogprobs != null) {
                    return RequestOutcome.failed(scheduled, sent, badLogprobs);
                }
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
        if (choices.textEvents() == 0) {
            return RequestOutcome.failed(scheduled, sent, "the stream carried no generated text");
        }
        if (choices.finishedChoices() < settings.n()) {
            return RequestOutcome.failed(scheduled, sent, "the stream finished " + choices.finishedChoices() + " of the "
                    + settings.n() + " choices asked for (n)");
        }
        if (settings.wantsLogprobs() && choices.logprobTokens() != outputTokens) {
            return RequestOutcome.failed(scheduled, sent, "the stream carried logprobs for " + choices.logprobTokens()
                    + " tokens of the " + outputTokens + " its usage counts");
        }
        return new RequestOutcome(scheduled, sent, choices.tokenEvents(), end, promptTokens, outputTokens, null);
    }

    /** What the chunks of one stream carried, choice by choice. */
    private final class ChoiceStreams {
        private final long[][] events;
        private final int[] eventCounts;
        private final boolean[] finished;
        private int logprobTokens;

        ChoiceStreams(int n) {
            events = new long[n][64];
            eventCounts = new int[n];
            finished = new boolean[n];
        }

        void finished(int choice) {
            finished[choice] = true;
        }

        void textArrived(int choice, long nanos) {
            if (eventCounts[choice] == events[choice].length) {
                events[choice] = Arrays.copyOf(events[choice], 2 * eventCounts[choice]);
            }
            events[choice][eventCounts[choice]++] = nanos;
        }

        /**
         * Counts the tokens whose logprobs a chunk's choice carries, each with at most {@code logprobs} + 1 top
         * entries (vLLM adds the drawn token when it is not among them) and at least one where any were asked for;
         * the chunk that only ends a choice may carry none. Returns what is wrong, or null.
         */
        String countLogprobs(int choice, JsonNode logprobs) {
            // chat: {"content": [{token, logprob, top_logprobs: [...]}]}; completions: {"token_logprobs": [...], "top_logprobs": [{...}]}
            JsonNode tokens = chat ? logprobs.path("content") : logprobs.path("token_logprobs");
            if (!tokens.isArray()) {
                return null;
            }
            for (int i = 0; i < tokens.size(); i++) {
                JsonNode top = chat ? tokens.get(i).path("top_logprobs") : logprobs.path("top_logprobs").path(i);
                int entries = top.size();
                if (entries > settings.logprobs() + 1 || (settings.logprobs() > 0 && entries == 0)) {
                    return "a token of choice " + choice + " with " + entries + " top logprobs where " + settings.logprobs()
                            + " were asked for";
                }
            }
            logprobTokens += tokens.size();
            return null;
        }

        int textEvents() {
            return Arrays.stream(eventCounts).sum();
        }

        int finishedChoices() {
            int count = 0;
            for (boolean f : finished) {
                count += f ? 1 : 0;
            }
            return count;
        }

        int logprobTokens() {
            return logprobTokens;
        }

        long[][] tokenEvents() {
            long[][] out = new long[events.length][];
            for (int i = 0; i < out.length; i++) {
                out[i] = Arrays.copyOf(events[i], eventCounts[i]);
            }
            return out;
        }
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
