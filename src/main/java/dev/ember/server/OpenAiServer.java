package dev.ember.server;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ember.EmberException;
import dev.ember.sampling.SamplingParams;
import dev.ember.engine.ServingEngine;
import org.eclipse.jetty.http.HttpField;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpParser;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.eclipse.jetty.server.internal.HttpConnection;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.BindException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * An OpenAI-compatible HTTP server in front of a {@link ServingEngine}, on Jetty's core server with one virtual
 * thread per request (a streaming request blocks its thread while it waits for tokens, which costs a virtual thread
 * nothing).
 *
 * <p>No client can hold the server: a request head must arrive whole within the header timeout, a body within the
 * body timeout and below the size limit, and a connection that neither sends nor takes bytes for the idle timeout
 * is closed (a streaming client that stops reading included; its request is cancelled).
 *
 * <p>Every failure is answered with an OpenAI-style body {@code {"error": {"message", "type", "param", "code"}}},
 * Jetty's own refusals (a malformed request line, headers over the limit) included: 400 for a request that is
 * malformed or cannot be served (the message names the field or the limit), 401 without the API key, 404 and 405
 * for unknown paths and methods, 408 for a body that does not arrive in time, 413 for a body over the size limit,
 * 503 while draining. {@link #close()} drains: see there.
 */
public final class OpenAiServer implements AutoCloseable {

    /**
     * How long a client may take. A connection that sends nothing for {@code idle} is closed, and so is one whose
     * request head has not arrived whole {@code header} after its first byte, or whose body has not arrived whole
     * {@code body} after its head.
     */
    public record Timeouts(Duration header, Duration body, Duration idle) {
        public static final Timeouts DEFAULT = new Timeouts(Duration.ofSeconds(10), Duration.ofSeconds(30), Duration.ofSeconds(60));

        public Timeouts {
            for (Duration d : List.of(header, body, idle)) {
                if (d.isNegative() || d.isZero()) {
                    throw new EmberException("a server timeout must be positive, got " + d);
                }
            }
        }
    }

    /**
     * @param host             the address to listen on
     * @param port             the port; 0 picks a free one (see {@link #port()})
     * @param apiKey           when not null, every request under {@code /v1} must send {@code Authorization: Bearer <apiKey>}
     *                         ({@code /health}, {@code /metrics}, {@code /ping}, {@code /version}, {@code /tokenize} and
     *                         {@code /detokenize} stay open, as with vLLM)
     * @param servedModelName  the model name clients send and {@code /v1/models} lists
     * @param maxRequestBytes  the largest request body accepted; larger ones get a 413
     * @param drainTimeout     how long {@link #close()} waits for requests in flight
     * @param timeouts         how long a client may take to send a request, and to take the response
     * @param allowedOrigins   origins a browser may call from (CORS); {@code *} for any; empty for none
     * @param reasoningParser  vLLM's name of how a chat answer's thinking is split from it ({@code qwen3},
     *                         {@code deepseek_r1}); null to leave the thinking in the content
     * @param toolCallParser   vLLM's name of the format calls are read in ({@code hermes}, {@code llama3_json}); null for
     *                         the one the model's chat template teaches
     * @param maxLogprobs      the most logprobs (and prompt logprobs) a request may ask for (vLLM's --max-logprobs)
     */
    public record Config(String host, int port, String apiKey, String servedModelName, int maxRequestBytes,
                         Duration drainTimeout, Timeouts timeouts, List<String> allowedOrigins, String reasoningParser,
                         String toolCallParser, Map<String, Double> samplingDefaults, List<String> modelAliases, Long seed,
                         int maxLogprobs) {
        public static final int DEFAULT_MAX_REQUEST_BYTES = 16 << 20;

        public Config {
            if (maxRequestBytes < 1) {
                throw new EmberException("the request size limit must be positive, got " + maxRequestBytes);
            }
            if (apiKey != null && apiKey.isEmpty()) {
                throw new EmberException("the API key is empty");
            }
            allowedOrigins = List.copyOf(allowedOrigins);
            samplingDefaults = Map.copyOf(samplingDefaults);
            modelAliases = List.copyOf(modelAliases);
            if (reasoningParser != null) {
                Reasoning.named(reasoningParser);
            }
            if (toolCallParser != null) {
                ToolCalls.Format.named(toolCallParser);
            }
            checkMaxLogprobs(maxLogprobs);
        }

        /** Refuses a logprobs limit (vLLM's --max-logprobs) beyond what Ember lists. */
        static void checkMaxLogprobs(int max) {
            EmberException.require(max >= 0 && max <= SamplingParams.MAX_LOGPROBS, "--max-logprobs " + max
                    + " is not supported: Ember lists 0 to " + SamplingParams.MAX_LOGPROBS + " of the most likely tokens");
        }

        /** Default timeouts, no CORS. */
        public Config(String host, int port, String apiKey, String servedModelName, int maxRequestBytes, Duration drainTimeout) {
            this(host, port, apiKey, servedModelName, maxRequestBytes, drainTimeout, Timeouts.DEFAULT, List.of(), null, null, Map.of(),
                    List.of(), null, SamplingParams.MAX_LOGPROBS);
        }

        public Config withTimeouts(Timeouts timeouts) {
            return with(c -> c.timeouts = timeouts);
        }

        public Config withAllowedOrigins(List<String> origins) {
            return with(c -> c.allowedOrigins = origins);
        }

        public Config withReasoningParser(String parser) {
            return with(c -> c.reasoningParser = parser);
        }

        public Config withToolCallParser(String parser) {
            return with(c -> c.toolCallParser = parser);
        }

        /**
         * Sampling values for requests that leave them out, by their fields' names (temperature, top_k, top_p, min_p,
         * repetition_penalty): the model's generation_config.json, as vLLM's {@code --generation-config auto} takes it.
         */
        public Config withSamplingDefaults(Map<String, Double> defaults) {
            return with(c -> c.samplingDefaults = defaults);
        }

        /** Further names requests may give the model by (vLLM's --served-model-name takes several: the first is its name). */
        public Config withModelAliases(List<String> aliases) {
            return with(c -> c.modelAliases = aliases);
        }

        /**
         * Seeds the draws of requests that give no seed of their own (vLLM's {@code --seed}): the server's seeds come from
         * one generator, so that the same requests sent in the same order to a server started again draw the same
         * tokens; null for a random seed a request.
         */
        public Config withSeed(Long seed) {
            return with(c -> c.seed = seed);
        }

        /** The most logprobs a request may ask for (vLLM's --max-logprobs), up to what Ember lists. */
        public Config withMaxLogprobs(int max) {
            return with(c -> c.maxLogprobs = max);
        }

        /** This config with {@code change} made to a copy of its fields (checked again by the constructor). */
        private Config with(Consumer<Copy> change) {
            Copy c = new Copy(this);
            change.accept(c);
            return c.build();
        }

        /** A config's fields, to change some and build another. */
        private static final class Copy {
            private final String host, apiKey, servedModelName;
            private final int port, maxRequestBytes;
            private final Duration drainTimeout;
            Timeouts timeouts;
            List<String> allowedOrigins, modelAliases;
            String reasoningParser, toolCallParser;
            Map<String, Double> samplingDefaults;
            Long seed;
            int maxLogprobs;

            Copy(Config c) {
                host = c.host;
                port = c.port;
                apiKey = c.apiKey;
                servedModelName = c.servedModelName;
                maxRequestBytes = c.maxRequestBytes;
                drainTimeout = c.drainTimeout;
                timeouts = c.timeouts;
                allowedOrigins = c.allowedOrigins;
                reasoningParser = c.reasoningParser;
                toolCallParser = c.toolCallParser;
                samplingDefaults = c.samplingDefaults;
                modelAliases = c.modelAliases;
                seed = c.seed;
                maxLogprobs = c.maxLogprobs;
            }

            Config build() {
                return new Config(host, port, apiKey, servedModelName, maxRequestBytes, drainTimeout, timeouts, allowedOrigins,
                        reasoningParser, toolCallParser, samplingDefaults, modelAliases, seed, maxLogprobs);
            }
        }

        /** Every name the model answers to: its own, then the aliases. */
        List<String> modelNames() {
            List<String> names = new java.util.ArrayList<>(List.of(servedModelName));
            names.addAll(modelAliases);
            return names;
        }
    }

    /** What a route does with an exchange; throws {@link ApiException} to refuse it. */
    @FunctionalInterface
    interface Route {
        void handle(Exchange exchange) throws IOException, InterruptedException;
    }

    private record Endpoint(String method, Route route) {
    }

    static final ObjectMapper JSON = new ObjectMapper();
    /** Reads a request body: one JSON value, nothing but whitespace after it (as a JSON parser such as Python's holds). */
    private static final ObjectReader BODY = JSON.reader().with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    /** Connections waiting to be accepted: room for a benchmark client's burst of hundreds at once. */
    private static final int CONNECTION_BACKLOG = 1024;
    private static final long SWEEP_MILLIS = 100;
    /** After the drain timeout, how long the streams cut off get to write their last event. */
    private static final Duration ABORT_GRACE = Duration.ofSeconds(5);

    private final ServingEngine engine;
    private final Config config;
    private final Server jetty;
    private final ServerConnector connector;
    private int port;
    private final ScheduledExecutorService sweeper;
    private final ExecutorService requestThreads = Executors.newVirtualThreadPerTaskExecutor();
    private final Map<String, Endpoint> endpoints = new HashMap<>();
    private final CompletionEndpoint completions;
    private final ResponsesEndpoint responses;
    private final MessagesEndpoint messages;
    private final byte[] expectedAuthorization;
    private final long created = System.currentTimeMillis() / 1000;
    /** Requests handed to the engine and not yet answered in full: what a drain waits for. */
    private final AtomicInteger generating = new AtomicInteger();
    private final Object drainLock = new Object();
    private volatile boolean draining;
    private volatile boolean aborting;
    /** While {@link #warmUp} runs: {@code /health} answers 503 "warming up". */
    private volatile boolean warming;
    /** Connections in the middle of a request head, and when they were first seen there (the sweeper's thread only). */
    private Map<EndPoint, Long> partialHeads = new HashMap<>();

    private OpenAiServer(ServingEngine engine, Config config) {
        this.engine = engine;
        this.config = config;
        this.completions = new CompletionEndpoint(engine, config.modelNames(), JSON, () -> aborting,
                config.reasoningParser() == null ? null : Reasoning.named(config.reasoningParser()),
                config.toolCallParser() == null ? null : ToolCalls.Format.named(config.toolCallParser()), config.samplingDefaults(),
                config.seed() == null ? () -> ThreadLocalRandom.current().nextLong() : new Random(config.seed())::nextLong,
                config.maxLogprobs());
        this.responses = new ResponsesEndpoint(completions, JSON, config.servedModelName());
        this.messages = new MessagesEndpoint(completions, JSON, config.servedModelName());
        this.expectedAuthorization = config.apiKey() == null ? null
                : ("Bearer " + config.apiKey()).getBytes(StandardCharsets.UTF_8);

        QueuedThreadPool threads = new QueuedThreadPool();
        threads.setName("ember-http");
        threads.setDaemon(true);
        threads.setVirtualThreadsExecutor(requestThreads);
        jetty = new Server(threads);
        HttpConfiguration http = new HttpConfiguration();
        http.setSendServerVersion(false);
        http.setRequestHeaderSize(16 << 10);
        connector = new ServerConnector(jetty, new HttpConnectionFactory(http));
        connector.setHost(config.host());
        connector.setPort(config.port());
        connector.setAcceptQueueSize(CONNECTION_BACKLOG);
        connector.setIdleTimeout(config.timeouts().idle().toMillis());
        jetty.addConnector(connector);
        jetty.setErrorHandler(new JsonErrors());
        // Non-blocking, so that Jetty may call it on the thread that read the request: /health and /ping are answered
        // there at once, never queued behind the virtual threads of hundreds of streams; the rest go to a virtual thread.
        jetty.setHandler(new Handler.Abstract.NonBlocking() {
            @Override
            public boolean handle(Request request, Response response, Callback callback) {
                String path = request.getHttpURI().getPath();
                if (request.getMethod().equals("GET") && (path.equals("/health") || path.equals("/ping"))
                        && request.getHeaders().get("Origin") == null) {
                    byte[] body = healthBody();
                    response.setStatus(healthy() ? 200 : 503);
                    response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
                    response.write(true, ByteBuffer.wrap(body), callback);
                    return true;
                }
                requestThreads.execute(() -> serve(new Exchange(request, response, callback)));
                return true;
            }
        });
        jetty.setStopTimeout(0);
        sweeper = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("ember-http-timeouts").daemon(true).factory());
    }

    /** Binds the address and starts serving; the caller keeps ownership of {@code engine}. */
    public static OpenAiServer start(ServingEngine engine, Config config) {
        OpenAiServer server = new OpenAiServer(engine, config);
        server.endpoint("/v1/completions", "POST", ex -> server.completion(ex, CompletionEndpoint.Kind.TEXT));
        server.endpoint("/v1/chat/completions", "POST", ex -> server.completion(ex, CompletionEndpoint.Kind.CHAT));
        server.endpoint("/v1/responses", "POST", ex -> server.generate(ex, server.responses::handle));
        server.endpoint("/v1/messages", "POST", ex -> server.generate(ex, server.messages::handle));
        server.endpoint("/v1/messages/count_tokens", "POST", ex -> ex.sendJson(200,
                JSON.writeValueAsBytes(server.messages.countTokens(server.readJson(ex)))));
        server.endpoint("/v1/models", "GET", server::models);
        server.endpoint("/health", "GET", server::health);
        server.endpoint("/metrics", "GET", server::metrics);
        server.endpoint("/ping", "GET", server::ping);
        server.endpoint("/version", "GET", server::version);
        server.endpoint("/tokenize", "POST", ex -> ex.sendJson(200,
                JSON.writeValueAsBytes(server.completions.reader().tokenize(new RequestFields(server.readJson(ex))))));
        server.endpoint("/detokenize", "POST", ex -> ex.sendJson(200,
                JSON.writeValueAsBytes(server.completions.reader().detokenize(new RequestFields(server.readJson(ex))))));
        try {
            server.jetty.start();
        } catch (IOException e) {
            server.stopQuietly();
            if (e.getCause() instanceof BindException || e instanceof BindException) {
                throw new EmberException("cannot listen on " + config.host() + ":" + config.port() + ": " + e.getMessage(), e);
            }
            throw new EmberException("cannot start the HTTP server: " + e, e);
        } catch (Exception e) {
            server.stopQuietly();
            throw new EmberException("cannot start the HTTP server: " + e, e);
        }
        server.port = server.connector.getLocalPort();
        server.sweeper.scheduleWithFixedDelay(server::closeStalledHeads, SWEEP_MILLIS, SWEEP_MILLIS, TimeUnit.MILLISECONDS);
        return server;
    }

    /**
     * Sends {@code requests} requests to this server over the loopback, {@code concurrency} at a time, and waits for
     * their answers, before it reports ready: completions, chat, responses and messages, whole and streamed, and a
     * refused one (400), of a few tokens each. Until then every path a client's request takes (Jetty, JSON, tokenizing, the engine's steps at a
     * batch of {@code concurrency}, streaming) runs interpreted or half compiled: the first burst of clients would pay
     * for that with CPU the thread answering {@code /health} needs, and with garbage that brings a young collection
     * into the burst. {@code /health} answers 503 "warming up" meanwhile, and {@code /metrics} starts afresh after it.
     * No request is sent after {@code limit}.
     *
     * @return how many requests were answered as expected (200, the refused one 400)
     */
    public int warmUp(int requests, int concurrency, Duration limit) throws InterruptedException {
        if (requests <= 0) {
            return 0;
        }
        warming = true;
        try (HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .executor(Executors.newVirtualThreadPerTaskExecutor()).build();
             ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
            String loopback = url(switch (config.host()) {  // a wildcard address is reached on the loopback
                case "0.0.0.0", "" -> "127.0.0.1";
                case "::", "[::]" -> "::1";
                default -> config.host();
            });
            long deadline = System.nanoTime() + limit.toNanos();
            Semaphore slots = new Semaphore(Math.max(1, concurrency));
            AtomicInteger answered = new AtomicInteger();
            String[] prompts = {"Hello", "The meaning of life is", "Once upon a time", "A friend in need"};
            for (int i = 0; i < requests && System.nanoTime() < deadline; i++) {
                slots.acquire();
                int kind = i % 7;
                String prompt = prompts[i % prompts.length];
                ObjectNode body = JSON.createObjectNode().put("temperature", i % 2 == 0 ? 0 : 0.8);
                String path;
                if (kind < 5) {
                    body.put("max_tokens", 2 + i % 7).put("seed", i).put("ignore_eos", true);
                    if (kind == 1 || kind == 3) {
                        body.putArray("messages").addObject().put("role", "user").put("content", prompt);
                    } else {
                        body.put("prompt", prompt);
                    }
                    if (kind == 2 || kind == 3) {
                        body.put("stream", true).putObject("stream_options").put("include_usage", true);
                    }
                    if (kind == 4) {
                        body.put("temperature", "warm");  // refused: a wrong type
                    }
                    path = kind == 1 || kind == 3 ? "/v1/chat/completions" : "/v1/completions";
                } else if (kind == 5) {  // OpenAI's Responses API, whole and streamed in turn
                    body.put("input", prompt).put("max_output_tokens", 2 + i % 7).put("stream", i / 7 % 2 == 1);
                    path = "/v1/responses";
                } else {  // Anthropic's Messages API
                    body.put("max_tokens", 2 + i % 7).put("stream", i / 7 % 2 == 1);
                    body.putArray("messages").addObject().put("role", "user").put("content", prompt);
                    path = "/v1/messages";
                }
                HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(loopback + path))
                        .timeout(Duration.ofNanos(Math.max(deadline - System.nanoTime(), 0)).plusSeconds(30))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)));
                if (config.apiKey() != null) {
                    request.header("Authorization", "Bearer " + config.apiKey());
                }
                clients.execute(() -> {
                    try {
                        if (http.send(request.build(), HttpResponse.BodyHandlers.discarding()).statusCode() == (kind == 4 ? 400 : 200)) {
                            answered.incrementAndGet();
                        }
                    } catch (IOException e) {
                        // not answered: the warm-up is best effort
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    } finally {
                        slots.release();
                    }
                });
            }
            slots.acquire(Math.max(1, concurrency));  // every request answered (or failed)
            engine.startMetricsAfresh();  // /metrics counts what clients sent
            return answered.get();
        } catch (IOException e) {
            throw new UncheckedIOException(e);  // writing a JSON body of a few fields
        } finally {
            warming = false;
        }
    }

    /** The port the server listens on (the one picked, when the configuration asked for 0). */
    public int port() {
        return port;
    }

    public String baseUrl() {
        return url(config.host());
    }

    /** The HTTP URL of this server's port at {@code host} (an IPv6 address in brackets). */
    private String url(String host) {
        return "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port();
    }

    /**
     * Graceful shutdown. The engine stops admitting; the server keeps listening while it drains, so that a new request
     * gets a 503 with an error body (and {@code /health} a 503 "shutting down") instead of a refused connection. It
     * waits up to the drain timeout for the requests in flight to be answered; those still running then are cut off
     * (a stream ends with {@code finish_reason} "abort" and {@code data: [DONE]}, a whole response is a 503). Then it
     * stops listening and closes every connection, those still sending a request included: none is waited for. The
     * engine stays the caller's.
     */
    @Override
    public void close() {
        draining = true;
        engine.shutdown();
        if (!awaitAnswered(config.drainTimeout())) {
            aborting = true;
            engine.shutdownNow();
            awaitAnswered(ABORT_GRACE);
        }
        stopQuietly();
    }

    private boolean awaitAnswered(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (drainLock) {
            while (generating.get() > 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(drainLock, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }
        }
        return true;
    }

    private void stopQuietly() {
        sweeper.shutdownNow();
        try {
            jetty.stop();
        } catch (Exception e) {
            System.err.println("ember: stopping the HTTP server: " + e);
        }
        requestThreads.shutdownNow();
        completions.close();
    }

    private void endpoint(String path, String method, Route route) {
        endpoints.put(path, new Endpoint(method, route));
    }

    private void serve(Exchange exchange) {
        try {
            try {
                if (cors(exchange)) {
                    return;
                }
                String path = exchange.path();
                Endpoint endpoint = endpoints.get(path.startsWith("/v1/models/") ? "/v1/models" : path);
                if (path.startsWith("/v1")) {
                    authorize(exchange);
                }
                if (endpoint == null) {
                    throw new ApiException(404, "not_found_error", null, null, "no such endpoint: " + path);
                }
                if (!endpoint.method().equals(exchange.method())) {
                    exchange.setHeader("Allow", endpoint.method());
                    throw new ApiException(405, "invalid_request_error", null, null,
                            exchange.method() + " is not allowed on " + path + "; use " + endpoint.method());
                }
                endpoint.route().handle(exchange);
                exchange.complete();
            } catch (ApiException e) {
                if (!exchange.isCommitted()) {
                    exchange.sendJson(e.status(), JSON.writeValueAsBytes(errorBody(JSON, e)));
                } else {
                    exchange.fail(e);
                }
            } catch (InterruptedException e) {
                exchange.fail(e);
            } catch (IOException e) {
                exchange.fail(e);  // the client went away; nothing can be answered
            } catch (RuntimeException e) {
                System.err.println("ember: internal error answering " + exchange.path() + ": " + e);
                if (!exchange.isCommitted()) {
                    ApiException error = new ApiException(500, "internal_error", null, null, "internal error: " + e);
                    exchange.sendJson(500, JSON.writeValueAsBytes(errorBody(JSON, error)));
                } else {
                    exchange.fail(e);
                }
            }
        } catch (IOException e) {
            exchange.fail(e);  // answering the error failed too: the connection is gone
        }
    }

    /** CORS: the allowed origin is echoed on every answer; a preflight ({@code OPTIONS}) is answered here. */
    private boolean cors(Exchange exchange) throws IOException {
        String origin = exchange.header("Origin");
        if (origin == null || config.allowedOrigins().isEmpty()) {
            return false;
        }
        boolean any = config.allowedOrigins().contains("*");
        if (!any && !config.allowedOrigins().contains(origin)) {
            return false;
        }
        exchange.setHeader("Access-Control-Allow-Origin", any ? "*" : origin);
        if (!any) {
            exchange.setHeader("Vary", "Origin");
        }
        if (exchange.method().equals("OPTIONS") && exchange.header("Access-Control-Request-Method") != null) {
            exchange.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            String headers = exchange.header("Access-Control-Request-Headers");
            exchange.setHeader("Access-Control-Allow-Headers", headers != null ? headers : "Authorization, Content-Type");
            exchange.setHeader("Access-Control-Max-Age", "600");
            exchange.send(204, "text/plain", new byte[0]);
            return true;
        }
        return false;
    }

    private void authorize(Exchange exchange) {
        if (expectedAuthorization == null) {
            return;
        }
        String header = exchange.header("Authorization");
        String anthropic = exchange.header("x-api-key");  // Anthropic's clients send the key so
        byte[] given = header != null ? header.getBytes(StandardCharsets.UTF_8)
                : anthropic != null ? ("Bearer " + anthropic).getBytes(StandardCharsets.UTF_8) : new byte[0];
        if (!MessageDigest.isEqual(expectedAuthorization, given)) {
            exchange.setHeader("WWW-Authenticate", "Bearer");
            throw new ApiException(401, "invalid_request_error", null, "invalid_api_key",
                    header == null && anthropic == null ? "missing API key: send the header Authorization: Bearer <key> "
                            + "(or x-api-key: <key>)" : "invalid API key");
        }
    }

    /** What generates an answer to a request's body: a completion, a chat completion, a response. */
    @FunctionalInterface
    private interface Generation {
        void answer(Exchange exchange, JsonNode body) throws IOException, InterruptedException;
    }

    private void completion(Exchange exchange, CompletionEndpoint.Kind kind) throws IOException, InterruptedException {
        generate(exchange, (ex, body) -> completions.handle(ex, body, kind));
    }

    /** Runs {@code generation} on the request's body, counted among the requests a drain waits for. */
    private void generate(Exchange exchange, Generation generation) throws IOException, InterruptedException {
        if (draining) {
            throw new ApiException(503, "service_unavailable", null, null, "the server is shutting down and admits no new requests");
        }
        JsonNode body = readJson(exchange);
        generating.incrementAndGet();
        try {
            generation.answer(exchange, body);
        } finally {
            if (generating.decrementAndGet() == 0) {
                synchronized (drainLock) {
                    drainLock.notifyAll();
                }
            }
        }
    }

    JsonNode readJson(Exchange exchange) {
        byte[] bytes = exchange.body(config.maxRequestBytes(), config.timeouts().body());
        try {
            JsonNode node = BODY.readTree(bytes);
            if (node == null || node.isMissingNode()) {
                throw ApiException.invalid(null, "the request body is empty; send a JSON object");
            }
            return node;
        } catch (JacksonException e) {
            throw ApiException.invalid(null, "the request body is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new UncheckedIOException(e);  // reading a byte array fails only on malformed input, answered above
        }
    }

    private void models(Exchange exchange) throws IOException {
        String requested = exchange.path();
        if (requested.startsWith("/v1/models/")) {
            String id = requested.substring("/v1/models/".length());
            if (!config.modelNames().contains(id)) {
                throw new ApiException(404, "not_found_error", "model", "model_not_found", "the model \"" + id + "\" does not exist");
            }
            exchange.sendJson(200, JSON.writeValueAsBytes(model(id)));
            return;
        }
        ObjectNode list = JSON.createObjectNode();
        list.put("object", "list");
        ArrayNode data = list.putArray("data");
        config.modelNames().forEach(name -> data.add(model(name)));
        exchange.sendJson(200, JSON.writeValueAsBytes(list));
    }

    /** The model under one of its names, as {@code /v1/models} lists it. */
    private ObjectNode model(String name) {
        ObjectNode model = JSON.createObjectNode();
        model.put("id", name);
        model.put("object", "model");
        model.put("created", created);
        model.put("owned_by", "ember");
        model.put("root", config.servedModelName());
        model.put("max_model_len", engine.contextLength());
        return model;
    }

    private void health(Exchange exchange) throws IOException {
        exchange.sendJson(healthy() ? 200 : 503, healthBody());
    }

    private boolean healthy() {
        return engine.isHealthy() && engine.isAdmitting() && !draining && !warming;
    }

    private byte[] healthBody() {
        String status = healthy() ? "ok" : !engine.isHealthy() ? "engine stopped" : warming && !draining ? "warming up" : "shutting down";
        return ("{\"status\":\"" + status + "\"}").getBytes(StandardCharsets.UTF_8);
    }

    /** vLLM's liveness probe: 200 while the engine runs, as {@code /health}. */
    private void ping(Exchange exchange) throws IOException {
        health(exchange);
    }

    private void version(Exchange exchange) throws IOException {
        String version = OpenAiServer.class.getPackage().getImplementationVersion();
        ObjectNode body = JSON.createObjectNode();
        body.put("version", version != null ? version : "dev");
        exchange.sendJson(200, JSON.writeValueAsBytes(body));
    }

    private void metrics(Exchange exchange) throws IOException {
        var gauges = new PrometheusText.ServerGauges(generating.get(), connector.getConnectedEndPoints().size());
        byte[] text = PrometheusText.render(engine, config.servedModelName(), gauges).getBytes(StandardCharsets.UTF_8);
        exchange.send(200, "text/plain; version=0.0.4; charset=utf-8", text);
    }

    /**
     * The header timeout: a connection that has sent part of a request head and not the rest within the timeout is
     * closed. (One that sends nothing at all is closed by the idle timeout; a body by {@link Exchange#body}'s deadline.)
     */
    private void closeStalledHeads() {
        long now = System.nanoTime();
        long limit = config.timeouts().header().toNanos();
        Map<EndPoint, Long> seen = new HashMap<>();
        for (EndPoint endPoint : connector.getConnectedEndPoints()) {
            if (!(endPoint.getConnection() instanceof HttpConnection connection)) {
                continue;
            }
            HttpParser parser = connection.getParser();
            if (!parser.inHeaderState() || parser.isStart()) {
                continue;
            }
            long since = partialHeads.getOrDefault(endPoint, now);
            if (now - since > limit) {
                endPoint.close();
            } else {
                seen.put(endPoint, since);
            }
        }
        partialHeads = seen;
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

    /** Jetty's own error answers (malformed requests, headers over the limit, failures it catches) as OpenAI error bodies. */
    private static final class JsonErrors extends ErrorHandler {
        /** Every method gets a body: a request whose line could not be parsed has none, and would otherwise get nothing. */
        @Override
        public boolean errorPageForMethod(String method) {
            return true;
        }

        @Override
        protected void generateResponse(Request request, Response response, int code, String message, Throwable cause,
                                        Callback callback) {
            byte[] body = errorJson(code, message, cause);
            response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
            response.getHeaders().put(HttpHeader.CONTENT_LENGTH, body.length);
            response.write(true, ByteBuffer.wrap(body), callback);
        }

        @Override
        public ByteBuffer badMessageError(int status, String reason, HttpFields.Mutable fields) {
            fields.put(new HttpField(HttpHeader.CONTENT_TYPE, "application/json"));
            return ByteBuffer.wrap(errorJson(status, reason, null));
        }

        private static byte[] errorJson(int code, String message, Throwable cause) {
            String text = message != null && !message.isBlank() ? message
                    : cause != null ? cause.toString() : "HTTP error " + code;
            String type = code == 404 ? "not_found_error" : code >= 500 ? "internal_error" : "invalid_request_error";
            try {
                return JSON.writeValueAsBytes(errorBody(JSON, new ApiException(code, type, null, null, text)));
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }
    }
}
