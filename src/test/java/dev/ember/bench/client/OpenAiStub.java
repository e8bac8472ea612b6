package dev.ember.bench.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An OpenAI-compatible server with fixed timings, for testing the client: it streams {@code max_tokens} tokens
 * as SSE, the first {@code firstTokenMillis} after the request and each next one {@code gapMillis} later, then a
 * usage chunk (prompt tokens = the prompt's token ids, or its words) and {@code [DONE]}. It records the bodies
 * it received and the most requests it ever had in flight. Under {@code /nousage} it leaves the usage out.
 */
final class OpenAiStub implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final HttpServer server;
    private final int firstTokenMillis;
    private final int gapMillis;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger peakInFlight = new AtomicInteger();
    final ConcurrentLinkedQueue<JsonNode> bodies = new ConcurrentLinkedQueue<>();

    OpenAiStub(int firstTokenMillis, int gapMillis) throws IOException {
        this.firstTokenMillis = firstTokenMillis;
        this.gapMillis = gapMillis;
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/v1/models", e -> respond(e, 200, "{\"object\":\"list\",\"data\":[{\"id\":\"stub-model\",\"object\":\"model\",\"max_model_len\":64}]}"));
        server.createContext("/v1/completions", e -> stream(e, false, true));
        server.createContext("/v1/chat/completions", e -> stream(e, true, true));
        server.createContext("/nousage/v1/completions", e -> stream(e, false, false));
        server.createContext("/fail/v1/completions", e -> respond(e, 400,
                "{\"error\":{\"message\":\"max_tokens is too large\",\"type\":\"invalid_request_error\"}}"));
        server.start();
    }

    String baseUrl() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    int peakInFlight() {
        return peakInFlight.get();
    }

    private void stream(HttpExchange e, boolean chat, boolean usage) throws IOException {
        int now = inFlight.incrementAndGet();
        peakInFlight.accumulateAndGet(now, Math::max);
        boolean counted = true;
        try (e) {
            JsonNode body = JSON.readTree(e.getRequestBody());
            bodies.add(body);
            int maxTokens = body.path("max_tokens").asInt();
            JsonNode prompt = chat ? body.path("messages").path(0).path("content") : body.path("prompt");
            int promptTokens = prompt.isArray() ? prompt.size() : prompt.asText().split("\\s+").length;
            e.getResponseHeaders().set("Content-Type", "text/event-stream");
            e.sendResponseHeaders(200, 0);
            OutputStream out = e.getResponseBody();
            sleep(firstTokenMillis);
            for (int i = 0; i < maxTokens; i++) {
                if (i > 0) {
                    sleep(gapMillis);
                }
                String text = "t" + i + " ";
                String finish = i == maxTokens - 1 ? "\"length\"" : "null";
                String choice = chat ? "{\"index\":0,\"delta\":{\"content\":\"" + text + "\"},\"finish_reason\":" + finish + "}"
                        : "{\"index\":0,\"text\":\"" + text + "\",\"finish_reason\":" + finish + "}";
                send(out, "{\"id\":\"x\",\"choices\":[" + choice + "]}");
            }
            if (usage) {
                send(out, "{\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":" + promptTokens + ",\"completion_tokens\":"
                        + maxTokens + ",\"total_tokens\":" + (promptTokens + maxTokens) + "}}");
            }
            // The request leaves the count before its last event goes out: the client may start its next request the
            // moment it reads [DONE], before this handler has returned.
            inFlight.decrementAndGet();
            counted = false;
            out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            out.flush();
        } finally {
            if (counted) {
                inFlight.decrementAndGet();
            }
        }
    }

    private static void send(OutputStream out, String json) throws IOException {
        out.write(("data: " + json + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static void respond(HttpExchange e, int status, String json) throws IOException {
        try (e) {
            byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
            e.getResponseHeaders().set("Content-Type", "application/json");
            e.sendResponseHeaders(status, bytes.length);
            e.getResponseBody().write(bytes);
        }
    }

    private static void sleep(int millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
        }
    }

    List<JsonNode> receivedBodies() {
        return List.copyOf(bodies);
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
