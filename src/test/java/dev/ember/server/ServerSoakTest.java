package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import dev.ember.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A short version of tools/soak/soak.py in the suite: 240 requests, 80 at a time, of every kind at once (streams and
 * whole answers, chat and completions, several choices, clients that leave mid-stream, bad requests, prompts over the
 * context); each gets a complete answer or a JSON error, and afterwards nothing holds a request slot or a KV block.
 */
class ServerSoakTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final List<String> PROMPTS = OpenAiServerTest.PROMPTS;

    enum Kind { PLAIN, STREAM, LEAVE, BAD, OVERSIZED }

    @Test
    void everyRequestGetsAnAnswerOrAJsonErrorAndNothingLeaks() throws Exception {
        CpuBackend backend = new CpuBackend(2);
        try (Model model = ModelLoader.load(OpenAiServerTest.MODEL); Tokenizer tokenizer = Tokenizer.load(OpenAiServerTest.MODEL)) {
            OpenAiServerTest.backend = backend;
            OpenAiServerTest.model = model;
            OpenAiServerTest.tokenizer = tokenizer;
            try (OpenAiServerTest.Served served = OpenAiServerTest.Served.start((String) null)) {
                run(served);
            }
        } finally {
            backend.close();
        }
    }

    private static void run(OpenAiServerTest.Served served) throws Exception {
        SplittableRandom random = new SplittableRandom(15);
        Map<String, Integer> outcomes = new ConcurrentHashMap<>();
        Semaphore inFlight = new Semaphore(80);
        List<Future<?>> all = new ArrayList<>();
        try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < 240; i++) {
                int pick = random.nextInt(100);
                Kind kind = pick < 20 ? Kind.LEAVE : pick < 28 ? Kind.BAD : pick < 32 ? Kind.OVERSIZED : pick < 66 ? Kind.STREAM : Kind.PLAIN;
                boolean chat = random.nextBoolean();
                int n = random.nextInt(4) == 0 ? 2 : 1;
                ObjectNode body = JSON.createObjectNode().put("max_tokens", 2 + random.nextInt(14)).put("ignore_eos", true)
                        .put("temperature", random.nextBoolean() ? 0 : 0.8).put("seed", i).put("n", n);
                String prompt = kind == Kind.OVERSIZED ? "and the ".repeat(1100) : PROMPTS.get(random.nextInt(PROMPTS.size()));
                if (chat) {
                    body.putArray("messages").addObject().put("role", "user").put("content", prompt);
                } else {
                    body.put("prompt", prompt);
                }
                if (kind == Kind.STREAM || kind == Kind.LEAVE) {
                    body.put("stream", true);
                }
                String payload = kind == Kind.BAD ? badBody(random.nextInt(4)) : body.toString();
                String path = chat ? "/v1/chat/completions" : "/v1/completions";
                inFlight.acquire();
                all.add(clients.submit(() -> {
                    try {
                        String outcome = kind == Kind.LEAVE ? leave(served.server().port(), path, payload)
                                : ask(served.server().baseUrl() + path, payload, kind == Kind.STREAM, n);
                        outcomes.merge(kind + " " + outcome, 1, Integer::sum);
                    } finally {
                        inFlight.release();
                    }
                    return null;
                }));
            }
            for (Future<?> f : all) {
                f.get();
            }
        }
        for (String outcome : outcomes.keySet()) {
            boolean expected = outcome.equals("PLAIN complete") || outcome.equals("STREAM complete") || outcome.equals("LEAVE left")
                    || outcome.equals("BAD json error") || outcome.equals("OVERSIZED json error");
            assertTrue(expected, "an outcome other than a complete answer or a JSON error: " + outcomes);
        }
        OpenAiServerTest.assertAllBlocksFree(served);
        OpenAiServerTest.assertOk(served);
    }

    private static String badBody(int which) {
        return switch (which) {
            case 0 -> "{\"prompt\": \"hi\", ";
            case 1 -> "{\"prompt\": \"hi\", \"temperature\": \"hot\"}";
            case 2 -> "{\"messages\": [{\"role\": \"user\"}]}";
            default -> "{\"prompt\": \"hi\", \"logit_bias\": {\"x\": 1}}";
        };
    }

    /** A whole answer or a stream, read to its end: "complete", "json error", or what went wrong. */
    private static String ask(String url, String payload, boolean stream, int n) throws Exception {
        var response = OpenAiServerTest.postTo(url, payload);
        if (response.statusCode() != 200) {
            JsonNode error = JSON.readTree(response.body()).get("error");
            return error != null && error.has("message") && error.has("param") ? "json error" : "bad error " + response.body();
        }
        if (!stream) {
            JsonNode answer = JSON.readTree(response.body());
            boolean finished = answer.get("choices").size() == n;
            for (JsonNode choice : answer.get("choices")) {
                finished &= !choice.get("finish_reason").isNull();
            }
            return finished ? "complete" : "incomplete " + response.body();
        }
        int finishes = 0;
        boolean done = false;
        for (String event : response.body().split("\n\n")) {
            String data = event.substring("data: ".length());
            if (data.equals("[DONE]")) {
                done = true;
                continue;
            }
            for (JsonNode choice : JSON.readTree(data).path("choices")) {
                finishes += choice.get("finish_reason").isNull() ? 0 : 1;
            }
        }
        return done && finishes == n ? "complete" : "incomplete " + response.body();
    }

    /** A streaming client that reads the head and one event, then goes away. */
    private static String leave(int port, String path, String payload) {
        try (Socket socket = new Socket("127.0.0.1", port)) {
            socket.setSoTimeout(60_000);
            byte[] bytes = payload.getBytes(StandardCharsets.UTF_8);
            socket.getOutputStream().write(("POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + bytes.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            socket.getOutputStream().write(bytes);
            BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                if (line.startsWith("data: ")) {
                    return "left";
                }
            }
            return "no event before the close";
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
