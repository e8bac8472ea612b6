package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ember.tokenizer.Tokenizer;
import dev.ember.tokenizer.TokenizerFixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code POST /v1/responses}, OpenAI's Responses API over the chat path: the same text a chat completion gives, the
 * response object's shape and usage, its streamed events in order (deltas adding up to the done text, the last event
 * holding the whole response), function tools (a forced call as a function_call item, its arguments streamed as events,
 * a conversation with calls and their outputs sent back as input items), and what it refuses by name.
 */
class ResponsesEndpointTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static RandomModelServer qwen3;

    @BeforeAll
    static void start() {
        qwen3 = RandomModelServer.start(RandomModelServer.QWEN3, 11, TokenizerFixtures.tokenizer("qwen3"), "qwen3-random");
    }

    @AfterAll
    static void stop() {
        qwen3.close();
    }

    private static HttpResponse<String> post(String base, String path, ObjectNode body) throws Exception {
        return OpenAiServerTest.postTo(base + path, body.toString());
    }

    private static JsonNode ok(String base, String path, ObjectNode body) throws Exception {
        HttpResponse<String> response = post(base, path, body);
        assertEquals(200, response.statusCode(), response.body());
        return JSON.readTree(response.body());
    }

    /** The events of a stream, each checked to name its type in both its event line and its data. */
    static List<JsonNode> typedEvents(HttpResponse<String> response) throws Exception {
        assertEquals(200, response.statusCode(), response.body());
        List<JsonNode> events = new ArrayList<>();
        for (String block : response.body().split("\n\n")) {
            String[] lines = block.split("\n", 2);
            assertTrue(lines[0].startsWith("event: ") && lines[1].startsWith("data: "), block);
            JsonNode event = JSON.readTree(lines[1].substring("data: ".length()));
            assertEquals(lines[0].substring("event: ".length()), event.get("type").asText());
            events.add(event);
        }
        return events;
    }

    /** A streamed response's events, numbered in order. */
    private static List<JsonNode> events(HttpResponse<String> response) throws Exception {
        List<JsonNode> events = typedEvents(response);
        for (int i = 0; i < events.size(); i++) {
            assertEquals(i, events.get(i).get("sequence_number").asInt(), "numbered in order");
        }
        return events;
    }

    @Test
    void aResponseSaysWhatTheChatCompletionSays() throws Exception {
        String base = qwen3.server().baseUrl();
        ObjectNode chat = JSON.createObjectNode().put("max_tokens", 10).put("temperature", 0);
        ArrayNode messages = chat.putArray("messages");
        messages.addObject().put("role", "system").put("content", "Be brief.");
        messages.addObject().put("role", "user").put("content", "To install a package on Debian,");
        String expected = ok(base, "/v1/chat/completions", chat).at("/choices/0/message/content").asText();

        ObjectNode request = JSON.createObjectNode().put("instructions", "Be brief.").put("max_output_tokens", 10)
                .put("temperature", 0).put("model", "qwen3-random").put("store", false).put("prompt_cache_key", "c-1");
        request.putArray("input").addObject().put("role", "user").putArray("content").addObject()
                .put("type", "input_text").put("text", "To install a package on Debian,");
        JsonNode response = ok(base, "/v1/responses", request);
        assertTrue(response.get("id").asText().startsWith("resp_"), response.toString());
        assertEquals("response", response.get("object").asText());
        assertEquals("incomplete", response.get("status").asText(), "ten tokens, all it may write");
        assertEquals("max_output_tokens", response.at("/incomplete_details/reason").asText());
        assertEquals(1, response.get("output").size());
        JsonNode message = response.at("/output/0");
        assertEquals("message", message.get("type").asText());
        assertEquals("assistant", message.get("role").asText());
        assertEquals("output_text", message.at("/content/0/type").asText());
        assertEquals(expected, message.at("/content/0/text").asText());
        assertEquals(10, response.at("/usage/output_tokens").asInt());
        assertEquals(response.at("/usage/input_tokens").asInt() + 10, response.at("/usage/total_tokens").asInt());
        assertEquals("Be brief.", response.get("instructions").asText());
        assertEquals("qwen3-random", response.get("model").asText());

        List<JsonNode> events = events(post(base, "/v1/responses", request.put("stream", true)));
        assertEquals(List.of("response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"),
                events.subList(0, 4).stream().map(e -> e.get("type").asText()).toList());
        StringBuilder deltas = new StringBuilder();
        events.stream().filter(e -> e.get("type").asText().equals("response.output_text.delta"))
                .forEach(e -> deltas.append(e.get("delta").asText()));
        assertEquals(expected, deltas.toString());
        JsonNode done = events.stream().filter(e -> e.get("type").asText().equals("response.output_text.done")).findFirst().orElseThrow();
        assertEquals(expected, done.get("text").asText());
        JsonNode last = events.getLast();
        assertEquals("response.incomplete", last.get("type").asText());
        assertEquals(expected, last.at("/response/output/0/content/0/text").asText());
        assertEquals(10, last.at("/response/usage/output_tokens").asInt());
    }

    /** vLLM's chat extensions pass through: the template's variables, and a bias of the logits. */
    @Test
    void chatTemplateVariablesAndLogitBiasPassThrough() throws Exception {
        String base = qwen3.server().baseUrl();
        ObjectNode request = JSON.createObjectNode().put("input", "Is it raining?").put("max_output_tokens", 3)
                .put("temperature", 0);
        int plain = ok(base, "/v1/responses", request).at("/usage/input_tokens").asInt();
        request.putObject("chat_template_kwargs").put("enable_thinking", false);
        int off = ok(base, "/v1/responses", request).at("/usage/input_tokens").asInt();
        assertTrue(off > plain, "Qwen3's closed empty thinking is in the prompt: " + off + " against " + plain);
        int favoured = TokenizerFixtures.tokenizer("qwen3").encode(" umbrella", false)[0];
        request.putObject("logit_bias").put(String.valueOf(favoured), 100);
        assertEquals(" umbrella umbrella umbrella", ok(base, "/v1/responses", request).at("/output/0/content/0/text").asText());
    }

    /**
     * A reasoning effort reaches the chat template as vLLM gives it (gpt-oss's templates read it): chat's
     * reasoning_effort and the Responses API's reasoning.effort alike; a template that does not read it is unmoved.
     */
    @Test
    void theReasoningEffortIsTheTemplatesToRead() throws Exception {
        String template = "{{ reasoning_effort | default('') }}:{{ messages[-1]['content'] }}";
        try (Tokenizer tokenizer = Tokenizer.load(TokenizerFixtures.directory("qwen3"), template, "a test");
             RandomModelServer served = RandomModelServer.start(RandomModelServer.QWEN3, 3, tokenizer, "effort")) {
            String base = served.server().baseUrl();
            ObjectNode chat = JSON.createObjectNode().put("max_tokens", 1).put("return_token_ids", true)
                    .put("reasoning_effort", "low");
            chat.putArray("messages").addObject().put("role", "user").put("content", "Why?");
            JsonNode answer = ok(base, "/v1/chat/completions", chat);
            int[] prompt = JSON.treeToValue(answer.get("prompt_token_ids"), int[].class);
            assertEquals("low:Why?", tokenizer.decode(prompt));

            ObjectNode request = JSON.createObjectNode().put("input", "Why?").put("max_output_tokens", 1);
            int plain = ok(base, "/v1/responses", request).at("/usage/input_tokens").asInt();
            request.putObject("reasoning").put("effort", "medium");
            int given = ok(base, "/v1/responses", request).at("/usage/input_tokens").asInt();
            assertEquals(plain + tokenizer.encode("medium", false).length, given, "\"medium\" written before the colon");
        }
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', textBlock = """
            previous_response_id | {"input": "hi", "previous_response_id": "resp_1"}
            tools[0]             | {"input": "hi", "tools": [{"type": "web_search"}]}
            input                | {"max_output_tokens": 4}
            input[0].content     | {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}
            input[0]             | {"input": [{"type": "computer_call"}]}
            prompt               | {"input": "hi", "prompt": {"id": "p"}}
            truncation           | {"input": "hi", "truncation": "auto"}
            reasoning            | {"input": "hi", "reasoning": {"effort": "high", "summary": "auto"}}
            reasoning_effort     | {"input": "hi", "reasoning": {"effort": "extreme"}}
            background           | {"input": "hi", "background": true}
            text.format          | {"input": "hi", "text": {"format": {"type": "xml"}}}""")
    void whatItCannotDoIsRefusedByName(String param, String body) throws Exception {
        HttpResponse<String> response = post(qwen3.server().baseUrl(), "/v1/responses", (ObjectNode) JSON.readTree(body));
        assertEquals(400, response.statusCode(), response.body());
        assertEquals(param, OpenAiServerTest.assertErrorBody(response).at("/error/param").asText());
    }

    @Test
    void aForcedFunctionCallIsAFunctionCallItemWhoseArgumentsStream() throws Exception {
        String base = qwen3.server().baseUrl();
        ObjectNode request = JSON.createObjectNode().put("input", "What is the weather in Oslo?").put("max_output_tokens", 120)
                .put("temperature", 1.0).put("seed", 4);
        ArrayNode tools = request.putArray("tools");
        for (JsonNode tool : JSON.readTree(ToolCallingTest.TOOLS)) {
            ObjectNode flat = tools.addObject().put("type", "function");
            flat.setAll((ObjectNode) tool.get("function"));
        }
        request.putObject("tool_choice").put("type", "function").put("name", "weather");
        JsonNode response = ok(base, "/v1/responses", request);
        JsonNode call = response.get("output").findParent("call_id");
        assertNotNull(call, response.toString());
        assertEquals("function_call", call.get("type").asText());
        assertEquals("weather", call.get("name").asText());
        JsonNode arguments = JSON.readTree(call.get("arguments").asText());
        assertTrue(arguments.get("city").isTextual(), call.toString());
        assertEquals("completed", response.get("status").asText(), response.toString());

        List<JsonNode> events = events(post(base, "/v1/responses", request.put("stream", true)));
        Set<String> types = new java.util.HashSet<>(events.stream().map(e -> e.get("type").asText()).toList());
        assertTrue(types.containsAll(Set.of("response.function_call_arguments.delta", "response.function_call_arguments.done",
                "response.output_item.done", "response.completed")), types.toString());
        StringBuilder deltas = new StringBuilder();
        events.stream().filter(e -> e.get("type").asText().equals("response.function_call_arguments.delta"))
                .forEach(e -> deltas.append(e.get("delta").asText()));
        JsonNode done = events.stream().filter(e -> e.get("type").asText().equals("response.function_call_arguments.done"))
                .findFirst().orElseThrow();
        assertEquals(done.get("arguments").asText(), deltas.toString());
        JSON.readTree(deltas.toString());  // whole JSON
        assertEquals("weather", events.getLast().at("/response/output").findParent("call_id").get("name").asText());

        // The call and its output sent back as input items, as the client's next turn does.
        ObjectNode next = JSON.createObjectNode().put("max_output_tokens", 8).put("stream", false);
        next.set("tools", tools);
        ArrayNode input = next.putArray("input");
        input.addObject().put("role", "user").put("content", "What is the weather in Oslo?");
        input.addObject().put("type", "reasoning").put("id", "rs_1").putArray("content").addObject()
                .put("type", "reasoning_text").put("text", "Oslo is in Norway.");
        input.addObject().put("type", "function_call").put("call_id", call.get("call_id").asText()).put("name", "weather")
                .put("arguments", call.get("arguments").asText());
        input.addObject().put("type", "function_call_output").put("call_id", call.get("call_id").asText()).put("output", "18 C");
        JsonNode answered = ok(base, "/v1/responses", next);
        assertTrue(Set.of("completed", "incomplete").contains(answered.get("status").asText()), answered.toString());
        // The thinking sent back reaches the template, which writes it for the turn after the last question.
        ObjectNode tokenize = JSON.createObjectNode();
        ObjectNode chat = JSON.createObjectNode();
        chat.putArray("messages").addObject().put("role", "user").put("content", "What is the weather in Oslo?");
        ObjectNode turn = chat.withArray("messages").addObject().put("role", "assistant").putNull("content")
                .put("reasoning_content", "Oslo is in Norway.");
        turn.putArray("tool_calls").addObject().put("id", call.get("call_id").asText()).put("type", "function").putObject("function")
                .put("name", "weather").put("arguments", call.get("arguments").asText());
        chat.withArray("messages").addObject().put("role", "tool").put("tool_call_id", call.get("call_id").asText()).put("content", "18 C");
        tokenize.set("messages", chat.get("messages"));
        int withThinking = ok(base, "/tokenize", tokenize).get("count").asInt();
        turn.remove("reasoning_content");
        assertTrue(withThinking > ok(base, "/tokenize", tokenize).get("count").asInt(), "the thinking is in the prompt");
    }
}
