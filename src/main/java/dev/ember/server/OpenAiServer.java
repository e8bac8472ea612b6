package dev.ember.server;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.ember.EmberException;
import dev.ember.engine.ServingEngine;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * An OpenAI-compatible HTTP server in front of a {@link ServingEngine}, on the JDK's HTTP server with one virtual
 * thread per exchange (a streaming request blocks its thread while it waits for tokens, which costs a virtual
 * thread nothing).
 *
 * <p>Every failure is answered with an OpenAI-style body {@code {"error": {"message", "type", "param", "code"}}}:
 * 400 for a request that is malformed or cannot be served (the message names the field or the limit), 401 without
 * the API key, 404 and 405 for unknown paths and methods, 413 for a body over the size limit, 503 while shutting
 * down. {@link #close()} drains: it stops admitting requests and waits for those in flight to finish.
 */
public final class OpenAiServer implements AutoCloseable {

    /**
     * @param host             the address to listen on
     * @param port             the port; 0 picks a free one (see {@link #port()})
     * @param apiKey           when not null, every request must send {@code Authorization: Bearer <apiKey>}
     * @param servedModelName  the model name clients send and {@code /v1/models} lists
     * @param maxRequestBytes  the largest request body accepted; larger ones get a 413
     * @param drainTimeout     how long {@link #close()} waits for requests in flight
     */
    public record Config(String host, int port, String apiKey, String servedModelName, int maxRequestBytes,
                         Duration drainTimeout) {
        public static final int DEFAULT_MAX_REQUEST_BYTES = 16 << 20;

        public Config {
            if (maxRequestBytes < 1) {
                throw new EmberException("the request size limit must be positive, got " + maxRequestBytes);
            }
            if (apiKey != null && apiKey.isEmpty()) {
                throw new EmberException("the API key is empty");
            }
        }
    }

    /** What a route does with an exchange; throws {@link ApiException} to refuse it. */
    @FunctionalInterface
    private interface Route {
        void handle(HttpExchange exchange) throws IOException;
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_DISCARDED_BODY_BYTES = 64L << 20;
    /** Connections waiting to be accepted: room for a benchmark client's burst of hundreds at once. */
    private static final int CONNECTION_BACKLOG = 1024;

    private final ServingEngine engine;
    private final Config config;
    private final HttpServer http;
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    private final CompletionEndpoint completions;
    private final byte[] expectedAuthorization;
    private final long created = System.currentTimeMillis() / 1000;

    private OpenAiServer(ServingEngine engine, Config config, HttpServer http) {
        this.engine = engine;
        this.config = config;
        this.http = http;
        this.completions = new CompletionEndpoint(engine, config.servedModelName(), JSON);
        this.expectedAuthorization = config.apiKey() == null ? null
                : ("Bearer " + config.apiKey()).getBytes(StandardCharsets.UTF_8);
    }

    /** Binds the address and starts serving; the caller keeps ownership of {@code engine}. */
    public static OpenAiServer start(ServingEngine engine, Config config) {
        HttpServer http;
        try {
            http = HttpServer.create(new InetSocketAddress(config.host(), config.port()), CONNECTION_BACKLOG);
        } catch (BindException e) {
            throw new EmberException("cannot listen on " + config.host() + ":" + config.port() + ": " + e.getMessage(), e);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        OpenAiServer server = new OpenAiServer(engine, config, http);
        server.route("/v1/completions", "POST", ex -> server.completion(ex, CompletionEndpoint.Kind.TEXT));
        server.route("/v1/chat/completions", "POST", ex -> server.completion(ex, CompletionEndpoint.Kind.CHAT));
        server.route("/v1/models", "GET", server::models);
        server.route("/health", "GET", server::health);
        server.route("/metrics", "GET", server::metrics);
        server.route("/", null, ex -> {
            throw new ApiException(404, "not_found_error", null, null, "no such endpoint: " + ex.getRequestURI().getPath());
        });
        http.setExecutor(server.executor);
        http.start();
        return server;
    }

    /** The port the server listens on (the one picked, when the configuration asked for 0). */
    public int port() {
        return http.getAddress().getPort();
    }

    public String baseUrl() {
        return "http://" + http.getAddress().getHostString() + ":" + port();
    }

    /**
     * Graceful shutdown: the engine stops admitting (new requests get a 503), the server waits up to the drain
     * timeout for the requests in flight to be answered, then stops listening. The engine stays the caller's.
     */
    @Override
    public void close() {
        engine.shutdown();
        http.stop((int) Math.max(1, (config.drainTimeout().toMillis() + 999) / 1000));
        executor.shutdownNow();
    }

    private void route(String path, String method, Route route) {
        http.createContext(path, exchange -> {
            try (exchange) {
                try {
                    authorize(exchange);
                    // A context matches every path under its own; only /v1/models/{id} exists below one.
                    String requested = exchange.getRequestURI().getPath();
                    if (!requested.equals(path) && !path.equals("/") && !(path.equals("/v1/models") && requested.startsWith(path + "/"))) {
                        throw new ApiException(404, "not_found_error", null, null, "no such endpoint: " + requested);
                    }
                    if (method != null && !method.equals(exchange.getRequestMethod())) {
                        exchange.getResponseHeaders().set("Allow", method);
                        throw new ApiException(405, "invalid_request_error", null, null,
                                exchange.getRequestMethod() + " is not allowed on " + path + "; use " + method);
                    }
                    route.handle(exchange);
                } catch (ApiException e) {
                    discardBody(exchange);
                    if (exchange.getResponseCode() == -1) {
                        sendJson(exchange, e.status(), JSON.writeValueAsBytes(errorBody(JSON, e)));
                    }
                } catch (IOException e) {
                    // The client went away; nothing can be answered.
                } catch (RuntimeException e) {
                    if (exchange.getResponseCode() == -1) {
                        ApiException error = new ApiException(500, "internal_error", null, null, "internal error: " + e);
                        sendJson(exchange, 500, JSON.writeValueAsBytes(errorBody(JSON, error)));
                    }
                    System.err.println("ember: internal error answering " + exchange.getRequestURI() + ": " + e);
                }
            } catch (IOException e) {
                // Answering the error failed too: the connection is gone.
            }
        });
    }

    private void authorize(HttpExchange exchange) {
        if (expectedAuthorization == null) {
            return;
        }
        String header = exchange.getRequestHeaders().getFirst("Authorization");
        byte[] given = header == null ? new byte[0] : header.getBytes(StandardCharsets.UTF_8);
        if (!MessageDigest.isEqual(expectedAuthorization, given)) {
            exchange.getResponseHeaders().set("WWW-Authenticate", "Bearer");
            throw new ApiException(401, "invalid_request_error", null, "invalid_api_key",
                    header == null ? "missing API key: send the header Authorization: Bearer <key>" : "invalid API key");
        }
    }

    private void completion(HttpExchange exchange, CompletionEndpoint.Kind kind) throws IOException {
        JsonNode body = readJson(exchange);
        completions.handle(exchange, body, kind);
    }

    private JsonNode readJson(HttpExchange exchange) throws IOException {
        String length = exchange.getRequestHeaders().getFirst("Content-Length");
        if (length != null && length.chars().allMatch(Character::isDigit) && length.length() < 19
                && Long.parseLong(length) > config.maxRequestBytes()) {
            throw tooLarge(Long.parseLong(length) + " bytes");
        }
        byte[] bytes = exchange.getRequestBody().readNBytes(config.maxRequestBytes() + 1);
        if (bytes.length > config.maxRequestBytes()) {
            throw tooLarge("more than " + config.maxRequestBytes() + " bytes");
        }
        try {
            JsonNode node = JSON.readTree(bytes);
            if (node == null || node.isMissingNode()) {
                throw ApiException.invalid(null, "the request body is empty; send a JSON object");
            }
            return node;
        } catch (JacksonException e) {
            throw ApiException.invalid(null, "the request body is not valid JSON: " + e.getOriginalMessage());
        }
    }

    private ApiException tooLarge(String size) {
        return new ApiException(413, "invalid_request_error", null, "request_too_large",
                "the request body (" + size + ") is over the limit of " + config.maxRequestBytes() + " bytes");
    }

    /**
     * Reads what is left of a refused request's body (up to a bound), so that the client, still sending, gets the
     * answer rather than a reset connection.
     */
    private static void discardBody(HttpExchange exchange) {
        try (InputStream in = exchange.getRequestBody()) {
            long skipped = 0;
            long n;
            while (skipped < MAX_DISCARDED_BODY_BYTES && (n = in.skip(1 << 16)) > 0) {
                skipped += n;
            }
        } catch (IOException e) {
            // The connection is gone; the answer will not arrive either way.
        }
    }

    private void models(HttpExchange exchange) throws IOException {
        String requested = exchange.getRequestURI().getPath();
        ObjectNode model = JSON.createObjectNode();
        model.put("id", config.servedModelName());
        model.put("object", "model");
        model.put("created", created);
        model.put("owned_by", "ember");
        model.put("max_model_len", engine.contextLength());
        if (requested.startsWith("/v1/models/")) {
            String id = requested.substring("/v1/models/".length());
            if (!id.equals(config.servedModelName())) {
                throw new ApiException(404, "not_found_error", "model", "model_not_found", "the model \"" + id + "\" does not exist");
            }
            sendJson(exchange, 200, JSON.writeValueAsBytes(model));
            return;
        }
        ObjectNode list = JSON.createObjectNode();
        list.put("object", "list");
        list.putArray("data").add(model);
        sendJson(exchange, 200, JSON.writeValueAsBytes(list));
    }

    private void health(HttpExchange exchange) throws IOException {
        boolean ok = engine.isHealthy() && engine.isAdmitting();
        ObjectNode body = JSON.createObjectNode();
        body.put("status", ok ? "ok" : engine.isHealthy() ? "shutting down" : "engine stopped");
        sendJson(exchange, ok ? 200 : 503, JSON.writeValueAsBytes(body));
    }

    private void metrics(HttpExchange exchange) throws IOException {
        byte[] text = PrometheusText.render(engine, config.servedModelName()).getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        exchange.sendResponseHeaders(200, text.length);
        exchange.getResponseBody().write(text);
    }

    static ObjectNode errorBody(ObjectMapper json, ApiException e) {
        ObjectNode body = json.createObjectNode();
        ObjectNode error = body.putObject("error");
        error.put("message", e.getMessage());
        error.put("type", e.type());
        error.put("param", e.param());
        error.put("code", e.code());
        return body;
    }

    static void sendJson(HttpExchange exchange, int status, byte[] body) throws IOException {
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, body.length);
        exchange.getResponseBody().write(body);
    }
}
