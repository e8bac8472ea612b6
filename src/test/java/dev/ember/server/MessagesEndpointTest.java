package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ember.tokenizer.TokenizerFixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code POST /v1/messages}, Anthropic's Messages API over the chat path: the same text a chat completion gives, as a
 * message of content blocks with Anthropic's stop reasons and usage; its streamed events in order (deltas adding up to
 * the text); tools (a forced call as a tool_use block with its input object, its arguments streamed as input_json_delta;
 * a conversation with tool_use and tool_result blocks sent back); the key in x-api-key; what it refuses, by name.
 */
class MessagesEndpointTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static RandomModelServer qwen3;

    @BeforeAll
    static void start() {
        qwen3 = RandomModelServer.start(RandomModelServer.QWEN3, 13, TokenizerFixtures.tokenizer("qwen3"),
                new OpenAiServer.Config("127.0.0.1", 0, "sesame", "qwen3-random", 1 << 20, Duration.ofSeconds(30)));
    }

    @AfterAll
    static void stop() {
        qwen3.close();
    }

    /** Posts with Anthropic's header for the key. */
    private static HttpResponse<String> post(String path, ObjectNode body) throws Exception {
        HttpRequest request = HttpRequest.newBuilder(URI.create(qwen3.url(path))).header("content-type", "application/json")
                .header("x-api-key", "sesame").header("anthropic-version", "2023-06-01")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString())).build();
        return HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString());
    }

    private static JsonNode ok(String path, ObjectNode body) throws Exception {
        HttpResponse<String> response = post(path, body);
        assertEquals(200, response.statusCode(), response.body());
        return JSON.readTree(response.body());
    }

    @Test
    void aMessageSaysWhatTheChatCompletionSays() throws Exception {
        ObjectNode chat = JSON.createObjectNode().put("max_tokens", 10).put("temperature", 0);
        chat.putArray("messages").addObject().put("role", "system").put("content", "Be brief.");
        chat.withArray("messages").addObject().put("role", "user").put("content", "To install a package on Debian,");
        String expected = ok("/v1/chat/completions", chat).at("/choices/0/message/content").asText();

        ObjectNode request = JSON.createObjectNode().put("model", "qwen3-random").put("max_tokens", 10).put("temperature", 0)
                .put("system", "Be brief.");
        request.putArray("messages").addObject().put("role", "user").putArray("content").addObject()
                .put("type", "text").put("text", "To install a package on Debian,");
        JsonNode message = ok("/v1/messages", request);
        assertTrue(message.get("id").asText().startsWith("msg_"), message.toString());
        assertEquals("message", message.get("type").asText());
        assertEquals("assistant", message.get("role").asText());
        assertEquals("max_tokens", message.get("stop_reason").asText());
        assertEquals("text", message.at("/content/0/type").asText());
        assertEquals(expected, message.at("/content/0/text").asText());
        assertEquals(10, message.at("/usage/output_tokens").asInt());
        assertTrue(message.at("/usage/input_tokens").asInt() > 5, message.toString());

        List<JsonNode> events = ResponsesEndpointTest.typedEvents(post("/v1/messages", request.put("stream", true)));
        assertEquals(List.of("message_start", "content_block_start"), events.subList(0, 2).stream().map(e -> e.get("type").asText()).toList());
        assertEquals(List.of("content_block_stop", "message_delta", "message_stop"),
                events.subList(events.size() - 3, events.size()).stream().map(e -> e.get("type").asText()).toList());
        StringBuilder text = new StringBuilder();
        events.stream().filter(e -> e.get("type").asText().equals("content_block_delta"))
                .forEach(e -> text.append(e.at("/delta/text").asText()));
        assertEquals(expected, text.toString());
        assertEquals(message.at("/usage/input_tokens").asInt(), events.getFirst().at("/message/usage/input_tokens").asInt(),
                "the start says the prompt's tokens");
        JsonNode delta = events.get(events.size() - 2);
        assertEquals("max_tokens", delta.at("/delta/stop_reason").asText());
        assertEquals(10, delta.at("/usage/output_tokens").asInt());
    }

    @Test
    void aForcedToolCallIsAToolUseBlockWhoseInputStreams() throws Exception {
        ObjectNode request = JSON.createObjectNode().put("max_tokens", 120).put("temperature", 1.0);
        request.putArray("messages").addObject().put("role", "user").put("content", "What is the weather in Oslo?");
        ArrayNode tools = request.putArray("tools");
        for (JsonNode tool : JSON.readTree(ToolCallingTest.TOOLS)) {
            tools.addObject().put("name", tool.at("/function/name").asText()).set("input_schema", tool.at("/function/parameters"));
        }
        request.putObject("tool_choice").put("type", "tool").put("name", "weather");
        JsonNode message = ok("/v1/messages", request);
        assertEquals("tool_use", message.get("stop_reason").asText(), message.toString());
        JsonNode use = message.get("content").findParent("input");
        assertEquals("tool_use", use.get("type").asText());
        assertEquals("weather", use.get("name").asText());
        assertTrue(use.at("/input/city").isTextual(), use.toString());

        List<JsonNode> events = ResponsesEndpointTest.typedEvents(post("/v1/messages", request.put("stream", true)));
        StringBuilder partial = new StringBuilder();
        events.stream().filter(e -> e.at("/delta/type").asText().equals("input_json_delta"))
                .forEach(e -> partial.append(e.at("/delta/partial_json").asText()));
        assertTrue(JSON.readTree(partial.toString()).get("city").isTextual(), partial.toString());
        assertEquals("tool_use", events.stream().filter(e -> e.get("type").asText().equals("content_block_start"))
                .findFirst().orElseThrow().at("/content_block/type").asText());
        assertEquals("tool_use", events.get(events.size() - 2).at("/delta/stop_reason").asText());

        // The call and its result sent back, as the client's next turn does.
        ObjectNode next = JSON.createObjectNode().put("max_tokens", 6);
        next.set("tools", tools);
        ArrayNode messages = next.putArray("messages");
        messages.addObject().put("role", "user").put("content", "What is the weather in Oslo?");
        ArrayNode turn = messages.addObject().put("role", "assistant").putArray("content");
        turn.addObject().put("type", "text").put("text", "Let me look.");
        turn.addObject().put("type", "tool_use").put("id", use.get("id").asText()).put("name", "weather").set("input", use.get("input"));
        messages.addObject().put("role", "user").putArray("content").addObject().put("type", "tool_result")
                .put("tool_use_id", use.get("id").asText()).put("content", "18 C");
        assertEquals("message", ok("/v1/messages", next).get("type").asText());
    }

    /** count_tokens: what the prompt takes, tools included, without generating. */
    @Test
    void countTokensSaysWhatThePromptTakes() throws Exception {
        ObjectNode body = JSON.createObjectNode().put("model", "qwen3-random");
        body.putArray("messages").addObject().put("role", "user").put("content", "Weather in Oslo?");
        int plain = ok("/v1/messages/count_tokens", body).get("input_tokens").asInt();
        ObjectNode chat = JSON.createObjectNode();
        chat.set("messages", body.get("messages"));
        assertEquals(ok("/tokenize", chat).get("count").asInt(), plain, "the chat template's prompt");
        ArrayNode tools = body.putArray("tools");
        tools.addObject().put("name", "weather").putObject("input_schema").put("type", "object");
        assertTrue(ok("/v1/messages/count_tokens", body).get("input_tokens").asInt() > plain + 20, "the tools are in the prompt");
    }

    /**
     * thinking is the template's switch (Qwen3's enable_thinking): disabled writes the closed empty thinking into the
     * prompt, adaptive and enabled leave the model to open it; a budget is counted as no prompt token.
     */
    @Test
    void thinkingTurnsTheTemplatesThinkingOnOrOff() throws Exception {
        ObjectNode body = JSON.createObjectNode().put("model", "qwen3-random");
        body.putArray("messages").addObject().put("role", "user").put("content", "Is it raining?");
        int plain = ok("/v1/messages/count_tokens", body).get("input_tokens").asInt();
        body.putObject("thinking").put("type", "adaptive");
        assertEquals(plain, ok("/v1/messages/count_tokens", body).get("input_tokens").asInt());
        body.putObject("thinking").put("type", "enabled").put("budget_tokens", 2048);
        assertEquals(plain, ok("/v1/messages/count_tokens", body).get("input_tokens").asInt());
        body.putObject("thinking").put("type", "disabled");
        int off = ok("/v1/messages/count_tokens", body).get("input_tokens").asInt();
        assertTrue(off > plain, "the closed empty thinking is in the prompt: " + off + " against " + plain);
        JsonNode message = ok("/v1/messages", body.put("max_tokens", 3));
        assertEquals(off, message.at("/usage/input_tokens").asInt(), message.toString());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', textBlock = """
            max_tokens            | {"messages": [{"role": "user", "content": "hi"}]}
            messages[0].role      | {"max_tokens": 4, "messages": [{"role": "system", "content": "hi"}]}
            messages[0].content[0] | {"max_tokens": 4, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}
            thinking_token_budget | {"max_tokens": 4, "messages": [{"role": "user", "content": "hi"}], "thinking": {"type": "enabled", "budget_tokens": 1024}}
            thinking.budget_tokens | {"max_tokens": 4, "messages": [{"role": "user", "content": "hi"}], "thinking": {"type": "enabled"}}
            thinking              | {"max_tokens": 4, "messages": [{"role": "user", "content": "hi"}], "thinking": {"type": "sometimes"}}
            tools[0]              | {"max_tokens": 4, "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
            tool_choice           | {"max_tokens": 4, "messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": "some"}}
            container             | {"max_tokens": 4, "messages": [{"role": "user", "content": "hi"}], "container": "c"}""")
    void whatItCannotDoIsRefusedByName(String param, String body) throws Exception {
        HttpResponse<String> response = post("/v1/messages", (ObjectNode) JSON.readTree(body));
        assertEquals(400, response.statusCode(), response.body());
        assertEquals(param, OpenAiServerTest.assertErrorBody(response).at("/error/param").asText());
    }

    @Test
    void theKeyIsCheckedInEitherHeader() throws Exception {
        ObjectNode body = JSON.createObjectNode().put("max_tokens", 2);
        body.putArray("messages").addObject().put("role", "user").put("content", "hi");
        HttpRequest wrong = HttpRequest.newBuilder(URI.create(qwen3.url("/v1/messages"))).header("content-type", "application/json")
                .header("x-api-key", "wrong").POST(HttpRequest.BodyPublishers.ofString(body.toString())).build();
        assertEquals(401, HttpClient.newHttpClient().send(wrong, HttpResponse.BodyHandlers.ofString()).statusCode());
        HttpRequest bearer = HttpRequest.newBuilder(URI.create(qwen3.url("/v1/messages"))).header("content-type", "application/json")
                .header("Authorization", "Bearer sesame").POST(HttpRequest.BodyPublishers.ofString(body.toString())).build();
        assertEquals(200, HttpClient.newHttpClient().send(bearer, HttpResponse.BodyHandlers.ofString()).statusCode());
    }
}
