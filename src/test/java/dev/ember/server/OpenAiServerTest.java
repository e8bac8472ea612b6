package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ember.Progress;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.engine.GenerationResult;
import dev.ember.engine.Generator;
import dev.ember.engine.LlmEngine;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.FinishReason;
import dev.ember.scheduler.PrefixCache;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.engine.NgramProposer;
import dev.ember.engine.ServingEngine;
import dev.ember.engine.ServingMetrics;
import dev.ember.engine.Speculation;
import dev.ember.tokenizer.ChatMessage;
import dev.ember.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The server over real HTTP on loopback, on the trained default model: hundreds of concurrent streaming clients,
 * outputs equal to one-at-a-time greedy generation, every kind of bad request, API keys, disconnects that free
 * their blocks, metrics and a graceful drain.
 */
class OpenAiServerTest {
    static final Path MODEL = Path.of("models", "ember-tiny");
    static final List<String> PROMPTS = List.of("And the LORD said unto Moses,", "A friend", "The king of Israel",
            "In the beginning", "Blessed is the man", "Who is wise?");
    static final int MAX_REQUEST_BYTES = 64 << 10;
    static final ObjectMapper JSON = new ObjectMapper();

    static CpuBackend backend;
    static Model model;
    static Tokenizer tokenizer;
    static ModelRunner referenceRunner;
    static Served main;
    static final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();

    /** An engine on its own runner, and a server in front of it. */
    record Served(ModelRunner runner, ServingEngine engine, OpenAiServer server) implements AutoCloseable {
        static Served start(String apiKey) {
            return start(new OpenAiServer.Config("127.0.0.1", 0, apiKey, "ember-tiny", MAX_REQUEST_BYTES, Duration.ofSeconds(30)));
        }

        static Served start(OpenAiServer.Config config) {
            return start(config, null);
        }

        /** A server whose engine speculates with {@code speculation} (none when null). */
        static Served start(OpenAiServer.Config config, Speculation speculation) {
            ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(model.config(), 16384, 16), Progress.NONE);
            ServingEngine engine = ServingEngine.start(runner, tokenizer,
                    new SchedulerConfig(256, 2048, 512, SchedulePolicy.DECODE_FIRST, true, true), speculation);
            return new Served(runner, engine, OpenAiServer.start(engine, config));
        }

        URI uri(String path) {
            return URI.create(server.baseUrl() + path);
        }

