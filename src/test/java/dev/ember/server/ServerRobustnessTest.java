package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ember.Progress;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.engine.ServingEngine;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.*;

/**
 * What no client may do to the server, over real sockets on the loopback: stop inside its request head or body,
 * declare more body than it sends, sit idle, send garbage, send prompts far larger than the context beside a live
 * stream; and what a drain does to connections and streams. Each server here has short timeouts of its own.
 */
class ServerRobustnessTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final OpenAiServer.Timeouts SHORT = new OpenAiServer.Timeouts(Duration.ofMillis(500), Duration.ofMillis(500),
            Duration.ofMillis(1500));

    static CpuBackend backend;
    static Model model;
    static Tokenizer tokenizer;

    record Served(ModelRunner runner, ServingEngine engine, OpenAiServer server) implements AutoCloseable {
        static Served start(OpenAiServer.Config config) {
            ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(model.config(), 8192, 16), Progress.NONE);
            ServingEngine engine = ServingEngine.start(runner, tokenizer,
                    new SchedulerConfig(64, 2048, 512, SchedulePolicy.DECODE_FIRST, true, true));
            return new Served(runner, engine, OpenAiServer.start(engine, config));
        }

        static Served start(Duration drain) {
            return start(new OpenAiServer.Config("127.0.0.1", 0, null, "ember-tiny", 16 << 20, drain).withTimeouts(SHORT));
        }

        Socket connect() throws IOException {
            Socket socket = new Socket("127.0.0.1", server.port());
            socket.setSoTimeout(10_000);
            return socket;
        }

        @Override
        public void close() {
            server.close();
            engine.stopNow(Duration.ofSeconds(10));
            runner.close();
        }
    }

    static Served main;

    /**
     * A POST on a new connection. The servers here close an idle connection after 1.5 s where the JDK's client keeps one
     * pooled for 30 s, so a request sent on a pooled connection can meet the server's close of it in flight ("header
     * parser received no bytes"): a race of every keep-alive client with an idle timeout, which a client settles by
     * sending again, and not what these tests are about.
     */
    static HttpResponse<String> postOnItsOwnConnection(String url, String body) throws IOException, InterruptedException {
        try (HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
            return client.send(OpenAiServerTest.post(URI.create(url), body), HttpResponse.BodyHandlers.ofString());
        }
    }

    @BeforeAll
    static void start() {
        backend = new CpuBackend(2);
        model = ModelLoader.load(OpenAiServerTest.MODEL);
        tokenizer = Tokenizer.load(OpenAiServerTest.MODEL);
        main = Served.start(Duration.ofSeconds(30));
    }

    @AfterAll
    static void stop() {
        main.close();
        tokenizer.close();
        model.close();
        backend.close();
    }

    /** An HTTP/1.1 answer read off a socket: status line, headers, body (by Content-Length, or to the end). */
    record Answer(int status, String headers, String body) {
        JsonNode error() throws IOException {
            JsonNode error = JSON.readTree(body).get("error");
            assertNotNull(error, "an OpenAI error body: " + body);
            assertTrue(error.has("message") && error.has("type") && error.has("param") && error.has("code"), body);
            return error;
        }

        static Answer read(InputStream in) throws IOException {
            ByteArrayOutputStream head = new ByteArrayOutputStream();
            while (!head.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) {
                int b = in.read();
                if (b < 0) {
                    throw new IOException("the connection closed inside the answer's head: " + head);
                }
                head.write(b);
            }
            String headers = head.toString(StandardCharsets.ISO_8859_1);
            int status = Integer.parseInt(headers.substring(9, 12));
            int length = -1;
            for (String line : headers.split("\r\n")) {
                if (line.toLowerCase().startsWith("content-length:")) {
                    length = Integer.parseInt(line.substring(15).strip());
                }
            }
            byte[] body = length >= 0 ? in.readNBytes(length) : in.readAllBytes();
            return new Answer(status, headers, new String(body, StandardCharsets.UTF_8));
        }
    }

    static String post(String path, int contentLength) {
        return "POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: "
                + contentLength + "\r\n\r\n";
    }

    /** Sends {@code body} to the main server's {@code path} from a socket whose receive window is a kilobyte. */
    static Socket postWithSmallWindow(String path, ObjectNode body) throws IOException {
        Socket socket = new Socket();
        socket.setReceiveBufferSize(1024);
        socket.connect(new java.net.InetSocketAddress("127.0.0.1", main.server().port()));
        byte[] payload = body.toString().getBytes(StandardCharsets.UTF_8);
        socket.getOutputStream().write(post(path, payload.length).getBytes(StandardCharsets.US_ASCII));
        socket.getOutputStream().write(payload);
        return socket;
    }

    /** Waits for the server to close the connection; returns how long it took. */
    static long closedWithin(Socket socket, Duration limit) throws IOException {
        long start = System.nanoTime();
        socket.setSoTimeout((int) limit.toMillis());
        try {
            InputStream in = socket.getInputStream();
            while (in.read() >= 0) {
                // an answer before the close (a 408) is fine
            }
        } catch (SocketTimeoutException e) {
            fail("the server kept the connection open for " + limit);
        } catch (IOException e) {
            // reset: closed too
        }
        return (System.nanoTime() - start) / 1_000_000;
    }

    @Test
    void aRequestHeadThatStopsHalfwayIsClosedAtTheHeaderTimeout() throws Exception {
        try (Socket socket = main.connect()) {
            socket.getOutputStream().write("POST /v1/completions HTTP/1.1\r\nHost: localh".getBytes(StandardCharsets.US_ASCII));
            closedWithin(socket, Duration.ofSeconds(5));
        }
        OpenAiServerTest.assertOk(main.server().baseUrl());
    }

    @Test
    void aHeadTrickledByteByByteIsClosedAtTheHeaderTimeoutAllTheSame() throws Exception {
        try (Socket socket = main.connect()) {
            OutputStream out = socket.getOutputStream();
            long start = System.nanoTime();
            byte[] head = "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".getBytes(StandardCharsets.US_ASCII);
            try {
                for (byte b : head) {
                    out.write(b);
                    out.flush();
                    Thread.sleep(100);  // well under the idle timeout, so only the header timeout can end it
                }
                fail("the whole trickled head (" + head.length + " bytes over 4 s) was taken");
            } catch (IOException e) {
                assertTrue((System.nanoTime() - start) / 1_000_000 < 4_000);
            }
        }
    }

    @Test
    void aBodyShorterThanItsContentLengthGetsA408AndTheConnectionCloses() throws Exception {
        Answer answer = answerToAPartBody("/v1/completions");
        assertEquals(408, answer.status(), answer.toString());
        assertEquals("request_timeout", answer.error().get("code").asText());
    }

    /**
     * An answer given before the body is read (no such endpoint here; a missing API key alike) says the connection
     * closes: the server drops the rest of the body, and a client that reused the connection would find it gone.
     */
    @Test
    void anAnswerBeforeTheBodyIsReadClosesTheConnection() throws Exception {
        Answer answer = answerToAPartBody("/v1/no-such-endpoint");
        assertEquals(404, answer.status(), answer.toString());
        assertTrue(answer.headers().toLowerCase().contains("connection: close"), answer.headers());
    }

    /** The answer to a POST to {@code path} that sends 15 of the 100 bytes its Content-Length declares; then the close. */
    private static Answer answerToAPartBody(String path) throws IOException {
        try (Socket socket = main.connect()) {
            OutputStream out = socket.getOutputStream();
            out.write((post(path, 100) + "{\"prompt\": \"hi\"").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            Answer answer = Answer.read(socket.getInputStream());
            closedWithin(socket, Duration.ofSeconds(5));
            return answer;
        }
    }

    @Test
    void anIdleConnectionIsClosedAtTheIdleTimeout() throws Exception {
        try (Socket socket = main.connect()) {
            long millis = closedWithin(socket, Duration.ofSeconds(6));
            assertTrue(millis >= 1000, "closed after " + millis + " ms, before the idle timeout");
        }
    }

    /**
     * The idle timeout is for a connection stuck in I/O: an answer that takes longer to generate is not cut. The idle
     * timeout here is short enough that four answers of 1,000 tokens take longer than it on any CPU.
     */
    @Test
    void anAnswerLongerToGenerateThanTheIdleTimeoutIsNotCut() throws Exception {
        Duration idle = Duration.ofMillis(200);
        try (Served served = Served.start(new OpenAiServer.Config("127.0.0.1", 0, null, "ember-tiny", 16 << 20,
                Duration.ofSeconds(1)).withTimeouts(new OpenAiServer.Timeouts(SHORT.header(), SHORT.body(), idle)))) {
            long start = System.nanoTime();
            var answer = OpenAiServerTest.postTo(served.server().baseUrl() + "/v1/completions",
                    "{\"prompt\": \"A\", \"n\": 4, \"max_tokens\": 1000, \"temperature\": 0, \"ignore_eos\": true}");
            long millis = (System.nanoTime() - start) / 1_000_000;
            assertEquals(200, answer.statusCode(), answer.body());
            assertEquals(4000, JSON.readTree(answer.body()).at("/usage/completion_tokens").asInt());
            System.out.println("4 x 1000 tokens in " + millis + " ms (idle timeout " + idle.toMillis() + " ms)");
            assertTrue(millis > idle.toMillis(), "the answer took " + millis + " ms, less than the idle timeout: nothing tested");
        }
    }

    @Test
    void hundredsOfStalledConnectionsNeitherStopOthersNorStayOpen() throws Exception {
        List<Socket> stalled = new ArrayList<>();
        try {
            for (int i = 0; i < 300; i++) {
                Socket socket = main.connect();
                stalled.add(socket);
                String partial = i % 3 == 0 ? "POST /v1/completions HTTP/1.1\r\nHo"
                        : i % 3 == 1 ? post("/v1/completions", 1000) + "{\"prompt\"" : "";
                socket.getOutputStream().write(partial.getBytes(StandardCharsets.US_ASCII));
            }
            OpenAiServerTest.assertOk(main.server().baseUrl());
            for (Socket socket : stalled) {
                closedWithin(socket, Duration.ofSeconds(10));
            }
        } finally {
            for (Socket socket : stalled) {
                socket.close();
            }
        }
    }

    @Test
    void malformedRequestsAreAnsweredWithJsonErrorsNeverHtml() throws Exception {
        List<String> requests = List.of(
                "GARBAGE\r\n\r\n",
                "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n",
                "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999999999999999\r\n\r\n",
                "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nX-Big: " + "a".repeat(40_000) + "\r\n\r\n",
                "GET /v1/models HTTP/1.1\r\n\r\n",
                "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        for (String request : requests) {
            try (Socket socket = main.connect()) {
                socket.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
                Answer answer = Answer.read(socket.getInputStream());
                String shown = request.substring(0, Math.min(80, request.length())) + " -> " + answer.headers();
                assertTrue(answer.status() >= 400 && answer.status() < 500, shown);
                assertTrue(answer.headers().toLowerCase().contains("content-type: application/json"), shown);
                answer.error();
            }
        }
        OpenAiServerTest.assertOk(main.server().baseUrl());
    }

    @Test
    void aPromptFarLongerThanTheContextIsRefusedBeforeItIsTokenized() throws Exception {
        String huge = "and the ".repeat(2048 * PromptEncoder.MAX_CHARS_PER_TOKEN / 8 + 1);
        ObjectNode body = JSON.createObjectNode().put("prompt", huge).put("max_tokens", 4);
        try (Socket socket = main.connect()) {
            byte[] payload = body.toString().getBytes(StandardCharsets.UTF_8);
            socket.getOutputStream().write(post("/v1/completions", payload.length).getBytes(StandardCharsets.US_ASCII));
            socket.getOutputStream().write(payload);
            Answer answer = Answer.read(socket.getInputStream());
            assertEquals(400, answer.status());
            assertEquals("prompt", answer.error().get("param").asText());
            assertTrue(answer.error().get("message").asText().contains("characters"), answer.body());
        }
    }

    /**
     * Two prompts of 5 MB each (under the body limit) sent beside a live stream: the stream's gaps between tokens and
     * /health's answers stay short (before, tokenizing such prompts stalled everything for seconds).
     */
    @Test
    void largePromptsStallNeitherALiveStreamNorHealth() throws Exception {
        ObjectNode streamBody = JSON.createObjectNode().put("prompt", "And the LORD said unto Moses,").put("max_tokens", 600)
                .put("temperature", 0).put("ignore_eos", true).put("stream", true);
        AtomicLong longestGap = new AtomicLong();
        try (Socket live = main.connect()) {
            byte[] payload = streamBody.toString().getBytes(StandardCharsets.UTF_8);
            live.getOutputStream().write(post("/v1/completions", payload.length).getBytes(StandardCharsets.US_ASCII));
            live.getOutputStream().write(payload);
            BufferedReader events = new BufferedReader(new InputStreamReader(live.getInputStream(), StandardCharsets.UTF_8));
            int seen = 0;
            for (String line = events.readLine(); seen < 3; line = events.readLine()) {
                assertNotNull(line);
                seen += line.startsWith("data: ") ? 1 : 0;
            }
            CompletableFuture<Void> reader = CompletableFuture.runAsync(() -> {
                long last = System.nanoTime();
                try {
                    for (String line = events.readLine(); line != null && !line.equals("data: [DONE]"); line = events.readLine()) {
                        if (line.startsWith("data: ")) {
                            long now = System.nanoTime();
                            longestGap.accumulateAndGet(now - last, Math::max);
                            last = now;
                        }
                    }
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            String big = "x".repeat(5 << 20);
            List<CompletableFuture<Answer>> bigOnes = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                bigOnes.add(CompletableFuture.supplyAsync(() -> {
                    try (Socket socket = main.connect()) {
                        byte[] p = JSON.createObjectNode().put("prompt", big).toString().getBytes(StandardCharsets.UTF_8);
                        socket.getOutputStream().write(post("/v1/completions", p.length).getBytes(StandardCharsets.US_ASCII));
                        socket.getOutputStream().write(p);
                        return Answer.read(socket.getInputStream());
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                }));
            }
            long slowestHealth = 0;
            while (!bigOnes.stream().allMatch(CompletableFuture::isDone)) {
                long start = System.nanoTime();
                assertEquals(200, OpenAiServerTest.get(main.server().baseUrl() + "/health").statusCode());
                slowestHealth = Math.max(slowestHealth, System.nanoTime() - start);
            }
            for (CompletableFuture<Answer> answer : bigOnes) {
                assertEquals(400, answer.join().status(), answer.join().body());
            }
            reader.join();
            assertTrue(slowestHealth < 1_000_000_000L, "/health took " + slowestHealth / 1_000_000 + " ms");
            assertTrue(longestGap.get() < 2_000_000_000L, "the live stream went " + longestGap.get() / 1_000_000 + " ms without a token");
        }
    }

    /**
     * A client that reads its stream slowly (a small receive window, a few bytes at a time) slows only itself: a stream
     * beside it finishes at full speed, and when the slow one leaves, its request ends and its blocks are freed.
     */
    @Test
    void aSlowReaderSlowsOnlyItself() throws Exception {
        ObjectNode slowBody = JSON.createObjectNode().put("prompt", "The king of Israel").put("max_tokens", 900)
                .put("temperature", 0).put("ignore_eos", true).put("stream", true);
        try (Socket slow = postWithSmallWindow("/v1/completions", slowBody)) {
            InputStream in = slow.getInputStream();
            assertTrue(in.read(new byte[64]) > 0, "the slow stream started");
            long start = System.nanoTime();
            var fast = postOnItsOwnConnection(main.server().baseUrl() + "/v1/completions",
                    "{\"prompt\": \"A friend\", \"max_tokens\": 200, \"temperature\": 0, \"ignore_eos\": true, \"stream\": true}");
            assertEquals(200, fast.statusCode());
            assertTrue(fast.body().endsWith("data: [DONE]\n\n"));
            long fastMillis = (System.nanoTime() - start) / 1_000_000;
            assertTrue(in.read(new byte[64]) > 0, "the slow stream is still being served");
            assertTrue(fastMillis < 20_000, "the stream beside a slow reader took " + fastMillis + " ms");
        }
        OpenAiServerTest.assertAllBlocksFree(main.engine());  // the slow reader's request ended with its client
    }

    /**
     * A streaming client that reads a few bytes and then nothing more, its connection left open. The kernel takes the
     * first megabytes of its answer into the socket's buffers (up to tcp_wmem's 4 MiB); past them the server's writes
     * block, which holds only that request's own virtual thread: the engine loop goes on (a request's events queue
     * without bound) and streams beside it finish. At the write timeout (the idle timeout: no byte taken) the server
     * drops the connection and cancels the request, which frees its KV blocks while it still had tokens to go.
     */
    @Test
    void aClientThatStopsReadingIsDroppedAtTheWriteTimeoutAndStallsNoOne() throws Exception {
        // Four choices of 1,000 tokens with their top-20 logprobs in the chat format (about 1.5 KB a token): several
        // times what the socket's buffers hold, so that the writes block long before the request is done.
        ObjectNode stalledBody = JSON.createObjectNode().put("max_tokens", 1000).put("n", 4).put("temperature", 0)
                .put("ignore_eos", true).put("stream", true).put("logprobs", true).put("top_logprobs", 20);
        stalledBody.putArray("messages").addObject().put("role", "user").put("content", "The king of Israel");
        long failedBefore = main.engine().metrics().failedRequests();
        long completedBefore = main.engine().metrics().finishedRequests(dev.ember.scheduler.FinishReason.LENGTH);
        try (Socket stalled = postWithSmallWindow("/v1/chat/completions", stalledBody)) {
            assertTrue(stalled.getInputStream().read(new byte[64]) > 0, "the stalled stream started");
            // From here on the client reads nothing.

            long start = System.nanoTime();
            List<CompletableFuture<java.net.http.HttpResponse<String>>> others = new ArrayList<>();
            for (String prompt : List.of("A friend", "In the beginning", "Blessed is the man")) {
                String body = JSON.createObjectNode().put("prompt", prompt).put("max_tokens", 100).put("temperature", 0)
                        .put("ignore_eos", true).put("stream", true).toString();
                others.add(CompletableFuture.supplyAsync(() -> {
                    try {
                        return postOnItsOwnConnection(main.server().baseUrl() + "/v1/completions", body);
                    } catch (IOException | InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                }));
            }
            for (var other : others) {
                assertEquals(200, other.join().statusCode());
                assertTrue(other.join().body().endsWith("data: [DONE]\n\n"), other.join().body());
            }
            long othersMillis = (System.nanoTime() - start) / 1_000_000;
            assertTrue(othersMillis < 30_000, "three streams beside a client that stopped reading took " + othersMillis + " ms");

            OpenAiServerTest.assertAllBlocksFree(main.engine());  // the stalled request is gone while its client still holds on
            assertEquals(failedBefore + 4, main.engine().metrics().failedRequests(), "the stalled request's four choices were cancelled");
            assertEquals(completedBefore + 3, main.engine().metrics().finishedRequests(dev.ember.scheduler.FinishReason.LENGTH),
                    "only the three others ran to their length");
            closedWithin(stalled, Duration.ofSeconds(10));
        }
        OpenAiServerTest.assertOk(main.server().baseUrl());
    }

    /** Shutdown with a connection stalled in its body: it is closed, not waited for. */
    @Test
    void shutdownDoesNotWaitForAStalledRequest() throws Exception {
        try (Served served = Served.start(new OpenAiServer.Config("127.0.0.1", 0, null, "ember-tiny", 1 << 20,
                Duration.ofSeconds(30)));
             Socket socket = served.connect()) {
            socket.getOutputStream().write((post("/v1/completions", 1000) + "{\"prompt\": ").getBytes(StandardCharsets.US_ASCII));
            Thread.sleep(100);
            long start = System.nanoTime();
            served.server().close();
            assertTrue((System.nanoTime() - start) / 1_000_000 < 5_000, "close waited for a stalled request");
            closedWithin(socket, Duration.ofSeconds(5));
        }
    }

    /**
     * While draining, the server still listens: a new request gets a 503 with an error body and /health says so. When
     * the drain timeout ends, a stream still running ends with finish_reason "abort" and data: [DONE].
     */
    @Test
    void drainingAnswersNewRequestsWith503AndEndsStreamsCutOffWithAbortAndDone() throws Exception {
        try (Served served = Served.start(Duration.ofMillis(1500))) {
            // Four choices of 1,900 tokens: longer than the drain timeout (1.5 s) on any CPU.
            ObjectNode body = JSON.createObjectNode().put("prompt", "In the beginning").put("n", 4).put("max_tokens", 1900)
                    .put("temperature", 0).put("ignore_eos", true).put("stream", true);
            try (Socket live = served.connect()) {
                byte[] payload = body.toString().getBytes(StandardCharsets.UTF_8);
                live.getOutputStream().write(post("/v1/completions", payload.length).getBytes(StandardCharsets.US_ASCII));
                live.getOutputStream().write(payload);
                BufferedReader events = new BufferedReader(new InputStreamReader(live.getInputStream(), StandardCharsets.UTF_8));
                String line = events.readLine();
                while (!line.startsWith("data: ")) {
                    line = events.readLine();
                }
                CompletableFuture<Void> closing = CompletableFuture.runAsync(served.server()::close);
                long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
                while (OpenAiServerTest.get(served.server().baseUrl() + "/health").statusCode() != 503) {
                    assertTrue(System.nanoTime() < deadline, "/health never said the server is draining");
                }
                var refused = OpenAiServerTest.postTo(served.server().baseUrl() + "/v1/completions", "{\"prompt\": \"A\", \"max_tokens\": 1}");
                assertEquals(503, refused.statusCode());
                assertEquals("service_unavailable", JSON.readTree(refused.body()).at("/error/type").asText());

                String finish = null;
                String last = null;
                for (line = events.readLine(); line != null; line = events.readLine()) {
                    if (line.startsWith("data: ")) {
                        last = line;
                        if (!line.equals("data: [DONE]")) {
                            JsonNode reason = JSON.readTree(line.substring(6)).at("/choices/0/finish_reason");
                            finish = reason.isMissingNode() || reason.isNull() ? finish : reason.asText();
                        }
                    }
                    if ("data: [DONE]".equals(line)) {
                        break;
                    }
                }
                assertEquals("data: [DONE]", last);
                assertEquals("abort", finish, "the stream was cut off by the drain timeout");
                closing.join();
            }
        }
    }
}
