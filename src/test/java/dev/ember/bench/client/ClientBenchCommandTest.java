package dev.ember.bench.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.cli.GenerateCommandTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** {@code ember bench client} against an OpenAI-compatible stub with known timings. */
class ClientBenchCommandTest {
    private static final int FIRST_TOKEN_MS = 40;
    private static final int GAP_MS = 15;
    /** Scheduling slack on a loaded 2-core machine: the figures may run late, never early. */
    private static final double SLACK_MS = 60;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The result file's fields, as docs/benchmarks.md lists them. */
    static final List<String> RESULT_FIELDS = resultFields();

    private static OpenAiStub stub;

    @TempDir
    Path dir;

    @BeforeAll
    static void start() throws IOException {
        stub = new OpenAiStub(FIRST_TOKEN_MS, GAP_MS);
    }

    @AfterAll
    static void stop() {
        stub.close();
    }

    private static List<String> resultFields() {
        List<String> f = new ArrayList<>(List.of("date", "ember_version", "url", "model", "dataset", "num_prompts", "request_rate",
                "burstiness", "max_concurrency", "warmup_requests", "ignore_eos", "n", "logprobs", "slo", "duration_s", "completed", "failed",
                "total_input_tokens", "total_output_tokens", "request_throughput", "request_goodput", "output_throughput",
                "total_token_throughput"));
        for (String metric : List.of("ttft", "tpot", "itl", "e2el", "queue")) {
            for (String stat : List.of("mean", "median", "p90", "p99")) {
                f.add(stat + "_" + metric + "_ms");
            }
        }
        f.add("errors");
        return List.copyOf(f);
    }

