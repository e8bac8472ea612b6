package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
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
import dev.ember.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * What vLLM users send, over HTTP against a running server on the trained default model: n and best_of, logprobs in
 * both endpoints' formats, echo, logit_bias, min_tokens with stop_token_ids, include_stop_str_in_output, a list of
 * prompts, /tokenize, /detokenize, /version and /ping.
 */
class OpenAiFieldsTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static CpuBackend backend;
    static Model model;
    static Tokenizer tokenizer;
    static ModelRunner referenceRunner;
    static OpenAiServerTest.Served served;
    static String base;

    @BeforeAll
    static void start() {
        backend = new CpuBackend(2);
        model = ModelLoader.load(OpenAiServerTest.MODEL);
        tokenizer = Tokenizer.load(OpenAiServerTest.MODEL);
        referenceRunner = backend.load(model, KvCacheSpec.forTokens(model.config(), 1024, 16), Progress.NONE);
        OpenAiServerTest.backend = backend;
        OpenAiServerTest.model = model;
        OpenAiServerTest.tokenizer = tokenizer;
        served = OpenAiServerTest.Served.start((String) null);
        base = served.server().baseUrl();
    }

    @AfterAll
    static void stop() {
        served.close();
        referenceRunner.close();
        tokenizer.close();
        model.close();
        backend.close();
    }

    static GenerationResult alone(String prompt, int maxTokens) {
        return new Generator(LlmEngine.of(referenceRunner, Generator.oneRequest(Generator.DEFAULT_CHUNK_TOKENS), tokenizer))
                .generate(tokenizer.encode(prompt), SamplingParams.greedy(maxTokens).withIgnoreEos(true), p -> { });
    }

    static ObjectNode greedy(String prompt, int maxTokens) {
        return JSON.createObjectNode().put("prompt", prompt).put("max_tokens", maxTokens).put("temperature", 0).put("ignore_eos", true);
    }

    static JsonNode ok(String path, ObjectNode body) throws Exception {
        HttpResponse<String> response = OpenAiServerTest.postTo(base + path, body.toString());
        assertEquals(200, response.statusCode(), response.body());
        return JSON.readTree(response.body());
    }

    @Test
    void nChoicesWithASeedDifferAndCountInUsage() throws Exception {
        ObjectNode body = JSON.createObjectNode().put("prompt", "A friend").put("max_tokens", 8).put("n", 3).put("seed", 7)
                .put("temperature", 1.0).put("ignore_eos", true);
        JsonNode answer = ok("/v1/completions", body);
        assertEquals(3, answer.get("choices").size());
        Set<String> texts = new HashSet<>();
        for (int i = 0; i < 3; i++) {
            assertEquals(i, answer.at("/choices/" + i + "/index").asInt());
            texts.add(answer.at("/choices/" + i + "/text").asText());
        }
        assertTrue(texts.size() > 1, "three sampled choices, all the same: " + texts);
        assertEquals(24, answer.at("/usage/completion_tokens").asInt());
        assertEquals(tokenizer.encode("A friend").length, answer.at("/usage/prompt_tokens").asInt());
        assertEquals(withoutIds(answer), withoutIds(ok("/v1/completions", body)), "the same seed, the same choices");
    }

    private static JsonNode withoutIds(JsonNode answer) {
        return ((ObjectNode) answer.deepCopy()).without(List.of("id", "created"));
    }

    @Test
    void nChoicesStreamInterleavedEachWithItsFinishReason() throws Exception {
        ObjectNode body = greedy("In the beginning", 6).put("n", 2).put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        HttpResponse<String> response = OpenAiServerTest.postTo(base + "/v1/completions", body.toString());
        assertEquals(200, response.statusCode());
        StringBuilder[] texts = {new StringBuilder(), new StringBuilder()};
        String[] finish = new String[2];
        boolean done = false;
        JsonNode usage = null;
        for (String event : response.body().split("\n\n")) {
            String data = event.substring("data: ".length());
            if (data.equals("[DONE]")) {
                done = true;
                continue;
            }
            JsonNode chunk = JSON.readTree(data);
            usage = chunk.hasNonNull("usage") ? chunk.get("usage") : usage;
            for (JsonNode choice : chunk.get("choices")) {
                int i = choice.get("index").asInt();
                texts[i].append(choice.get("text").asText());
                if (!choice.get("finish_reason").isNull()) {
                    finish[i] = choice.get("finish_reason").asText();
                }
            }
        }
        assertTrue(done);
        String reference = alone("In the beginning", 6).text();
        assertEquals(reference, texts[0].toString());
        assertEquals(reference, texts[1].toString(), "greedy: both choices alike");
        assertArrayEquals(new String[] {"length", "length"}, finish);
        assertEquals(12, usage.get("completion_tokens").asInt());
    }

    /** vLLM's continuous usage: every chunk carries the usage so far, the completion tokens counting up to the total. */
    @Test
    void continuousUsageCountsInEveryChunk() throws Exception {
        ObjectNode body = greedy("In the beginning", 6).put("stream", true);
        body.putObject("stream_options").put("include_usage", true).put("continuous_usage_stats", true);
        HttpResponse<String> response = OpenAiServerTest.postTo(base + "/v1/completions", body.toString());
        assertEquals(200, response.statusCode());
        int last = -1;
        for (String event : response.body().split("\n\n")) {
            String data = event.substring("data: ".length());
            if (data.equals("[DONE]")) {
                continue;
            }
            JsonNode usage = JSON.readTree(data).get("usage");
            assertTrue(usage.isObject(), data);
            int completion = usage.get("completion_tokens").asInt();
            assertTrue(completion >= last && completion <= 6, data);
            assertEquals(usage.get("prompt_tokens").asInt() + completion, usage.get("total_tokens").asInt());
            last = completion;
        }
        assertEquals(6, last, "the last chunk counts every token");
    }

    @Test
    void bestOfReturnsTheMostLikelyOfItsSequences() throws Exception {
        ObjectNode body = JSON.createObjectNode().put("prompt", "The king of Israel").put("max_tokens", 6).put("best_of", 4)
                .put("seed", 3).put("temperature", 1.0).put("ignore_eos", true).put("logprobs", 0);
        JsonNode best = ok("/v1/completions", body);
        assertEquals(1, best.get("choices").size());
        double bestSum = sum(best.at("/choices/0/logprobs/token_logprobs"));
        JsonNode all = ok("/v1/completions", body.put("n", 4));
        for (JsonNode choice : all.get("choices")) {
            assertTrue(sum(choice.at("/logprobs/token_logprobs")) <= bestSum + 1e-4, "a sequence more likely than the best");
        }
        body.remove("logprobs");
        body.put("n", 1);
        assertTrue(ok("/v1/completions", body).at("/choices/0/logprobs").isNull(), "logprobs only when asked for");
    }

    private static double sum(JsonNode values) {
        double sum = 0;
        for (JsonNode v : values) {
            sum += v.asDouble();
        }
        return sum;
    }

    /** Greedy, unpenalised: each token is the most likely one, so its logprob heads its own top list. */
    @Test
    void completionLogprobsListEachTokenWithItsTopAlternatives() throws Exception {
        // A prompt whose 8 greedy tokens hold no special token, which the text leaves out and the token list names.
        JsonNode answer = ok("/v1/completions", greedy("To install a package on Debian,", 8).put("logprobs", 3));
        JsonNode logprobs = answer.at("/choices/0/logprobs");
        assertEquals(8, logprobs.get("tokens").size());
        StringBuilder joined = new StringBuilder();
        int offset = 0;
        for (int i = 0; i < 8; i++) {
            String token = logprobs.get("tokens").get(i).asText();
            double logprob = logprobs.get("token_logprobs").get(i).asDouble();
            JsonNode top = logprobs.get("top_logprobs").get(i);
            assertTrue(top.size() <= 3 && top.size() >= 1);
            assertTrue(logprob <= 0);
            double best = Double.NEGATIVE_INFINITY;
            for (var it = top.fields(); it.hasNext(); ) {
                best = Math.max(best, it.next().getValue().asDouble());
            }
            assertEquals(best, logprob, 1e-5, "the greedy token is the most likely");
            assertEquals(offset, logprobs.get("text_offset").get(i).asInt());
            offset += token.length();
            joined.append(token);
        }
        assertEquals(answer.at("/choices/0/text").asText(), joined.toString());
    }

    @Test
    void chatLogprobsFollowTheChatFormat() throws Exception {
        ObjectNode body = JSON.createObjectNode().put("max_tokens", 5).put("temperature", 0).put("ignore_eos", true)
                .put("logprobs", true).put("top_logprobs", 2);
        body.putArray("messages").addObject().put("role", "user").put("content", "Who is wise?");
        JsonNode content = ok("/v1/chat/completions", body).at("/choices/0/logprobs/content");
        assertEquals(5, content.size());
        for (JsonNode entry : content) {
            assertTrue(entry.get("token").isTextual());
            assertTrue(entry.get("logprob").asDouble() <= 0);
            assertTrue(entry.get("bytes").isArray());
            assertEquals(2, entry.get("top_logprobs").size());
            assertEquals(entry.get("logprob").asDouble(), entry.at("/top_logprobs/0/logprob").asDouble(), 1e-5);
        }
    }

    @Test
    void echoPrefixesThePrompt() throws Exception {
        JsonNode answer = ok("/v1/completions", greedy("A friend in need", 4).put("echo", true));
        assertEquals("A friend in need" + alone("A friend in need", 4).text(), answer.at("/choices/0/text").asText());
    }

    /**
     * What lm-evaluation-harness asks to score a continuation: the context and continuation as token ids, echoed with
     * logprobs, and no token (or one) generated. The continuation here is the model's own greedy output, so each of its
     * tokens must score as it scored when generated, and head its own top list (lm-eval's "is greedy").
     */
    @ParameterizedTest
    @ValueSource(ints = {0, 1})
    void echoWithLogprobsScoresThePromptAsLmEvalAsks(int maxTokens) throws Exception {
        String context = "To install a package on Debian,";
        JsonNode generated = ok("/v1/completions", greedy(context, 6).put("logprobs", 1)).at("/choices/0/logprobs");
        int[] contextIds = tokenizer.encode(context);
        int[] continuation = alone(context, 6).tokens();
        ObjectNode body = JSON.createObjectNode().put("max_tokens", maxTokens).put("temperature", 0).put("logprobs", 1)
                .put("echo", true);
        var prompt = body.putArray("prompt").addArray();
        for (int id : contextIds) {
            prompt.add(id);
        }
        for (int id : continuation) {
            prompt.add(id);
        }
        JsonNode choice = ok("/v1/completions", body).at("/choices/0");
        JsonNode logprobs = choice.get("logprobs");
        int total = contextIds.length + continuation.length;
        assertEquals(total + maxTokens, logprobs.get("tokens").size(), "the prompt's tokens, then the generated one if any");
        assertTrue(logprobs.at("/token_logprobs/0").isNull(), "the first prompt token has no log-probability");
        assertTrue(logprobs.at("/top_logprobs/0").isNull());
        for (int i = 1; i < total; i++) {
            assertTrue(logprobs.at("/token_logprobs/" + i).asDouble() <= 0, "position " + i);
            assertEquals(1, logprobs.at("/top_logprobs/" + i).size(), "logprobs = 1: one alternative a position");
        }
        for (int j = 0; j < continuation.length; j++) {
            int i = contextIds.length + j;
            assertEquals(generated.at("/token_logprobs/" + j).asDouble(), logprobs.at("/token_logprobs/" + i).asDouble(), 1e-4,
                    "continuation token " + j + " scores as it did when generated");
            JsonNode top = logprobs.at("/top_logprobs/" + i);
            assertEquals(logprobs.at("/tokens/" + i).asText(), top.fieldNames().next(), "a greedy token heads its top list");
        }
        assertEquals(0, logprobs.at("/text_offset/0").asInt());
        for (int i = 1; i < logprobs.get("tokens").size(); i++) {
            assertEquals(logprobs.at("/text_offset/" + (i - 1)).asInt() + logprobs.at("/tokens/" + (i - 1)).asText().length(),
                    logprobs.at("/text_offset/" + i).asInt());
        }
        String echoed = tokenizer.decode(concat(contextIds, continuation), true);
        assertTrue(choice.get("text").asText().startsWith(echoed), "the text starts with the prompt");
        if (maxTokens == 0) {
            assertEquals(echoed, choice.get("text").asText(), "max_tokens 0: the prompt alone");
            assertEquals("length", choice.get("finish_reason").asText());
        }
        JsonNode again = ok("/v1/completions", body);
        assertEquals(maxTokens, again.at("/usage/completion_tokens").asInt());
        assertEquals(logprobs, again.at("/choices/0/logprobs"), "a prompt scored again, its blocks now in the prefix cache");
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** vLLM's prompt_logprobs: null, then per position the prompt's token with its rank, then the most likely ones. */
    @Test
    void promptLogprobsListEachPromptTokenWithItsRank() throws Exception {
        String prompt = "A friend in need is a friend indeed";
        int[] ids = tokenizer.encode(prompt);
        JsonNode answer = ok("/v1/completions", greedy(prompt, 2).put("prompt_logprobs", 2).put("echo", true).put("logprobs", 0));
        JsonNode scores = answer.at("/choices/0/prompt_logprobs");
        JsonNode echoed = answer.at("/choices/0/logprobs/token_logprobs");
        assertEquals(ids.length, scores.size());
        assertTrue(scores.get(0).isNull());
        for (int p = 1; p < ids.length; p++) {
            JsonNode position = scores.get(p);
            JsonNode own = position.get(Integer.toString(ids[p]));
            assertNotNull(own, "position " + p + " lists its own token first");
            assertEquals(Integer.toString(ids[p]), position.fieldNames().next());
            assertEquals(echoed.get(p).asDouble(), own.get("logprob").asDouble(), 1e-6, "the same score as the echo's");
            assertEquals(tokenizer.decode(new int[] {ids[p]}, false), own.get("decoded_token").asText());
            int rank = own.get("rank").asInt();
            assertTrue(rank >= 1);
            assertEquals(rank <= 2 ? 2 : 3, position.size(), "the own token, and the two most likely besides it");
            for (var it = position.fields(); it.hasNext(); ) {
                JsonNode entry = it.next().getValue();
                assertTrue(entry.get("logprob").asDouble() > own.get("logprob").asDouble() == entry.get("rank").asInt() < rank
                        || entry == own, "ranks follow the log-probabilities at position " + p);
            }
        }
        ObjectNode chat = JSON.createObjectNode().put("max_tokens", 2).put("temperature", 0).put("prompt_logprobs", 0);
        chat.putArray("messages").addObject().put("role", "user").put("content", "Who is wise?");
        JsonNode chatScores = ok("/v1/chat/completions", chat).get("prompt_logprobs");
        assertTrue(chatScores.get(0).isNull());
        assertTrue(chatScores.size() > 5, "the chat template's tokens are the prompt");
        assertEquals(1, chatScores.get(1).size(), "prompt_logprobs 0: the own token alone");
    }

    @Test
    void echoWithLogprobsStreamsThePromptsScoresFirst() throws Exception {
        String prompt = "In the beginning";
        ObjectNode body = greedy(prompt, 3).put("echo", true).put("logprobs", 1).put("stream", true);
        HttpResponse<String> response = OpenAiServerTest.postTo(base + "/v1/completions", body.toString());
        assertEquals(200, response.statusCode(), response.body());
        List<JsonNode> chunks = new ArrayList<>();
        for (String event : response.body().split("\n\n")) {
            String data = event.substring("data: ".length());
            if (!data.equals("[DONE]")) {
                chunks.add(JSON.readTree(data).at("/choices/0"));
            }
        }
        JsonNode first = chunks.getFirst();
        assertEquals(prompt, first.get("text").asText());
        assertEquals(tokenizer.encode(prompt).length, first.at("/logprobs/tokens").size());
        assertTrue(first.at("/logprobs/token_logprobs/0").isNull());
        StringBuilder text = new StringBuilder();
        chunks.forEach(c -> text.append(c.get("text").asText()));
        assertEquals(prompt + alone(prompt, 3).text(), text.toString());
    }

    /** Every string bounded: whatever the model likes, each output of the schema ends within max_tokens. */
    private static final String PERSON = """
            {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}, "age": {"type": "integer"},
             "pets": {"type": "array", "items": {"enum": ["cat", "dog"]}, "maxItems": 2}}, "required": ["name", "age"]}""";

    /**
     * Structured output as OpenAI's clients ask for it (response_format json_schema and json_object, in chat) and as
     * vLLM's do (guided_json, guided_choice, structured_outputs): sampled outputs of the small default model, which
     * knows nothing of JSON, are whole texts of the grammar, ended by the model's own end-of-sequence token.
     */
    @Test
    void structuredOutputHoldsSampledOutputsToTheGrammar() throws Exception {
        for (int seed = 0; seed < 4; seed++) {
            ObjectNode chat = JSON.createObjectNode().put("max_tokens", 300).put("temperature", 1.0).put("seed", seed);
            chat.putArray("messages").addObject().put("role", "user").put("content", "Describe a person.");
            chat.putObject("response_format").put("type", "json_schema").putObject("json_schema").put("name", "person")
                    .set("schema", JSON.readTree(PERSON));
            JsonNode choice = ok("/v1/chat/completions", chat).at("/choices/0");
            assertEquals("stop", choice.get("finish_reason").asText(), choice.toString());
            JsonNode person = JSON.readTree(choice.at("/message/content").asText());
            assertTrue(person.get("name").isTextual() && person.get("name").asText().length() <= 10, person.toString());
            assertTrue(person.get("age").isIntegralNumber(), person.toString());
            for (JsonNode pet : person.path("pets")) {
                assertTrue(Set.of("cat", "dog").contains(pet.asText()), person.toString());
            }
        }
        ObjectNode guided = JSON.createObjectNode().put("prompt", "The colour of the sky is").put("max_tokens", 20)
                .put("temperature", 1.0).put("seed", 1);
        guided.putArray("guided_choice").add("blue").add("grey").add("a deep red");
        assertTrue(Set.of("blue", "grey", "a deep red").contains(ok("/v1/completions", guided).at("/choices/0/text").asText()));
        ObjectNode structured = JSON.createObjectNode().put("prompt", "Yes or no?").put("max_tokens", 20).put("temperature", 1.0)
                .put("seed", 7);
        structured.putObject("structured_outputs").putArray("choice").add("yes").add("no");
        assertTrue(Set.of("yes", "no").contains(ok("/v1/completions", structured).at("/choices/0/text").asText()));
        ObjectNode regex = JSON.createObjectNode().put("prompt", "Call me at").put("max_tokens", 30).put("temperature", 1.0).put("seed", 6)
                .put("guided_regex", "\\(\\d{3}\\) \\d{3}-\\d{4}");
        JsonNode phone = ok("/v1/completions", regex).at("/choices/0");
        assertTrue(phone.get("text").asText().matches("\\(\\d{3}\\) \\d{3}-\\d{4}"), phone.toString());
        assertEquals("stop", phone.get("finish_reason").asText());
        ObjectNode dated = JSON.createObjectNode().put("prompt", "When?").put("max_tokens", 300).put("temperature", 1.0)
                .put("seed", 5);
        dated.set("guided_json", JSON.readTree("{\"type\": \"object\", \"properties\": {\"at\": {\"type\": \"string\", "
                + "\"format\": \"date-time\"}}, \"required\": [\"at\"]}"));
        JsonNode datedChoice = ok("/v1/completions", dated).at("/choices/0");
        assertEquals("stop", datedChoice.get("finish_reason").asText(), datedChoice.toString());
        String at = JSON.readTree(datedChoice.get("text").asText()).get("at").asText();
        // RFC 3339's form (the format holds the form and each field's range, not a month's days).
        assertTrue(at.matches("\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])T([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d+)?"
                + "(Z|[+-]\\d{2}:\\d{2})"), at);
        ObjectNode asText = JSON.createObjectNode().put("prompt", "A person:").put("max_tokens", 300).put("seed", 2)
                .put("guided_json", PERSON);
        JsonNode fromText = ok("/v1/completions", asText).at("/choices/0");
        assertEquals("stop", fromText.get("finish_reason").asText());
        assertTrue(JSON.readTree(fromText.get("text").asText()).has("age"), "guided_json as the schema's text");
        // llama.cpp's forms: a json_object response format with a schema, and json_schema at the top.
        ObjectNode llamaChat = JSON.createObjectNode().put("max_tokens", 300).put("seed", 3);
        llamaChat.putArray("messages").addObject().put("role", "user").put("content", "A person, please.");
        llamaChat.putObject("response_format").put("type", "json_object").set("schema", JSON.readTree(PERSON));
        JsonNode llamaChoice = ok("/v1/chat/completions", llamaChat).at("/choices/0");
        assertTrue(JSON.readTree(llamaChoice.at("/message/content").asText()).get("age").isIntegralNumber(), llamaChoice.toString());
        ObjectNode sglang = JSON.createObjectNode().put("prompt", "Call me at").put("max_tokens", 30).put("temperature", 1.0)
                .put("seed", 8).put("regex", "\\(\\d{3}\\) \\d{3}-\\d{4}");  // SGLang's field
        assertTrue(ok("/v1/completions", sglang).at("/choices/0/text").asText().matches("\\(\\d{3}\\) \\d{3}-\\d{4}"));
        ObjectNode llamaText = JSON.createObjectNode().put("prompt", "A person:").put("max_tokens", 300).put("seed", 4);
        llamaText.put("json_schema", PERSON);  // as text, as SGLang sends it
        JsonNode llamaTextChoice = ok("/v1/completions", llamaText).at("/choices/0");
        assertTrue(JSON.readTree(llamaTextChoice.get("text").asText()).get("age").isIntegralNumber(), llamaTextChoice.toString());
    }

    /** A GBNF grammar through each field that carries one: vLLM's, llama.cpp's and SGLang's, on both endpoints. */
    @Test
    void aGbnfGrammarHoldsTheOutputWhicheverFieldCarriesIt() throws Exception {
        String gbnf = """
                root   ::= "Answer: " verdict " (" [0-9]{1,2} "%)"
                verdict ::= "yes" | "no" | "not " ( "sure" | "yet" )
                """;
        java.util.regex.Pattern shape = java.util.regex.Pattern.compile("Answer: (yes|no|not sure|not yet) \\(\\d{1,2}%\\)");
        int seed = 0;
        for (String field : List.of("guided_grammar", "grammar", "ebnf", "structured_outputs")) {
            ObjectNode text = JSON.createObjectNode().put("prompt", "Well?").put("max_tokens", 40).put("temperature", 1.0)
                    .put("seed", seed++);
            if (field.equals("structured_outputs")) {
                text.putObject(field).put("grammar", gbnf);
            } else {
                text.put(field, gbnf);
            }
            JsonNode choice = ok("/v1/completions", text).at("/choices/0");
            assertEquals("stop", choice.get("finish_reason").asText(), field + ": " + choice);
            assertTrue(shape.matcher(choice.get("text").asText()).matches(), field + ": " + choice);
        }
        ObjectNode chat = JSON.createObjectNode().put("max_tokens", 40).put("temperature", 1.0).put("seed", 9).put("grammar", gbnf);
        chat.putArray("messages").addObject().put("role", "user").put("content", "Well?");
        JsonNode answer = ok("/v1/chat/completions", chat).at("/choices/0");
        assertTrue(shape.matcher(answer.at("/message/content").asText()).matches(), answer.toString());
    }

    /** json_object: an object, or a prefix of one where max_tokens cut it (the grammar never leaves it). */
    @Test
    void jsonObjectModeWritesAnObject() throws Exception {
        ObjectNode chat = JSON.createObjectNode().put("max_tokens", 40).put("temperature", 0.7).put("seed", 4).put("n", 3);
        chat.putArray("messages").addObject().put("role", "user").put("content", "Reply in JSON.");
        chat.putObject("response_format").put("type", "json_object");
        for (JsonNode choice : ok("/v1/chat/completions", chat).get("choices")) {
            String content = choice.at("/message/content").asText().strip();
            assertTrue(content.startsWith("{"), content);
            if (choice.get("finish_reason").asText().equals("stop")) {
                assertTrue(JSON.readTree(content).isObject(), content);
            }
        }
    }

    /** Further served names (vLLM's --served-model-name takes several): requests may give any, /v1/models lists each. */
    @Test
    void aModelAnswersToEachOfItsServedNames() throws Exception {
        try (OpenAiServerTest.Served aliased = OpenAiServerTest.Served.start(new OpenAiServer.Config("127.0.0.1", 0, null,
                "ember-tiny", 1 << 20, java.time.Duration.ofSeconds(30)).withModelAliases(List.of("claude-sonnet", "tiny")))) {
            String url = aliased.server().baseUrl();
            for (String name : List.of("ember-tiny", "claude-sonnet", "tiny")) {
                HttpResponse<String> response = OpenAiServerTest.postTo(url + "/v1/completions",
                        greedy("Hi", 2).put("model", name).toString());
                assertEquals(200, response.statusCode(), name + ": " + response.body());
            }
            assertEquals(404, OpenAiServerTest.postTo(url + "/v1/completions", greedy("Hi", 2).put("model", "other").toString()).statusCode());
            HttpResponse<String> models = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
                    java.net.URI.create(url + "/v1/models")).build(), HttpResponse.BodyHandlers.ofString());
            List<String> ids = new ArrayList<>();
            JSON.readTree(models.body()).get("data").forEach(m -> ids.add(m.get("id").asText()));
            assertEquals(List.of("ember-tiny", "claude-sonnet", "tiny"), ids);
        }
    }

    /** Fields OpenAI's clients send by habit, which ask nothing a local server does otherwise, are taken. */
    @Test
    void fieldsClientsSendByHabitAreTaken() throws Exception {
        ObjectNode body = JSON.createObjectNode().put("max_tokens", 3).put("store", false).put("service_tier", "auto")
                .put("safety_identifier", "user-7").put("prompt_cache_key", "conversation-3");
        body.putObject("metadata").put("run", "7");
        body.putArray("modalities").add("text");
        body.putArray("messages").addObject().put("role", "user").put("content", "Hi");
        assertEquals(3, ok("/v1/chat/completions", body.put("ignore_eos", true)).at("/usage/completion_tokens").asInt());
    }

    /**
     * vLLM's fields that only take their default here are taken at it (its older benchmark clients send
     * use_beam_search false) and refused otherwise; truncate_prompt_tokens keeps a prompt's last tokens; add_special_tokens
     * decides whether the BOS is added.
     */
    @Test
    void vllmsPromptFieldsAndItsDefaultOnlyFieldsAreRead() throws Exception {
        ObjectNode habits = greedy("Hello", 2).put("use_beam_search", false).put("length_penalty", 1).put("early_stopping", false)
                .put("spaces_between_special_tokens", true).put("priority", 0).put("return_tokens_as_token_ids", false)
                .put("guided_decoding_backend", "xgrammar");
        assertEquals(2, ok("/v1/completions", habits).at("/usage/completion_tokens").asInt());
        for (String field : List.of("use_beam_search", "priority", "spaces_between_special_tokens")) {
            ObjectNode refused = greedy("Hello", 2);
            refused.set(field, field.equals("priority") ? JSON.getNodeFactory().numberNode(1) : JSON.getNodeFactory().booleanNode(
                    field.equals("use_beam_search")));
            HttpResponse<String> response = OpenAiServerTest.postTo(base + "/v1/completions", refused.toString());
            assertEquals(400, response.statusCode(), field);
            assertEquals(field, OpenAiServerTest.assertErrorBody(response).at("/error/param").asText());
        }

        String prompt = "The quick brown fox jumps over the lazy dog and runs away";
        int whole = tokenizer.encode(prompt).length;
        JsonNode cut = ok("/v1/completions", greedy(prompt, 1).put("truncate_prompt_tokens", 4).put("echo", true));
        assertEquals(4, cut.at("/usage/prompt_tokens").asInt());
        int[] ids = tokenizer.encode(prompt);
        String lastFour = tokenizer.decode(java.util.Arrays.copyOfRange(ids, whole - 4, whole), true);
        assertTrue(cut.at("/choices/0/text").asText().startsWith(lastFour), cut + " should echo " + lastFour);
        assertEquals(whole, ok("/v1/completions", greedy(prompt, 1).put("truncate_prompt_tokens", whole + 5)).at("/usage/prompt_tokens").asInt());
        HttpResponse<String> zero = OpenAiServerTest.postTo(base + "/v1/completions", greedy(prompt, 1).put("truncate_prompt_tokens", 0).toString());
        assertEquals(400, zero.statusCode());

        assertEquals(whole - 1, ok("/v1/completions", greedy(prompt, 1).put("add_special_tokens", false)).at("/usage/prompt_tokens").asInt(),
                "without the BOS");
    }

    /**
     * vLLM's allowed_token_ids holds every drawn token to the set; return_token_ids gives the prompt's and the output's
     * ids, whole or streamed (each chunk the ids since the one before); request_id names the answer.
     */
    @Test
    void allowedTokenIdsHoldTheOutputAndReturnTokenIdsShowIt() throws Exception {
        String prompt = "Once upon a time";
        int[] promptIds = tokenizer.encode(prompt);
        int[] allowed = tokenizer.encode(" the a of", false);
        ObjectNode body = JSON.createObjectNode().put("prompt", prompt).put("max_tokens", 12).put("temperature", 1.0).put("seed", 5)
                .put("return_token_ids", true).put("request_id", "my-run-7");
        ArrayNode ids = body.putArray("allowed_token_ids");
        java.util.Arrays.stream(allowed).forEach(ids::add);
        JsonNode whole = ok("/v1/completions", body);
        assertEquals("cmpl-my-run-7", whole.get("id").asText());
        JsonNode choice = whole.at("/choices/0");
        assertEquals(JSON.valueToTree(promptIds), choice.get("prompt_token_ids"));
        List<Integer> generated = new ArrayList<>();
        choice.get("token_ids").forEach(t -> generated.add(t.asInt()));
        assertEquals(12, generated.size(), choice.toString());
        java.util.Set<Integer> set = java.util.Arrays.stream(allowed).boxed().collect(java.util.stream.Collectors.toSet());
        assertTrue(set.containsAll(generated), generated + " within " + set);
        assertEquals(tokenizer.decode(generated.stream().mapToInt(Integer::intValue).toArray(), true), choice.get("text").asText());

        HttpResponse<String> streamed = OpenAiServerTest.postTo(base + "/v1/completions", body.put("stream", true).toString());
        assertEquals(200, streamed.statusCode(), streamed.body());
        List<Integer> streamedIds = new ArrayList<>();
        JsonNode promptGiven = null;
        for (String event : streamed.body().split("\n\n")) {
            String data = event.substring("data: ".length());
            if (!data.equals("[DONE]")) {
                JsonNode c = JSON.readTree(data).at("/choices/0");
                promptGiven = promptGiven == null ? c.get("prompt_token_ids") : promptGiven;
                c.get("token_ids").forEach(t -> streamedIds.add(t.asInt()));
            }
        }
        assertEquals(JSON.valueToTree(promptIds), promptGiven, "the first chunk gives the prompt's ids");
        assertEquals(generated, streamedIds, "the same seed, the same tokens, each given once");

        ObjectNode chat = JSON.createObjectNode().put("max_tokens", 3).put("return_token_ids", true);
        chat.putArray("messages").addObject().put("role", "user").put("content", "Hi");
        JsonNode answer = ok("/v1/chat/completions", chat);
        assertTrue(answer.get("prompt_token_ids").isArray() && answer.get("prompt_token_ids").size() > 0, answer.toString());
        assertEquals(3, answer.at("/choices/0/token_ids").size(), answer.toString());
        assertTrue(answer.get("id").asText().matches("chatcmpl-[0-9a-f]{16}"), answer.toString());

        ObjectNode none = greedy("Hi", 2);
        none.putArray("allowed_token_ids");
        HttpResponse<String> refused = OpenAiServerTest.postTo(base + "/v1/completions", none.toString());
        assertEquals(400, refused.statusCode());
        assertEquals("allowed_token_ids", OpenAiServerTest.assertErrorBody(refused).at("/error/param").asText());
    }

    /**
     * The model's generation_config.json gives the sampling of requests that leave it out (vLLM's --generation-config
     * auto): with a temperature of 0 there, two requests of different seeds and no temperature draw the same greedy
     * text, and one that gives its own temperature samples.
     */
    @Test
    void samplingDefaultsComeFromTheGenerationConfig(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Files.writeString(dir.resolve("generation_config.json"),
                "{\"do_sample\": true, \"temperature\": 0.0, \"top_k\": 20, \"top_p\": 0.95}");
        java.util.Map<String, Double> defaults = dev.ember.model.GenerationConfig.read(dir).requestDefaults();
        assertEquals(java.util.Map.of("temperature", 0.0, "top_k", 20.0, "top_p", (double) 0.95f), defaults);
        try (OpenAiServerTest.Served greedyByDefault = OpenAiServerTest.Served.start(new OpenAiServer.Config("127.0.0.1", 0, null,
                "ember-tiny", 1 << 20, java.time.Duration.ofSeconds(30)).withSamplingDefaults(defaults))) {
            String url = greedyByDefault.server().baseUrl() + "/v1/completions";
            List<String> texts = new ArrayList<>();
            for (int seed : new int[] {1, 2}) {
                ObjectNode body = JSON.createObjectNode().put("prompt", "Once upon a time").put("max_tokens", 12).put("seed", seed)
                        .put("ignore_eos", true);
                texts.add(JSON.readTree(OpenAiServerTest.postTo(url, body.toString()).body()).at("/choices/0/text").asText());
            }
            assertEquals(texts.get(0), texts.get(1), "greedy, whatever the seed");
            assertEquals(alone("Once upon a time", 12).text(), texts.get(0));
            List<String> sampled = new ArrayList<>();
            for (int seed : new int[] {1, 2, 3}) {
                ObjectNode body = JSON.createObjectNode().put("prompt", "Once upon a time").put("max_tokens", 12).put("seed", seed)
                        .put("ignore_eos", true).put("temperature", 1.5).put("top_k", 0).put("top_p", 1.0);
                sampled.add(JSON.readTree(OpenAiServerTest.postTo(url, body.toString()).body()).at("/choices/0/text").asText());
            }
            assertTrue(sampled.stream().distinct().count() > 1, "a request's own temperature samples: " + sampled);
        }
        assertEquals(java.util.Map.of(), dev.ember.model.GenerationConfig.read(OpenAiServerTest.MODEL).requestDefaults(),
                "ember-tiny's file sets only do_sample");
    }

    /**
     * vLLM's --seed: requests that give no seed draw theirs from the server's one generator, so that a server started
     * again answers the same requests, sent in the same order, with the same samples; each request still draws its own.
     */
    @Test
    void aServerSeedMakesUnseededRequestsRepeatable() throws Exception {
        List<List<String>> runs = new ArrayList<>();
        for (int start = 0; start < 2; start++) {
            try (OpenAiServerTest.Served seeded = OpenAiServerTest.Served.start(new OpenAiServer.Config("127.0.0.1", 0, null,
                    "ember-tiny", 1 << 20, java.time.Duration.ofSeconds(30)).withSeed(7L))) {
                String url = seeded.server().baseUrl() + "/v1/completions";
                List<String> texts = new ArrayList<>();
                for (int i = 0; i < 3; i++) {
                    ObjectNode body = JSON.createObjectNode().put("prompt", "Once upon a time").put("max_tokens", 12)
                            .put("ignore_eos", true).put("temperature", 1.5).put("top_k", 0).put("top_p", 1.0);
                    texts.add(JSON.readTree(OpenAiServerTest.postTo(url, body.toString()).body()).at("/choices/0/text").asText());
                }
                runs.add(texts);
            }
        }
        assertEquals(runs.get(0), runs.get(1), "the same seed, the same requests in the same order");
        assertTrue(runs.get(0).stream().distinct().count() > 1, "each request draws a seed of its own: " + runs.get(0));
    }

    /** vLLM's --max-logprobs: a request asking more logprobs (or prompt logprobs) than the server's limit is refused. */
    @Test
    void maxLogprobsLimitsWhatARequestMayAsk() throws Exception {
        try (OpenAiServerTest.Served limited = OpenAiServerTest.Served.start(new OpenAiServer.Config("127.0.0.1", 0, null,
                "ember-tiny", 1 << 20, java.time.Duration.ofSeconds(30)).withMaxLogprobs(2))) {
            String url = limited.server().baseUrl() + "/v1/completions";
            ObjectNode within = JSON.createObjectNode().put("prompt", "A friend").put("max_tokens", 2).put("logprobs", 2);
            var ok = OpenAiServerTest.postTo(url, within.toString());
            assertEquals(200, ok.statusCode(), ok.body());
            assertEquals(2, JSON.readTree(ok.body()).at("/choices/0/logprobs/top_logprobs/0").size());
            for (ObjectNode over : List.of(within.deepCopy().put("logprobs", 3), within.deepCopy().put("prompt_logprobs", 3))) {
                var refused = OpenAiServerTest.postTo(url, over.toString());
                assertEquals(400, refused.statusCode(), refused.body());
                assertTrue(refused.body().contains("logprobs"), refused.body());
            }
        }
        assertThrows(dev.ember.EmberException.class, () -> new OpenAiServer.Config("127.0.0.1", 0, null, "ember-tiny", 1 << 20,
                java.time.Duration.ofSeconds(30)).withMaxLogprobs(21));
    }

    /** vLLM's bad_words: the word's token sequences (alone and after a space) never come, where they came before. */
    @Test
    void badWordsAreNeverGenerated() throws Exception {
        String prompt = "To install a package on Debian,";
        String free = alone(prompt, 40).text();
        assertTrue(free.contains(" package"), free);
        int[] banned = tokenizer.encode(" package", false);
        ObjectNode body = greedy(prompt, 40).put("return_token_ids", true);
        body.putArray("bad_words").add("package");
        JsonNode choice = ok("/v1/completions", body).at("/choices/0");
        int[] ids = JSON.convertValue(choice.get("token_ids"), int[].class);
        for (int i = 0; i + banned.length <= ids.length; i++) {
            assertFalse(java.util.Arrays.equals(java.util.Arrays.copyOfRange(ids, i, i + banned.length), banned),
                    "the banned tokens at " + i + ": " + choice);
        }
        assertNotEquals(free, choice.get("text").asText());
        ObjectNode both = greedy(prompt, 4);
        both.putArray("bad_words").add("x");
        both.putArray("guided_choice").add("a");
        HttpResponse<String> refused = OpenAiServerTest.postTo(base + "/v1/completions", both.toString());
        assertEquals(400, refused.statusCode());
        assertEquals("bad_words", OpenAiServerTest.assertErrorBody(refused).at("/error/param").asText());
    }

    @Test
    void logitBiasForcesAToken() throws Exception {
        int forced = tokenizer.encode(" LORD", false)[0];
        ObjectNode body = greedy("A friend", 5);
        body.putObject("logit_bias").put(String.valueOf(forced), 100);
        JsonNode answer = ok("/v1/completions", body);
        assertEquals(tokenizer.decode(new int[] {forced, forced, forced, forced, forced}), answer.at("/choices/0/text").asText());
    }

    /** The stop token is forced by a bias, masked until min_tokens, then ends the output (counted, not shown). */
    @Test
    void minTokensHoldsBackAStopTokenThatThenEndsTheOutput() throws Exception {
        int stop = tokenizer.encode(" LORD", false)[0];
        ObjectNode body = JSON.createObjectNode().put("prompt", "A friend").put("max_tokens", 20).put("temperature", 0)
                .put("min_tokens", 4);
        body.putArray("stop_token_ids").add(stop);
        body.putObject("logit_bias").put(String.valueOf(stop), 100);
        JsonNode answer = ok("/v1/completions", body);
        assertEquals("stop", answer.at("/choices/0/finish_reason").asText());
        assertEquals(5, answer.at("/usage/completion_tokens").asInt(), answer.toString());
        assertFalse(answer.at("/choices/0/text").asText().contains("LORD"));
        assertEquals(stop, answer.at("/choices/0/stop_reason").asInt(), "vLLM's stop_reason: the stop token");
        body.put("include_stop_str_in_output", true);
        assertTrue(ok("/v1/completions", body).at("/choices/0/text").asText().endsWith(" LORD"));
    }

    @Test
    void includeStopStrInOutputKeepsTheStopString() throws Exception {
        String reference = alone("And the LORD said unto Moses,", 24).text();
        String stop = reference.substring(6, 10);
        ObjectNode body = greedy("And the LORD said unto Moses,", 24);
        body.putArray("stop").add(stop);
        JsonNode stopped = ok("/v1/completions", body);
        String without = stopped.at("/choices/0/text").asText();
        assertEquals(stop, stopped.at("/choices/0/stop_reason").asText(), "vLLM's stop_reason: the stop string");
        body.put("include_stop_str_in_output", true);
        String with = ok("/v1/completions", body).at("/choices/0/text").asText();
        assertEquals(reference.substring(0, reference.indexOf(stop)), without);
        assertEquals(without + stop, with);
        String streamed = OpenAiServerTest.postTo(base + "/v1/completions", body.put("stream", true).toString()).body();
        assertTrue(streamed.contains("\"stop_reason\":" + JSON.writeValueAsString(stop)), "the last chunk says it too: " + streamed);
        assertTrue(ok("/v1/completions", greedy("And the LORD", 3)).at("/choices/0/stop_reason").isNull(), "ended by its length");
    }

    @Test
    void aListOfPromptsGetsItsChoicesInOrder() throws Exception {
        ObjectNode body = JSON.createObjectNode().put("max_tokens", 5).put("temperature", 0).put("ignore_eos", true).put("n", 2);
        body.putArray("prompt").add("A friend").add("In the beginning");
        JsonNode choices = ok("/v1/completions", body).get("choices");
        assertEquals(4, choices.size());
        List<String> expected = List.of(alone("A friend", 5).text(), alone("A friend", 5).text(),
                alone("In the beginning", 5).text(), alone("In the beginning", 5).text());
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            assertEquals(i, choices.get(i).get("index").asInt());
            texts.add(choices.get(i).get("text").asText());
        }
        assertEquals(expected, texts);
    }

    @Test
    void presenceAndFrequencyPenaltiesChangeARepetitiveOutput() throws Exception {
        ObjectNode body = greedy("the the the the the the", 24);
        String plain = ok("/v1/completions", body).at("/choices/0/text").asText();
        String penalised = ok("/v1/completions", body.put("frequency_penalty", 2.0).put("presence_penalty", 2.0))
                .at("/choices/0/text").asText();
        assertNotEquals(plain, penalised);
    }

    @Test
    void tokenizeDetokenizeVersionAndPing() throws Exception {
        JsonNode tokens = ok("/tokenize", JSON.createObjectNode().put("prompt", "The LORD is my shepherd"));
        int[] expected = tokenizer.encode("The LORD is my shepherd");
        assertEquals(expected.length, tokens.get("count").asInt());
        assertEquals(2048, tokens.get("max_model_len").asInt());
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], tokens.get("tokens").get(i).asInt());
        }
        ObjectNode detokenize = JSON.createObjectNode();
        detokenize.set("tokens", tokens.get("tokens"));
        assertEquals("The LORD is my shepherd", ok("/detokenize", detokenize).get("prompt").asText());
        assertEquals(400, OpenAiServerTest.postTo(base + "/detokenize", "{\"tokens\": [99999]}").statusCode());
        assertTrue(JSON.readTree(OpenAiServerTest.get(base + "/version").body()).has("version"));
        assertEquals(200, OpenAiServerTest.get(base + "/ping").statusCode());
    }
}
