package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.model.RopeScaling;
import dev.ember.tokenizer.TokenizerFixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Tool calling in Mistral's format ({@code [TOOL_CALLS] [...]}) over HTTP, on a random-weight Mistral-shaped model
 * with Mistral's vocabulary, its control tokens and Mistral Small 3.1's chat template: forced calls are well formed
 * with nine-character ids, a history's longer ids reach the template cut to their last nine, and the special token that
 * opens a call stays in the text the parser reads.
 */
class MistralToolCallingTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String MISTRAL_ID = "[A-Za-z0-9]{9}";
    private static final int TOOL_CALLS_TOKEN = 32_000 + TokenizerFixtures.MISTRAL_CONTROL_TOKENS.indexOf("[TOOL_CALLS]");
    private static final ModelConfig CONFIG = new ModelConfig(Architecture.MISTRAL, 32, 64, 1, 2, 1, 16,
            32_000 + TokenizerFixtures.MISTRAL_CONTROL_TOKENS.size(), 4096, 1e-5, 1000000, new RopeScaling.None(), false, Biases.NONE,
            0, 1, List.of(2), DType.BF16);
    private static RandomModelServer served;

    @BeforeAll
    static void start() {
        served = RandomModelServer.start(CONFIG, 7, TokenizerFixtures.mistralWithTools(), "mistral-random");
    }

    @AfterAll
    static void stop() {
        served.close();
    }

    private static ObjectNode request(Object toolChoice, boolean stream) throws Exception {
        ObjectNode body = JSON.createObjectNode().put("max_tokens", 120).put("temperature", 1.0).put("seed", 3).put("stream", stream);
        body.putArray("messages").addObject().put("role", "user").put("content", "What is the weather in Oslo?");
        body.set("tools", JSON.readTree(ToolCallingTest.TOOLS));
        body.set("tool_choice", JSON.valueToTree(toolChoice));
        return body;
    }

    private static HttpResponse<String> post(String path, ObjectNode body) throws Exception {
        return OpenAiServerTest.postTo(served.url(path), body.toString());
    }

    @Test
    void aRequiredCallIsWellFormedWithAMistralId() throws Exception {
        for (int seed = 0; seed < 3; seed++) {
            HttpResponse<String> response = post("/v1/chat/completions", request("required", false).put("seed", seed));
            assertEquals(200, response.statusCode(), response.body());
            JsonNode choice = JSON.readTree(response.body()).at("/choices/0");
            assertEquals("tool_calls", choice.get("finish_reason").asText(), choice.toString());
            assertTrue(choice.at("/message/content").isNull(), choice.toString());
            ToolCallingTest.assertWellFormedCall(choice.at("/message/tool_calls/0"), Set.of("weather", "time"), MISTRAL_ID);
        }
    }

    @Test
    void aStreamedNamedCallIsOpenedThenItsArgumentsFollow() throws Exception {
        ObjectNode named = JSON.createObjectNode().put("type", "function");
        named.putObject("function").put("name", "weather");
        HttpResponse<String> streamed = post("/v1/chat/completions", request(named, true));
        assertEquals(200, streamed.statusCode(), streamed.body());
        ToolCallingTest.Streamed choice = ToolCallingTest.Streamed.of(streamed.body());
        assertEquals("tool_calls", choice.finish());
        assertEquals("", choice.content(), "a forced call has no content");
        assertEquals(1, choice.calls().size());
        ToolCallingTest.assertWellFormedCall(choice.calls().getFirst(), Set.of("weather"), MISTRAL_ID);
        assertTrue(streamed.body().split("\"tool_calls\"").length > 3, "the arguments come in pieces: " + streamed.body());
    }

    /**
     * OpenAI's clients send back the ids they were given, or their own longer ones: Mistral's templates take nine
     * characters, so the template sees the last nine (as vLLM sends them) of both the call and its result.
     */
    @Test
    void aHistorysLongIdsReachTheTemplateAsTheirLastNine() throws Exception {
        ObjectNode body = request("auto", false);
        body.remove(List.of("tool_choice", "max_tokens", "temperature", "seed", "stream"));
        ArrayNode messages = body.withArray("messages");
        ObjectNode assistant = messages.addObject().put("role", "assistant").putNull("content");
        ObjectNode call = assistant.putArray("tool_calls").addObject().put("id", "call_Xy12ab34cd56").put("type", "function");
        call.putObject("function").put("name", "weather").put("arguments", "{\"city\": \"Oslo\"}");
        messages.addObject().put("role", "tool").put("tool_call_id", "call_Xy12ab34cd56").put("content", "18 C");
        messages.addObject().put("role", "user").put("content", "And in Bergen?");
        HttpResponse<String> tokenized = post("/tokenize", body);
        assertEquals(200, tokenized.statusCode(), tokenized.body());
        ObjectNode detokenize = JSON.createObjectNode();
        detokenize.set("tokens", JSON.readTree(tokenized.body()).get("tokens"));
        String prompt = JSON.readTree(post("/detokenize", detokenize).body()).get("prompt").asText();
        assertTrue(prompt.contains("\"id\": \"2ab34cd56\""), prompt);
        assertTrue(prompt.contains("\"call_id\": \"2ab34cd56\""), prompt);

        body.put("max_tokens", 8);
        HttpResponse<String> answered = post("/v1/chat/completions", body);
        assertEquals(200, answered.statusCode(), answered.body());
        call.put("id", "call_1");
        HttpResponse<String> refused = post("/v1/chat/completions", body);
        assertEquals(400, refused.statusCode(), refused.body());
        assertTrue(refused.body().contains("length >= 9"), "the template's own words say why: " + refused.body());
    }

    /**
     * Mistral's calls open with a special token, which the text must keep for the parser to see it (as vLLM keeps it
     * for this format): a model made to write nothing else has that token's text as its content.
     */
    @Test
    void theSpecialTokenThatOpensACallStaysInTheText() throws Exception {
        ObjectNode body = request("auto", false).put("max_tokens", 3);
        body.putObject("logit_bias").put(String.valueOf(TOOL_CALLS_TOKEN), 100);
        JsonNode message = JSON.readTree(post("/v1/chat/completions", body).body()).at("/choices/0/message");
        assertEquals("[TOOL_CALLS][TOOL_CALLS][TOOL_CALLS]", message.get("content").asText(), message.toString());

        ObjectNode plain = JSON.createObjectNode().put("prompt", "Hello").put("max_tokens", 2).put("temperature", 0);
        plain.putObject("logit_bias").put(String.valueOf(TOOL_CALLS_TOKEN), 100);
        assertEquals("", JSON.readTree(post("/v1/completions", plain).body()).at("/choices/0/text").asText(),
                "special tokens are left out by default");
        plain.put("skip_special_tokens", false);
        assertEquals("[TOOL_CALLS][TOOL_CALLS]", JSON.readTree(post("/v1/completions", plain).body()).at("/choices/0/text").asText());
    }
}