    private JsonNode run(String... args) throws IOException {
        Path result = dir.resolve("result.json");
        List<String> all = new ArrayList<>(List.of("bench", "client", "--base-url", stub.baseUrl(), "--result-file", result.toString()));
        all.addAll(List.of(args));
        GenerateCommandTest.Run r = GenerateCommandTest.ember(all.toArray(String[]::new));
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("Serving Benchmark Result"), r.out());
        JsonNode json = JSON.readTree(result.toFile());
        List<String> fields = new ArrayList<>();
        json.fieldNames().forEachRemaining(fields::add);
        assertEquals(RESULT_FIELDS, fields);
        return json;
    }

    @Test
    void randomTokenIdsAtFullRateUnderAConcurrencyCap() throws IOException {
        stub.bodies.clear();
        JsonNode r = run("--num-prompts", "12", "--max-concurrency", "3", "--random-input-len", "16", "--random-output-len", "6",
                "--ignore-eos", "--slo", "ttft:100000");
        assertEquals(12, r.get("completed").asInt());
        assertEquals(0, r.get("failed").asInt());
        assertEquals("stub-model", r.get("model").asText(), "the model comes from /v1/models");
        assertEquals(12 * 16, r.get("total_input_tokens").asLong(), "prompt tokens from usage");
        assertEquals(12 * 6, r.get("total_output_tokens").asLong(), "completion tokens from usage");
        assertEquals(3, stub.peakInFlight(), "at most --max-concurrency requests in flight, and that many");

        assertTrue(r.get("median_ttft_ms").asDouble() >= FIRST_TOKEN_MS, r.toString());
        assertTrue(r.get("median_ttft_ms").asDouble() < FIRST_TOKEN_MS + SLACK_MS, r.toString());
        assertTrue(r.get("median_itl_ms").asDouble() >= GAP_MS * 0.9, r.toString());
        assertTrue(r.get("median_itl_ms").asDouble() < GAP_MS + SLACK_MS, r.toString());
        assertTrue(r.get("median_tpot_ms").asDouble() >= GAP_MS * 0.9, r.toString());
        // Four waves of three: the last nine wait for a slot, kept out of their TTFT.
        double oneRequest = FIRST_TOKEN_MS + 5 * GAP_MS;
        assertTrue(r.get("p90_queue_ms").asDouble() >= 2 * oneRequest * 0.9, r.toString());
        assertTrue(r.get("duration_s").asDouble() >= 4 * oneRequest / 1000 * 0.9, r.toString());
        assertEquals(r.get("completed").asDouble() / r.get("duration_s").asDouble(), r.get("request_goodput").asDouble(), 1e-9);

        JsonNode body = stub.receivedBodies().getFirst();
        assertTrue(body.get("prompt").isArray(), "without a tokenizer, random prompts go as token ids");
        assertEquals(16, body.get("prompt").size());
        assertTrue(body.get("stream").asBoolean());
        assertTrue(body.get("stream_options").get("include_usage").asBoolean());
        assertTrue(body.get("ignore_eos").asBoolean());
        assertEquals(6, body.get("max_tokens").asInt());
    }

    /**
     * --monitor adds the GPU section and the _gpu file (here without NVML: available false, with the reason) and
     * --trace draws every request on request tracks, a track never holding two requests at once.
     */
    @Test
    void monitorAndTraceOfTheRequests() throws IOException {
        Path result = dir.resolve("monitored.json"), trace = dir.resolve("client-trace.json");
        GenerateCommandTest.Run r = GenerateCommandTest.ember("bench", "client", "--base-url", stub.baseUrl(), "--model", "m",
                "--num-prompts", "8", "--max-concurrency", "2", "--random-input-len", "8", "--random-output-len", "4",
                "--ignore-eos", "--monitor", "--trace", trace.toString(), "--result-file", result.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode json = JSON.readTree(result.toFile());
        assertEquals(8, json.get("completed").asInt(), () -> "errors: " + json.get("errors"));
        JsonNode gpu = json.get("gpu");
        assertNotNull(gpu, json.toString());
        JsonNode gpuFile = JSON.readTree(dir.resolve("monitored_gpu.json").toFile());
        assertEquals("bench client", gpuFile.get("header").get("benchmark").asText());
        if (!gpu.get("available").asBoolean()) {
            assertTrue(gpu.get("reason").asText().contains("NVML"), gpu.toString());
        }

        JsonNode events = JSON.readTree(trace.toFile()).get("traceEvents");
        java.util.Map<Long, List<long[]>> requestsByTrack = new java.util.HashMap<>();
        int firstTokens = 0;
        for (JsonNode e : events) {
            if (!"client".equals(e.path("cat").asText())) {
                continue;
            }
            long start = Math.round(e.get("ts").asDouble() * 1000), end = start + Math.round(e.get("dur").asDouble() * 1000);
            switch (e.get("name").asText()) {
                case "request" -> {
                    assertEquals(4, e.get("args").get("output_tokens").asInt());
                    requestsByTrack.computeIfAbsent(e.get("tid").asLong(), t -> new ArrayList<>()).add(new long[] {start, end});
                }
                case "first_token" -> firstTokens++;
                case "queue" -> assertTrue(end >= start);
                default -> fail("unexpected client span " + e);
            }
        }
        assertEquals(8, requestsByTrack.values().stream().mapToInt(List::size).sum(), "a request span per request");
        assertEquals(8, firstTokens);
        for (List<long[]> track : requestsByTrack.values()) {
            track.sort(java.util.Comparator.comparingLong(a -> a[0]));
            for (int i = 1; i < track.size(); i++) {
                assertTrue(track.get(i)[0] >= track.get(i - 1)[1] - 1, "requests overlap on one track");
            }
        }
    }

    @Test
    void chatCompletionsFromAPromptsFileAtAPoissonRate() throws IOException {
        Path prompts = Files.writeString(dir.resolve("prompts.txt"), "one two three\n\nfour five\n");
        JsonNode r = run("--endpoint", "/v1/chat/completions", "--model", "m", "--dataset-name", "prompts", "--dataset-path",
                prompts.toString(), "--num-prompts", "4", "--output-len", "3", "--request-rate", "50", "--warmup-requests", "1");
        assertEquals(4, r.get("completed").asInt());
        assertEquals(3 + 2 + 3 + 2, r.get("total_input_tokens").asLong(), "the prompts in order, cycled, after the warm-up's");
        assertEquals(12, r.get("total_output_tokens").asLong());
        assertEquals(50, r.get("request_rate").asDouble());
        assertTrue(r.get("request_goodput").isNull(), "no SLO, no goodput");
    }

    @Test
    void requestsWithoutUsageOrRefusedAreCountedAsFailedWithTheirReason() throws IOException {
        Path result = dir.resolve("r.json");
        GenerateCommandTest.Run r = GenerateCommandTest.ember("bench", "client", "--base-url", stub.baseUrl() + "/nousage",
                "--model", "m", "--num-prompts", "2", "--random-input-len", "4", "--random-output-len", "2", "--result-file", result.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode json = JSON.readTree(result.toFile());
        assertEquals(0, json.get("completed").asInt());
        assertEquals(2, json.get("failed").asInt());
        assertTrue(json.get("errors").fieldNames().next().contains("no usage"), json.toString());
        assertTrue(json.get("median_ttft_ms").isNull());

        r = GenerateCommandTest.ember("bench", "client", "--base-url", stub.baseUrl() + "/fail", "--model", "m", "--num-prompts", "1",
                "--random-input-len", "4", "--random-output-len", "2");
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("HTTP 400: max_tokens is too large"), r.out());
    }

    /** --n and --logprobs go into each body in the endpoint's form, and an answer without them fails saying what it lacked. */
    @Test
    void choicesAndLogprobsAreAskedForAndCheckedInEachAnswer() throws IOException {
        stub.bodies.clear();
        Path result = dir.resolve("n.json");
        GenerateCommandTest.Run r = GenerateCommandTest.ember("bench", "client", "--base-url", stub.baseUrl(), "--model", "m",
                "--num-prompts", "2", "--warmup-requests", "0", "--random-input-len", "4", "--random-output-len", "3", "--n", "2", "--result-file", result.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode json = JSON.readTree(result.toFile());
        assertEquals(2, json.get("n").asInt());
        assertTrue(json.get("logprobs").isNull());
        assertEquals(2, json.get("failed").asInt(), "the stub streams one choice where two were asked for");
        assertTrue(json.get("errors").has("the stream finished 1 of the 2 choices asked for (n)"), json.toString());
        assertEquals(2, stub.receivedBodies().getFirst().get("n").asInt());

        stub.bodies.clear();
        r = GenerateCommandTest.ember("bench", "client", "--base-url", stub.baseUrl(), "--model", "m", "--num-prompts", "2",
                "--warmup-requests", "0", "--random-input-len", "4", "--random-output-len", "3", "--logprobs", "5", "--result-file", result.toString());
        assertEquals(0, r.exitCode(), r.err());
        json = JSON.readTree(result.toFile());
        assertEquals(5, json.get("logprobs").asInt());
        assertTrue(json.get("errors").has("the stream carried logprobs for 0 tokens of the 3 its usage counts"), json.toString());
        JsonNode body = stub.receivedBodies().getFirst();
        assertEquals(5, body.get("logprobs").asInt(), "completions ask for logprobs N");
        assertFalse(body.has("n"), "n = 1 is left to the server's default");

        Path prompts = Files.writeString(dir.resolve("chat-prompts.txt"), "one two three\n");
        stub.bodies.clear();
        r = GenerateCommandTest.ember("bench", "client", "--base-url", stub.baseUrl(), "--model", "m", "--endpoint",
                "/v1/chat/completions", "--dataset-name", "prompts", "--dataset-path", prompts.toString(), "--num-prompts", "1",
                "--warmup-requests", "0", "--output-len", "2", "--logprobs", "4");
        assertEquals(0, r.exitCode(), r.err());
        body = stub.receivedBodies().getFirst();
        assertTrue(body.get("logprobs").asBoolean(), "chat asks for logprobs: true...");
        assertEquals(4, body.get("top_logprobs").asInt(), "...with top_logprobs N");
    }

    @Test
    void defaultPromptsAreShortenedToTheServersContextAndGivenOnesThatCannotFitAreRefused() throws IOException {
        Path result = dir.resolve("fit.json");
        GenerateCommandTest.Run r = GenerateCommandTest.ember("bench", "client", "--base-url", stub.baseUrl(), "--num-prompts", "2",
                "--random-output-len", "16", "--warmup-requests", "0", "--result-file", result.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.err().contains("shortened to 48 so that a request fits the server's context of 64 tokens"), r.err());
        assertEquals(2 * 48, JSON.readTree(result.toFile()).get("total_input_tokens").asLong());

        r = GenerateCommandTest.ember("bench", "client", "--base-url", stub.baseUrl(), "--num-prompts", "2",
                "--random-input-len", "60", "--random-output-len", "16");
        assertEquals(1, r.exitCode(), r.err());
        assertTrue(r.err().contains("--random-input-len 60 plus --random-output-len 16 do not fit the server's context of 64"), r.err());
    }

    @Test
    void badOptionsGetOneClearError() throws IOException {
        GenerateCommandTest.Run r = GenerateCommandTest.ember("bench", "client", "--base-url", stub.baseUrl(), "--model", "m",
                "--endpoint", "/v1/chat/completions", "--num-prompts", "1");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("chat completions take text"), r.err());
        Path shareGpt = Files.writeString(dir.resolve("sg.json"), "[]");
        r = GenerateCommandTest.ember("bench", "client", "--base-url", stub.baseUrl(), "--model", "m", "--dataset-name", "sharegpt",
                "--dataset-path", shareGpt.toString());
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("--tokenizer"), r.err());
        r = GenerateCommandTest.ember("bench", "client", "--base-url", stub.baseUrl(), "--model", "m", "--slo", "ttft=5");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().startsWith("ember: error: --slo"), r.err());
    }
}