        @Override
        public void close() {
            server.close();
            engine.close();
            runner.close();
        }
    }

    @BeforeAll
    static void start() {
        backend = new CpuBackend(2);
        model = ModelLoader.load(MODEL);
        tokenizer = Tokenizer.load(MODEL);
        referenceRunner = backend.load(model, KvCacheSpec.forTokens(model.config(), 1024, 16), Progress.NONE);
        main = Served.start((String) null);
    }

    @AfterAll
    static void stop() {
        main.close();
        referenceRunner.close();
        tokenizer.close();
        model.close();
        backend.close();
    }

    static GenerationResult alone(int[] prompt, int maxTokens) {
        return new Generator(LlmEngine.of(referenceRunner, Generator.oneRequest(Generator.DEFAULT_CHUNK_TOKENS), tokenizer)).generate(prompt, SamplingParams.greedy(maxTokens).withIgnoreEos(true), p -> { });
    }

    static ObjectNode completion(String prompt, int maxTokens) {
        ObjectNode body = JSON.createObjectNode();
        body.put("model", "ember-tiny");
        body.put("prompt", prompt);
        body.put("max_tokens", maxTokens);
        body.put("temperature", 0);
        body.put("ignore_eos", true);
        return body;
    }

    static HttpRequest post(URI uri, String body) {
        return HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(120)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }

    static HttpResponse<String> send(HttpRequest request) throws IOException, InterruptedException {
        return client.send(request, HttpResponse.BodyHandlers.ofString());
    }

    /** A streamed response, read back: the text deltas, the finish reason, the usage chunk and the end marker. */
    record Stream(String text, int contentChunks, String finishReason, JsonNode usage, boolean done) {
        static Stream parse(String body, boolean chat) throws IOException {
            StringBuilder text = new StringBuilder();
            int chunks = 0;
            String finish = null;
            JsonNode usage = null;
            boolean done = false;
            for (String event : body.split("\n\n")) {
                assertTrue(event.startsWith("data: "), "not an SSE data event: " + event);
                assertFalse(done, "an event after [DONE]");
                String data = event.substring("data: ".length());
                if (data.equals("[DONE]")) {
                    done = true;
                    continue;
                }
                JsonNode chunk = JSON.readTree(data);
                assertEquals(chat ? "chat.completion.chunk" : "text_completion", chunk.get("object").asText());
                if (chunk.hasNonNull("usage")) {
                    usage = chunk.get("usage");
                }
                for (JsonNode choice : chunk.get("choices")) {
                    String piece = chat ? choice.path("delta").path("content").asText("") : choice.get("text").asText();
                    if (!piece.isEmpty()) {
                        chunks++;
                        text.append(piece);
                    }
                    if (!choice.get("finish_reason").isNull()) {
                        assertNull(finish, "one finish reason");
                        finish = choice.get("finish_reason").asText();
                    }
                }
            }
            return new Stream(text.toString(), chunks, finish, usage, done);
        }
    }

    @Test
    void twoHundredConcurrentStreamingClientsAllCompleteWithTheRightTokenCounts() throws Exception {
        int clients = 200;
        Map<String, GenerationResult> expected = new HashMap<>();
        List<CompletableFuture<HttpResponse<String>>> responses = new ArrayList<>();
        List<String> keys = new ArrayList<>();
        for (int i = 0; i < clients; i++) {
            String prompt = PROMPTS.get(i % PROMPTS.size());
            int maxTokens = 2 + i % 5;
            String key = prompt + "|" + maxTokens;
            expected.computeIfAbsent(key, k -> alone(tokenizer.encode(prompt), maxTokens));
            keys.add(key);
            ObjectNode body = completion(prompt, maxTokens);
            body.put("stream", true);
            body.putObject("stream_options").put("include_usage", true);
            responses.add(client.sendAsync(post(main.uri("/v1/completions"), body.toString()), HttpResponse.BodyHandlers.ofString()));
        }
        for (int i = 0; i < clients; i++) {
            HttpResponse<String> response = responses.get(i).join();
            assertEquals(200, response.statusCode(), response.body());
            assertTrue(response.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
            Stream stream = Stream.parse(response.body(), false);
            GenerationResult reference = expected.get(keys.get(i));
            assertTrue(stream.done(), "ends with data: [DONE]");
            assertEquals("length", stream.finishReason());
            assertEquals(reference.text(), stream.text(), "request " + i + ": the greedy text of a lone generation");
            assertEquals(reference.tokens().length, stream.usage().get("completion_tokens").asInt(), "request " + i);
            assertEquals(reference.promptTokens().length, stream.usage().get("prompt_tokens").asInt());
            assertEquals(stream.usage().get("prompt_tokens").asInt() + stream.usage().get("completion_tokens").asInt(),
                    stream.usage().get("total_tokens").asInt());
            assertTrue(stream.contentChunks() <= reference.tokens().length, "at most one chunk per token");
        }
        assertAllBlocksFree(main);
    }

    @Test
    void nonStreamingCompletionsAndChatEqualOneAtATimeGreedyGeneration() throws Exception {
        for (String prompt : PROMPTS.subList(0, 3)) {
            HttpResponse<String> response = send(post(main.uri("/v1/completions"), completion(prompt, 16).toString()));
            assertEquals(200, response.statusCode(), response.body());
            JsonNode body = JSON.readTree(response.body());
            GenerationResult reference = alone(tokenizer.encode(prompt), 16);
            assertEquals("text_completion", body.get("object").asText());
            assertEquals(reference.text(), body.at("/choices/0/text").asText());
            assertEquals("length", body.at("/choices/0/finish_reason").asText());
            assertEquals(16, body.at("/usage/completion_tokens").asInt());
            assertEquals(reference.promptTokens().length, body.at("/usage/prompt_tokens").asInt());
        }
        ObjectNode chat = JSON.createObjectNode();
        chat.putArray("messages").addObject().put("role", "user").put("content", "Who is wise?");
        chat.put("max_completion_tokens", 10);
        chat.put("temperature", 0);
        chat.put("ignore_eos", true);
        for (boolean stream : new boolean[] {false, true}) {
            chat.put("stream", stream);
            HttpResponse<String> response = send(post(main.uri("/v1/chat/completions"), chat.toString()));
            assertEquals(200, response.statusCode(), response.body());
            // ember-tiny has no chat template: the plain "role: content" fallback, with the tokenizer's special tokens.
            int[] prompt = tokenizer.encode(tokenizer.applyChatTemplate(List.of(new ChatMessage("user", "Who is wise?")), true));
            GenerationResult reference = alone(prompt, 10);
            String text = stream ? Stream.parse(response.body(), true).text()
                    : JSON.readTree(response.body()).at("/choices/0/message/content").asText();
            assertEquals(reference.text(), text);
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            malformed JSON              | /v1/completions      | {"prompt": "hi",                                |
            not an object               | /v1/completions      | [1, 2, 3]                                       |
            trailing garbage            | /v1/completions      | {"prompt": "hi", "max_tokens": 1} garbage       |
            two JSON objects            | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1} {"max_tokens": 2} |
            empty body                  | /v1/completions      | ''                                              |
            missing prompt              | /v1/completions      | {"max_tokens": 4}                               | prompt
            temperature a string        | /v1/completions      | {"prompt": "hi", "temperature": "hot"}          | temperature
            stream a string             | /v1/completions      | {"prompt": "hi", "stream": "yes"}               | stream
            max_tokens fractional       | /v1/completions      | {"prompt": "hi", "max_tokens": 1.5}             | max_tokens
            max_tokens a string         | /v1/completions      | {"prompt": "hi", "max_tokens": "4"}             | max_tokens
            stop a number               | /v1/completions      | {"prompt": "hi", "stop": 5}                     | stop
            prompt an object            | /v1/completions      | {"prompt": {"text": "hi"}}                      | prompt
            negative max_tokens         | /v1/completions      | {"prompt": "hi", "max_tokens": -1}              | max_tokens
            zero max_tokens             | /v1/completions      | {"prompt": "hi", "max_tokens": 0}               | max_tokens
            huge max_tokens             | /v1/completions      | {"prompt": "hi", "max_tokens": 1000000}         | max_tokens
            enormous max_tokens         | /v1/completions      | {"prompt": "hi", "max_tokens": 1e30}            | max_tokens
            n of zero                   | /v1/completions      | {"prompt": "hi", "n": 0}                        | n
            best_of below n             | /v1/completions      | {"prompt": "hi", "n": 3, "best_of": 2}          | best_of
            best_of streamed            | /v1/completions      | {"prompt": "hi", "best_of": 2, "stream": true}  | best_of
            prompt_logprobs streamed    | /v1/completions      | {"prompt": "hi", "prompt_logprobs": 1, "stream": true} | prompt_logprobs
            prompt_logprobs over 20     | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "prompt_logprobs": 21} | prompt_logprobs
            zero max_tokens in chat     | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0} | max_tokens
            logprobs over 20            | /v1/completions      | {"prompt": "hi", "logprobs": 21}                | logprobs
            top_logprobs without        | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2} | top_logprobs
            logit_bias not an id        | /v1/completions      | {"prompt": "hi", "logit_bias": {"the": 5}}      | logit_bias
            logit_bias out of vocab     | /v1/completions      | {"prompt": "hi", "logit_bias": {"99999": 5}}    | logit_bias
            logit_bias over 100         | /v1/completions      | {"prompt": "hi", "logit_bias": {"5": 500}}      | logit_bias
            presence_penalty over 2     | /v1/completions      | {"prompt": "hi", "presence_penalty": 3}         | presence_penalty
            stop_token_ids a string     | /v1/completions      | {"prompt": "hi", "stop_token_ids": "1"}         | stop_token_ids
            min_tokens over max_tokens  | /v1/completions      | {"prompt": "hi", "min_tokens": 9, "max_tokens": 4} | min_tokens
            best_of in chat             | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "best_of": 2} | best_of
            skip_special_tokens a word  | /v1/completions      | {"prompt": "hi", "skip_special_tokens": "no"}   | skip_special_tokens
            a bad prompt in a list      | /v1/completions      | {"prompt": ["hi", [1, 99999]]}                  | prompt
            stream_options unknown      | /v1/completions      | {"prompt": "hi", "stream": true, "stream_options": {"include_usage": true, "frobnicate": true}} | stream_options.frobnicate
            continuous usage alone      | /v1/completions      | {"prompt": "hi", "stream": true, "stream_options": {"continuous_usage_stats": true}} | stream_options.continuous_usage_stats
            top_p out of range          | /v1/completions      | {"prompt": "hi", "top_p": 1.5}                  |
            token id out of range       | /v1/completions      | {"prompt": [1, 99999]}                          | prompt
            stream_options alone        | /v1/completions      | {"prompt": "hi", "stream_options": {}}          | stream_options
            messages missing            | /v1/chat/completions | {"max_tokens": 4}                               | messages
            messages a string           | /v1/chat/completions | {"messages": "hi"}                              | messages
            message without role        | /v1/chat/completions | {"messages": [{"content": "hi"}]}               | messages[0].role
            message without content     | /v1/chat/completions | {"messages": [{"role": "user"}]}                | messages[0].content
            message content null        | /v1/chat/completions | {"messages": [{"role": "user", "content": null}]} | messages[0].content
            message unknown role        | /v1/chat/completions | {"messages": [{"role": "wizard", "content": "hi"}]} | messages[0].role
            second message bad          | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 5}]} | messages[1].content
            message a string            | /v1/chat/completions | {"messages": ["hi"]}                            | messages[0]
            image content part          | /v1/chat/completions | {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]} | messages[0].content
            audio modalities            | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "modalities": ["text", "audio"]} | modalities
            both ends of a chat prompt  | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": true, "continue_final_message": true} | continue_final_message
            chat_template_kwargs a list | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "chat_template_kwargs": [1]} | chat_template_kwargs
            a bad tool call in history  | /v1/chat/completions | {"messages": [{"role": "assistant", "content": "x", "tool_calls": [{"function": {}}]}]} | messages[0].tool_calls[0]
            tool_call_id on a user      | /v1/chat/completions | {"messages": [{"role": "user", "content": "x", "tool_call_id": "1"}]} | messages[0].tool_call_id
            tools without a template    | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f"}}]} | tools
            a tool without a name       | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {}}]} | tools[0]
            response_format json_schema | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema"}} | response_format
            tool_choice required        | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"} | tool_choice
            suffix                      | /v1/completions      | {"prompt": "hi", "suffix": "end"}               | suffix
            an unknown field            | /v1/completions      | {"prompt": "hi", "frobnicate": 1}               | frobnicate
            guided_grammar, rule unknown | /v1/completions     | {"prompt": "hi", "guided_grammar": "root ::= x"} | guided_grammar
            grammar left-recursive      | /v1/completions      | {"prompt": "hi", "grammar": "root ::= root \\"a\\""} | grammar
            structured_outputs.grammar not GBNF | /v1/completions | {"prompt": "hi", "structured_outputs": {"grammar": "root = x"}} | structured_outputs
            a lookahead pattern         | /v1/completions      | {"prompt": "hi", "guided_json": {"type": "string", "pattern": "(?=a)b"}} | guided_json
            a regex with a backreference | /v1/completions     | {"prompt": "hi", "guided_regex": "(a)\\\\1"}   | guided_regex
            two grammars                | /v1/completions      | {"prompt": "hi", "guided_choice": ["a"], "response_format": {"type": "json_object"}} | guided_choice
            guided_choice empty         | /v1/completions      | {"prompt": "hi", "guided_choice": []}           | guided_choice
            guided_json not a schema    | /v1/completions      | {"prompt": "hi", "guided_json": "{nope"}        | guided_json
            response_format unknown     | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "yaml"}} | response_format
            grammar with min_tokens     | /v1/completions      | {"prompt": "hi", "guided_choice": ["a"], "min_tokens": 2} | min_tokens
            grammar with ignore_eos     | /v1/completions      | {"prompt": "hi", "guided_choice": ["a"], "ignore_eos": true} | ignore_eos
            """)
    void invalidRequestsGetA400WithAnOpenAiErrorBody(String name, String path, String body, String param) throws Exception {
        HttpResponse<String> response = send(post(main.uri(path), body));
        assertEquals(400, response.statusCode(), response.body());
        JsonNode error = assertErrorBody(response).get("error");
        assertEquals("invalid_request_error", error.get("type").asText());
        if (param != null) {
            assertEquals(param, error.get("param").asText(), response.body());
        }
        assertOk(main);
    }

    /** A model the server does not serve is not found (404), as OpenAI and vLLM answer, naming the one it serves. */
    @Test
    void anUnknownModelIsNotFound() throws Exception {
        for (String[] request : new String[][] {{"/v1/completions", "{\"prompt\": \"hi\", \"model\": \"gpt-4\"}"},
                {"/v1/chat/completions", "{\"model\": \"x\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}"}}) {
            HttpResponse<String> response = send(post(main.uri(request[0]), request[1]));
            assertEquals(404, response.statusCode(), response.body());
            JsonNode error = assertErrorBody(response).get("error");
            assertEquals("model_not_found", error.get("code").asText());
            assertTrue(error.get("message").asText().contains("this server serves \"ember-tiny\""), response.body());
        }
        assertOk(main);
    }

    @Test
    void aPromptThatCanNeverFitNamesTheLimit() throws Exception {
        HttpResponse<String> response = send(post(main.uri("/v1/completions"), completion("and the ".repeat(1200), 4).toString()));
        assertEquals(400, response.statusCode(), response.body());
        assertTrue(assertErrorBody(response).at("/error/message").asText().contains("2048"), response.body());
    }

    @Test
    void aBodyOverTheLimitGetsA413() throws Exception {
        String big = completion("and ".repeat(MAX_REQUEST_BYTES / 4 + 100), 4).toString();
        HttpResponse<String> response = send(post(main.uri("/v1/completions"), big));
        assertEquals(413, response.statusCode(), response.body());
        assertTrue(assertErrorBody(response).at("/error/message").asText().contains(String.valueOf(MAX_REQUEST_BYTES)));
        assertOk(main);
    }

    @Test
    void unknownPathsAndMethodsAreNamed() throws Exception {
        HttpResponse<String> missing = send(HttpRequest.newBuilder(main.uri("/v1/embeddings")).GET().build());
        assertEquals(404, missing.statusCode());
        assertErrorBody(missing);
        HttpResponse<String> wrongMethod = send(HttpRequest.newBuilder(main.uri("/v1/completions")).GET().build());
        assertEquals(405, wrongMethod.statusCode());
        assertErrorBody(wrongMethod);
        JsonNode models = JSON.readTree(send(HttpRequest.newBuilder(main.uri("/v1/models")).GET().build()).body());
        assertEquals("ember-tiny", models.at("/data/0/id").asText());
        assertEquals(2048, models.at("/data/0/max_model_len").asInt());
        assertEquals(200, send(HttpRequest.newBuilder(main.uri("/health")).GET().build()).statusCode());
    }

    @Test
    void warmUpAnswersEveryKindWhileHealthSaysWarmingUp() throws Exception {
        try (Served served = Served.start(new OpenAiServer.Config("127.0.0.1", 0, "sesame", "ember-tiny", MAX_REQUEST_BYTES,
                Duration.ofSeconds(30)))) {
            int[] answered = new int[1];
            Thread warmUp = Thread.ofVirtual().start(() -> {
                try {
                    answered[0] = served.server().warmUp(40, 8, Duration.ofSeconds(60));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            boolean sawWarming = false;
            while (warmUp.isAlive()) {
                HttpResponse<String> health = send(HttpRequest.newBuilder(served.uri("/health")).GET().build());
                if (health.statusCode() == 503) {
                    assertEquals("warming up", JSON.readTree(health.body()).get("status").asText());
                    sawWarming = true;
                }
            }
            warmUp.join();
            assertTrue(sawWarming, "/health answered 503 while warming up");
            assertEquals(40, answered[0], "every warm-up request answered as expected (the API key sent)");
            ServingMetrics metrics = served.engine().metrics();
            assertEquals(0, metrics.promptTokens() + metrics.generationTokens() + metrics.failedRequests()
                    + metrics.finishedRequests(FinishReason.LENGTH) + metrics.endToEndLatency().count(),
                    "/metrics counts nothing of the warm-up");
            HttpResponse<String> health = send(HttpRequest.newBuilder(served.uri("/health")).GET().build());
            assertEquals(200, health.statusCode());
            assertEquals(0, served.server().warmUp(0, 8, Duration.ofSeconds(1)));
        }
    }

    @Test
    void anApiKeyGuardsV1AndLeavesHealthAndMetricsOpen() throws Exception {
        try (Served keyed = Served.start(new OpenAiServer.Config("127.0.0.1", 0, "sesame", "ember-tiny", MAX_REQUEST_BYTES,
                Duration.ofSeconds(30)).withAllowedOrigins(List.of("https://app.example")))) {
            // A browser's preflight carries no key; an allowed origin gets the CORS headers, another none.
            HttpResponse<String> preflight = send(HttpRequest.newBuilder(keyed.uri("/v1/completions"))
                    .method("OPTIONS", HttpRequest.BodyPublishers.noBody()).header("Origin", "https://app.example")
                    .header("Access-Control-Request-Method", "POST").header("Access-Control-Request-Headers", "authorization, content-type").build());
            assertEquals(204, preflight.statusCode(), preflight.body());
            assertEquals("https://app.example", preflight.headers().firstValue("Access-Control-Allow-Origin").orElse(null));
            assertTrue(preflight.headers().firstValue("Access-Control-Allow-Methods").orElse("").contains("POST"));
            HttpResponse<String> foreign = send(HttpRequest.newBuilder(keyed.uri("/health")).header("Origin", "https://evil.example").GET().build());
            assertTrue(foreign.headers().firstValue("Access-Control-Allow-Origin").isEmpty());
            String body = completion("A friend", 2).toString();
            HttpResponse<String> none = send(post(keyed.uri("/v1/completions"), body));
            assertEquals(401, none.statusCode());
            assertEquals("invalid_api_key", assertErrorBody(none).at("/error/code").asText());
            HttpRequest wrong = HttpRequest.newBuilder(keyed.uri("/v1/completions")).header("Authorization", "Bearer open")
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build();
            assertEquals(401, send(wrong).statusCode());
            assertEquals(401, send(HttpRequest.newBuilder(keyed.uri("/v1/models")).GET().build()).statusCode());
            // As with vLLM, the key guards /v1 only: health checks and scrapers need none.
            assertEquals(200, send(HttpRequest.newBuilder(keyed.uri("/metrics")).GET().build()).statusCode());
            assertEquals(200, send(HttpRequest.newBuilder(keyed.uri("/health")).GET().build()).statusCode());
            HttpRequest right = HttpRequest.newBuilder(keyed.uri("/v1/completions")).header("Authorization", "Bearer sesame")
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build();
            HttpResponse<String> ok = send(right);
            assertEquals(200, ok.statusCode(), ok.body());
            assertEquals(2, JSON.readTree(ok.body()).at("/usage/completion_tokens").asInt());
        }
    }

    @Test
    void aClientThatDisconnectsMidStreamHasItsRequestCancelledAndItsBlocksFreed() throws Exception {
        long failedBefore = main.engine().metrics().failedRequests();
        ObjectNode body = completion("And the LORD said unto Moses,", 900);
        body.put("stream", true);
        byte[] payload = body.toString().getBytes(StandardCharsets.UTF_8);
        try (Socket socket = new Socket("127.0.0.1", main.server().port())) {
            postCompletion(socket.getOutputStream(), payload);
            BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            int events = 0;
            for (String line = in.readLine(); line != null && events < 5; line = in.readLine()) {
                if (line.startsWith("data: ")) {
                    events++;
                }
            }
            assertEquals(5, events, "the stream started");
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (main.engine().metrics().failedRequests() == failedBefore) {
            assertTrue(System.nanoTime() < deadline, "the request was not cancelled after its client left");
            Thread.sleep(20);
        }
        assertAllBlocksFree(main);
        assertOk(main);
    }

    @Test
    void aClientThatLeavesBeforeAWholeAnswerHasItsRequestCancelledAndItsBlocksFreed() throws Exception {
        long failedBefore = main.engine().metrics().failedRequests();
        long finishedBefore = finished(main);
        byte[] payload = completion("And the LORD said unto Moses,", 900).toString().getBytes(StandardCharsets.UTF_8);
        try (Socket socket = new Socket("127.0.0.1", main.server().port())) {
            postCompletion(socket.getOutputStream(), payload);
            long started = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (main.engine().stats().running() == 0) {  // the engine has it: now leave
                assertTrue(System.nanoTime() < started, "the request never started");
                Thread.sleep(1);
            }
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (main.engine().metrics().failedRequests() == failedBefore) {
            assertTrue(System.nanoTime() < deadline, "the request was not cancelled after its client left");
            Thread.sleep(20);
        }
        assertEquals(finishedBefore, finished(main), "it ran to its end instead");
        assertAllBlocksFree(main);
        assertOk(main);
    }

    /** Writes a POST of {@code payload} to /v1/completions by hand, as HTTP/1.1 on a connection the test holds. */
    private static void postCompletion(OutputStream out, byte[] payload) throws IOException {
        postCompletion(out, payload, "");
    }

    private static void postCompletion(OutputStream out, byte[] payload, String headers) throws IOException {
        out.write(("POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" + headers
                + "Content-Length: " + payload.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        out.write(payload);
        out.flush();
    }

    private static long finished(Served served) {
        return served.engine().metrics().finishedRequests(FinishReason.STOP) + served.engine().metrics().finishedRequests(FinishReason.LENGTH);
    }

    @Test
    void aPipelinedRequestBehindAWholeAnswerGetsItsAnswerOrAClosedConnection() throws Exception {
        byte[] first = completion("In the beginning", 300).toString().getBytes(StandardCharsets.UTF_8);
        byte[] second = completion("Blessed is the man", 3).toString().getBytes(StandardCharsets.UTF_8);
        try (Socket socket = new Socket("127.0.0.1", main.server().port())) {
            postCompletion(socket.getOutputStream(), first);
            Thread.sleep(50);
            postCompletion(socket.getOutputStream(), second, "Connection: close\r\n");  // either way, the server closes
            socket.setSoTimeout(60_000);
            String all = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(all.startsWith("HTTP/1.1 200"), all);
            // The first answer is whole; the second is either answered or refused by the connection's close after the first.
            int answers = all.split("HTTP/1.1 200", -1).length - 1;
            assertTrue(answers == 2 || all.toLowerCase(Locale.ROOT).contains("connection: close"), all);
        }
        assertAllBlocksFree(main);
        assertOk(main);
    }

    @Test
    void metricsParseAsPrometheusTextAndTheirCountersMove() throws Exception {
        Map<String, Double> before = metrics(main);
        HttpResponse<String> response = send(post(main.uri("/v1/completions"), completion("Blessed is the man", 7).toString()));
        assertEquals(200, response.statusCode());
        Map<String, Double> after = metrics(main);
        String model = "{model_name=\"ember-tiny\"";
        Function<String, Double> delta = name -> after.get(name) - before.get(name);
        assertEquals(7, delta.apply("ember_generation_tokens_total" + model + "}"));
        assertEquals(JSON.readTree(response.body()).at("/usage/prompt_tokens").asDouble(), delta.apply("ember_prompt_tokens_total" + model + "}"));
        assertEquals(1, delta.apply("ember_request_success_total" + model + ",finished_reason=\"length\"}"));
        assertEquals(1, delta.apply("ember_time_to_first_token_seconds_count" + model + "}"));
        assertEquals(6, delta.apply("ember_inter_token_latency_seconds_count" + model + "}"));
        assertEquals(1, delta.apply("ember_e2e_request_latency_seconds_count" + model + "}"));
        // Seven tokens take seven steps; the step count is published just after each step, so the last may lag.
        assertTrue(delta.apply("ember_engine_steps_total" + model + "}") >= 6);
        for (String gauge : List.of("ember_num_requests_running", "ember_num_requests_waiting", "ember_kv_cache_usage_ratio",
                "ember_prefix_cache_hit_rate")) {
            assertTrue(after.containsKey(gauge + model + "}"), gauge);
        }
    }

    @Test
    void shutdownDrainsStreamsInFlightAndThenRefusesConnections() throws Exception {
        Served draining = Served.start((String) null);
        ObjectNode body = completion("In the beginning", 120);
        body.put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        CompletableFuture<HttpResponse<String>> inFlight = client.sendAsync(post(draining.uri("/v1/completions"), body.toString()),
                HttpResponse.BodyHandlers.ofString());
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (draining.engine().stats().running() == 0) {
            assertTrue(System.nanoTime() < deadline, "the request never started");
            Thread.sleep(5);
        }
        draining.close();
        HttpResponse<String> response = inFlight.join();
        Stream stream = Stream.parse(response.body(), false);
        assertTrue(stream.done());
        assertEquals(120, stream.usage().get("completion_tokens").asInt(), "the request in flight was finished, not cut");
        assertThrows(ConnectException.class, () -> send(post(draining.uri("/v1/completions"), completion("A", 1).toString())));
    }

    /**
     * A speculating server (n-gram lookup, 4 drafted tokens) answers greedy requests with the target's own tokens and
     * counts its drafts in /metrics under vLLM's names: drafts, drafted and accepted tokens, and accepted tokens by
     * position, which add up to the accepted ones and fall from each position to the next. A server that does not
     * speculate has none of them.
     */
    @Test
    void speculationIsCountedInMetricsUnderVllmsNames() throws Exception {
        String prompt = "The quick brown fox jumps over the lazy dog. The quick brown fox";
        try (Served speculating = Served.start(new OpenAiServer.Config("127.0.0.1", 0, null, "ember-tiny", MAX_REQUEST_BYTES,
                Duration.ofSeconds(30)), new Speculation(new NgramProposer(1, 3), 4, 64))) {
            HttpResponse<String> response = send(post(speculating.uri("/v1/completions"), completion(prompt, 40).toString()));
            assertEquals(200, response.statusCode(), response.body());
            assertEquals(alone(tokenizer.encode(prompt), 40).text(), JSON.readTree(response.body()).at("/choices/0/text").asText());
            // Logprobs and min_tokens speculate too, and answer as a server that does not speculate.
            ObjectNode withLogprobs = completion(prompt, 24).put("logprobs", 2).put("min_tokens", 8).put("ignore_eos", false);
            JsonNode speculated = JSON.readTree(send(post(speculating.uri("/v1/completions"), withLogprobs.toString())).body());
            JsonNode plain = JSON.readTree(send(post(main.uri("/v1/completions"), withLogprobs.toString())).body());
            assertEquals(plain.at("/choices/0/text"), speculated.at("/choices/0/text"));
            assertEquals(plain.at("/choices/0/logprobs/tokens"), speculated.at("/choices/0/logprobs/tokens"));
            JsonNode plainLogprobs = plain.at("/choices/0/logprobs/token_logprobs");
            for (int t = 0; t < plainLogprobs.size(); t++) {
                assertEquals(plainLogprobs.get(t).asDouble(), speculated.at("/choices/0/logprobs/token_logprobs/" + t).asDouble(), 1e-4);
            }

            Map<String, Double> m = metrics(speculating);
            String label = "{model_name=\"ember-tiny\"";
            double drafts = m.get("ember_spec_decode_num_drafts_total" + label + "}");
            double drafted = m.get("ember_spec_decode_num_draft_tokens_total" + label + "}");
            double accepted = m.get("ember_spec_decode_num_accepted_tokens_total" + label + "}");
            assertTrue(drafts > 0 && accepted > 0 && accepted <= drafted && drafted <= 4 * drafts, m.toString());
            double byPosition = 0;
            double previous = Double.POSITIVE_INFINITY;
            for (int position = 0; position < 4; position++) {
                double at = m.get("ember_spec_decode_num_accepted_tokens_per_pos_total" + label + ",position=\"" + position + "\"}");
                assertTrue(at <= previous, "a drafted token is accepted only after the one before it");
                byPosition += at;
                previous = at;
            }
            assertEquals(accepted, byPosition, "the positions' counts add up to the accepted tokens");
        }
        assertTrue(metrics(main).keySet().stream().noneMatch(k -> k.startsWith("ember_spec_decode")),
                "a server that does not speculate exposes no speculation counters");
    }

    static Map<String, Double> metrics(Served served) throws Exception {
        HttpResponse<String> response = send(HttpRequest.newBuilder(served.uri("/metrics")).GET().build());
        assertEquals(200, response.statusCode());
        assertTrue(response.headers().firstValue("Content-Type").orElse("").startsWith("text/plain; version=0.0.4"));
        Pattern sample = Pattern.compile("([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[^}]*\\})? (\\S+)");
        Pattern type = Pattern.compile("# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)");
        Map<String, String> types = new HashMap<>();
        Map<String, Double> values = new HashMap<>();
        for (String line : response.body().split("\n")) {
            if (line.startsWith("# HELP ")) {
                continue;
            }
            Matcher t = type.matcher(line);
            if (t.matches()) {
                types.put(t.group(1), t.group(2));
                continue;
            }
            Matcher m = sample.matcher(line);
            assertTrue(m.matches(), "not a Prometheus sample line: " + line);
            String family = m.group(1).replaceAll("_(bucket|sum|count)$", "");
            assertTrue(types.containsKey(m.group(1)) || types.containsKey(family), "no TYPE before " + line);
            double value = m.group(3).equals("+Inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(m.group(3));
            values.put(m.group(1) + m.group(2), value);
        }
        // Histogram buckets are cumulative, and the +Inf bucket is the count.
        for (Map.Entry<String, String> family : types.entrySet()) {
            if (!family.getValue().equals("histogram")) {
                continue;
            }
            double previous = 0;
            String prefix = family.getKey() + "_bucket{model_name=\"ember-tiny\",le=\"";
            List<String> buckets = values.keySet().stream().filter(k -> k.startsWith(prefix)).toList();
            assertFalse(buckets.isEmpty(), family.getKey());
            for (String bucket : buckets.stream().sorted((a, b) -> Double.compare(bound(a), bound(b))).toList()) {
                assertTrue(values.get(bucket) >= previous, bucket);
                previous = values.get(bucket);
            }
            assertEquals(previous, values.get(family.getKey() + "_count{model_name=\"ember-tiny\"}"));
        }
        return values;
    }

    private static double bound(String bucketKey) {
        String le = bucketKey.substring(bucketKey.indexOf("le=\"") + 4, bucketKey.lastIndexOf('"'));
        return le.equals("+Inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(le);
    }

    static JsonNode assertErrorBody(HttpResponse<String> response) throws IOException {
        JsonNode body = JSON.readTree(response.body());
        JsonNode error = body.get("error");
        assertNotNull(error, response.body());
        for (String field : List.of("message", "type", "param", "code")) {
            assertTrue(error.has(field), "error." + field + " missing: " + response.body());
        }
        assertFalse(error.get("message").asText().isBlank());
        return body;
    }

    /** The server still answers a request after whatever the test did. */
    static void assertOk(Served served) throws Exception {
        assertOk(served.server().baseUrl());
    }

    static void assertOk(String baseUrl) throws Exception {
        HttpResponse<String> ok = postTo(baseUrl + "/v1/completions", completion("A friend", 2).toString());
        assertEquals(200, ok.statusCode(), ok.body());
    }

    static HttpResponse<String> get(String url) throws IOException, InterruptedException {
        return send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(60)).GET().build());
    }

    static HttpResponse<String> postTo(String url, String body) throws IOException, InterruptedException {
        return send(post(URI.create(url), body));
    }

    /** No KV block is held by anything but the prefix cache: cleared, the pool is full again. */
    static void assertAllBlocksFree(Served served) throws InterruptedException {
        assertAllBlocksFree(served.engine());
    }

    static void assertAllBlocksFree(ServingEngine engine) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (engine.stats().running() + engine.stats().waiting() > 0) {
            assertTrue(System.nanoTime() < deadline, "requests still running: " + engine.stats());
            Thread.sleep(10);
        }
        int[] freeAndCapacity = engine.inspect(e -> {
            PrefixCache cache = e.scheduler().prefixCache();
            if (cache != null) {
                cache.clear();
            }
            return new int[] {e.runner().blockAllocator().freeBlocks(), e.runner().blockAllocator().capacity()};
        });
        assertEquals(freeAndCapacity[1], freeAndCapacity[0], "KV blocks leaked");
    }

    /** {@code ember bench client} against the real server: every request completes, token counts from usage. */
    @Test
    void benchClientDrivesTheServer(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        Path result = dir.resolve("client.json");
        var run = dev.ember.cli.GenerateCommandTest.ember("bench", "client", "--base-url", main.server().baseUrl(),
                "--num-prompts", "24", "--random-input-len", "40", "--random-output-len", "12", "--random-vocab-size", "4000",
                "--request-rate", "inf", "--ignore-eos", "--warmup-requests", "2", "--result-file", result.toString());
        assertEquals(0, run.exitCode(), run.err());
        var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(result.toFile());
        assertEquals(24, json.get("completed").asInt(), json.toString());
        assertEquals(24 * 12, json.get("total_output_tokens").asLong(), json.toString());
        assertEquals(24 * 40, json.get("total_input_tokens").asLong(), json.toString());
        assertTrue(json.get("output_throughput").asDouble() > 0);
    }

    /**
     * {@code ember bench client --n 2 --logprobs 3} against the real server, on both endpoints: every request
     * completes with two streamed choices whose every token carries its logprobs (the client checks), and the
     * throughput counts both choices' tokens.
     */
    @ParameterizedTest
    @CsvSource({"/v1/completions", "/v1/chat/completions"})
    void benchClientAsksForChoicesAndLogprobs(String endpoint, @org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        Path result = dir.resolve("client.json");
        var run = dev.ember.cli.GenerateCommandTest.ember("bench", "client", "--base-url", main.server().baseUrl(),
                "--endpoint", endpoint, "--tokenizer", MODEL.toString(), "--num-prompts", "8", "--random-input-len", "24",
                "--random-output-len", "10", "--ignore-eos", "--warmup-requests", "1", "--n", "2", "--logprobs", "3",
                "--result-file", result.toString());
        assertEquals(0, run.exitCode(), run.err());
        JsonNode json = JSON.readTree(result.toFile());
        assertEquals(8, json.get("completed").asInt(), json.toString());
        assertEquals(8 * 2 * 10, json.get("total_output_tokens").asLong(), "both choices of every request counted");
        assertEquals(2, json.get("n").asInt());
        assertEquals(3, json.get("logprobs").asInt());
        assertTrue(run.out().contains("n 2, logprobs 3"), run.out());
        double perChoiceTpot = json.get("median_tpot_ms").asDouble();
        double itl = json.get("median_itl_ms").asDouble();
        assertTrue(perChoiceTpot > 0 && itl > 0, json.toString());
    }
}
