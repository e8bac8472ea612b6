package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ember.tokenizer.Tokenizer;
import dev.ember.tokenizer.TokenizerFixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Tool calling over HTTP, as OpenAI's clients ask for it, on a small random-weight model with Qwen3's tokenizer and
 * chat template, served with the qwen3 reasoning parser: a required or named call is held to the function's parameters
 * by the grammar, so even a model that knows nothing answers with a well-formed call; "auto" lets it choose; every
 * answer follows OpenAI's shape.
 */
class ToolCallingTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    static final String TOOLS = """
            [{"type": "function", "function": {"name": "weather", "description": "The weather in a city",
               "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 10},
                 "unit": {"enum": ["C", "F"]}}, "required": ["city"]}}},
             {"type": "function", "function": {"name": "time", "parameters": {"type": "object", "properties": {},
               "additionalProperties": false}}}]""";
    private static RandomModelServer served;

    @BeforeAll
    static void start() {
        served = RandomModelServer.start(RandomModelServer.QWEN3, 5, TokenizerFixtures.tokenizer("qwen3"),
                new OpenAiServer.Config("127.0.0.1", 0, null, "qwen3-random", 1 << 20, Duration.ofSeconds(30)).withReasoningParser("qwen3"));
    }

    @AfterAll
    static void stop() {
        served.close();
    }

    private static ObjectNode request(Object toolChoice, boolean stream) throws Exception {
        // The server's reasoning parser holds a call to its grammar after the thinking, which a random model may open
        // and would never close: the budget closes it.
        ObjectNode body = JSON.createObjectNode().put("max_tokens", 120).put("temperature", 1.0).put("seed", 3).put("stream", stream)
                .put("thinking_token_budget", 8);
        body.putArray("messages").addObject().put("role", "user").put("content", "What is the weather in Oslo?");
        body.set("tools", JSON.readTree(TOOLS));
        if (toolChoice != null) {
            body.set("tool_choice", JSON.valueToTree(toolChoice));
        }
        return body;
    }

    private static HttpResponse<String> post(ObjectNode body) throws Exception {
        return OpenAiServerTest.postTo(served.url("/v1/chat/completions"), body.toString());
    }

    /** A streamed chat choice put together as a client does: its content, its calls (each opened, then its arguments added), its finish. */
    record Streamed(String content, List<ObjectNode> calls, String finish) {
        static Streamed of(String sse) throws Exception {
            StringBuilder content = new StringBuilder();
            List<ObjectNode> calls = new ArrayList<>();
            String finish = null;
            for (String event : sse.split("\n\n")) {
                String data = event.substring("data: ".length());
                if (data.equals("[DONE]")) {
                    continue;
                }
                JsonNode c = JSON.readTree(data).at("/choices/0");
                content.append(c.at("/delta/content").asText(""));
                for (JsonNode delta : c.at("/delta/tool_calls")) {
                    int index = delta.get("index").asInt();
                    if (delta.has("id")) {
                        assertEquals(calls.size(), index, "calls are numbered in order: " + delta);
                        calls.add(delta.deepCopy());
                    } else {
                        assertFalse(delta.has("type") || delta.at("/function/name").isTextual(), "a call's later deltas: " + delta);
                        ObjectNode function = (ObjectNode) calls.get(index).get("function");
                        function.put("arguments", function.get("arguments").asText() + delta.at("/function/arguments").asText());
                    }
                }
                finish = c.get("finish_reason").isNull() ? finish : c.get("finish_reason").asText();
            }
            return new Streamed(content.toString(), calls, finish);
        }
    }

    static void assertWellFormedCall(JsonNode call, Set<String> names) throws Exception {
        assertWellFormedCall(call, names, "chatcmpl-tool-[0-9a-f]{16}");
    }

    /** A call of one of {@code names} to the {@link #TOOLS}' schemas, its id matching {@code idPattern}. */
    static void assertWellFormedCall(JsonNode call, Set<String> names, String idPattern) throws Exception {
        assertTrue(call.get("id").asText().matches(idPattern), call.toString());
        assertEquals("function", call.get("type").asText());
        String name = call.at("/function/name").asText();
        assertTrue(names.contains(name), call.toString());
        JsonNode arguments = JSON.readTree(call.at("/function/arguments").asText());
        assertTrue(arguments.isObject(), call.toString());
        if (name.equals("weather")) {
            String city = arguments.get("city").asText();  // maxLength counts characters, not UTF-16 units
            assertTrue(arguments.get("city").isTextual() && city.codePointCount(0, city.length()) <= 10, call.toString());
            assertTrue(!arguments.has("unit") || Set.of("C", "F").contains(arguments.get("unit").asText()), call.toString());
        } else {
            assertEquals(0, arguments.size(), call.toString());
        }
    }

    /**
     * "required" holds the answer to calls, one or several as OpenAI lets it (parallel_tool_calls, true by default), each
     * well formed whatever the model; with parallel_tool_calls false, exactly one.
     */
    @Test
    void requiredCallsAreWellFormedWhateverTheModel() throws Exception {
        Set<Integer> counts = new java.util.TreeSet<>();
        for (int seed = 0; seed < 6; seed++) {
            for (boolean parallel : new boolean[] {true, false}) {
                HttpResponse<String> response = post(request("required", false).put("seed", seed).put("parallel_tool_calls", parallel)
                        .put("max_tokens", 1500));
                assertEquals(200, response.statusCode(), response.body());
                JsonNode choice = JSON.readTree(response.body()).at("/choices/0");
                assertEquals("tool_calls", choice.get("finish_reason").asText(), choice.toString());
                assertTrue(choice.at("/message/content").isNull(), "calls alone have no content: " + choice);
                int calls = choice.at("/message/tool_calls").size();
                assertTrue(parallel ? calls >= 1 && calls <= OutputConstraints.MOST_CALLS : calls == 1, choice.toString());
                for (JsonNode call : choice.at("/message/tool_calls")) {
                    assertWellFormedCall(call, Set.of("weather", "time"));
                }
                if (parallel) {
                    counts.add(calls);
                }
            }
        }
        assertTrue(counts.size() > 1, "a random model makes one call or several: " + counts);
    }

    @Test
    void aNamedFunctionIsTheOneCalledAndStreamsItsArgumentsAsWritten() throws Exception {
        ObjectNode named = JSON.createObjectNode().put("type", "function");
        named.putObject("function").put("name", "weather");
        JsonNode choice = JSON.readTree(post(request(named, false)).body()).at("/choices/0");
        assertWellFormedCall(choice.at("/message/tool_calls/0"), Set.of("weather"));

        HttpResponse<String> streamed = post(request(named, true));
        assertEquals(200, streamed.statusCode());
        Streamed streamedChoice = Streamed.of(streamed.body());
        assertEquals("tool_calls", streamedChoice.finish());
        assertEquals(1, streamedChoice.calls().size());
        assertEquals(0, streamedChoice.calls().getFirst().get("index").asInt(), "a streamed call is numbered");
        assertWellFormedCall(streamedChoice.calls().getFirst(), Set.of("weather"));
    }

    /** Streamed, an answer with tools gives what it gives whole: its content as it comes, each call once it is whole. */
    @Test
    void aStreamedAnswerWithToolsGivesWhatTheWholeOneGives() throws Exception {
        for (Object choice : new Object[] {"auto", "required"}) {
            JsonNode whole = JSON.readTree(post(request(choice, false).put("seed", 9)).body()).at("/choices/0");
            Streamed streamed = Streamed.of(post(request(choice, true).put("seed", 9)).body());
            assertEquals(whole.get("finish_reason").asText(), streamed.finish(), choice + ": " + whole);
            assertEquals(whole.at("/message/content").asText("").strip(), streamed.content().strip(), String.valueOf(choice));
            JsonNode wholeCalls = whole.at("/message/tool_calls");
            assertEquals(wholeCalls.isMissingNode() ? 0 : wholeCalls.size(), streamed.calls().size(), String.valueOf(choice));
            for (int k = 0; k < streamed.calls().size(); k++) {
                assertEquals(wholeCalls.get(k).at("/function/name"), streamed.calls().get(k).at("/function/name"));
                assertEquals(JSON.readTree(wholeCalls.get(k).at("/function/arguments").asText()),
                        JSON.readTree(streamed.calls().get(k).at("/function/arguments").asText()), "the same arguments");
            }
        }
    }

    @Test
    void autoLetsTheModelChooseAndNoneReadsNoCalls() throws Exception {
        for (Object choice : new Object[] {null, "auto", "none"}) {
            HttpResponse<String> response = post(request(choice, false));
            assertEquals(200, response.statusCode(), response.body());
            JsonNode c = JSON.readTree(response.body()).at("/choices/0");
            assertTrue(Set.of("stop", "length", "tool_calls").contains(c.get("finish_reason").asText()), c.toString());
            if (c.at("/message/tool_calls").isMissingNode()) {
                assertTrue(c.at("/message/content").isTextual(), c.toString());
            } else {
                assertNotEquals("none", choice, "none reads no calls");
            }
        }
    }

    @Test
    void aConversationWithAnEarlierCallAndItsResultIsTaken() throws Exception {
        ObjectNode body = request("auto", false);
        var messages = body.withArray("messages");
        ObjectNode assistant = messages.addObject().put("role", "assistant").putNull("content");
        ObjectNode call = assistant.putArray("tool_calls").addObject().put("id", "call-1").put("type", "function");
        call.putObject("function").put("name", "weather").put("arguments", "{\"city\": \"Oslo\"}");
        messages.addObject().put("role", "tool").put("tool_call_id", "call-1").put("content", "18 C");
        HttpResponse<String> response = post(body);
        assertEquals(200, response.statusCode(), response.body());

        // What the reasoning parser split off comes back with the message, as clients send back what they were given.
        assistant.put("reasoning_content", "Oslo is in Norway.");
        assertEquals(200, post(body).statusCode());
        ObjectNode tokenize = JSON.createObjectNode();
        tokenize.set("messages", messages);
        JsonNode ids = JSON.readTree(OpenAiServerTest.postTo(served.url("/tokenize"), tokenize.toString()).body()).get("tokens");
        ObjectNode detokenize = JSON.createObjectNode();
        detokenize.set("tokens", ids);
        String prompt = JSON.readTree(OpenAiServerTest.postTo(served.url("/detokenize"), detokenize.toString()).body()).get("prompt").asText();
        assertTrue(prompt.contains("<think>\nOslo is in Norway.\n</think>"), prompt);
        assistant.remove("reasoning_content");
        assistant.put("reasoning", "Oslo is in Norway.");
        assertEquals(200, post(body).statusCode());
        assistant.put("reasoning", 3);
        assertEquals(400, post(body).statusCode());
    }

    /** A developer message (OpenAI's newer name for the system's) reaches a template that knows only system as the system's. */
    @Test
    void aDeveloperMessageIsTheSystemsForATemplateThatKnowsNoDeveloper() throws Exception {
        List<Integer> counts = new ArrayList<>();
        for (String role : new String[] {"developer", "system"}) {
            ObjectNode body = JSON.createObjectNode();
            body.putArray("messages").addObject().put("role", role).put("content", "Answer in one word.");
            body.withArray("messages").addObject().put("role", "user").put("content", "Hi");
            JsonNode ids = JSON.readTree(OpenAiServerTest.postTo(served.url("/tokenize"), body.toString()).body()).get("tokens");
            counts.add(ids.size());
            if (role.equals("developer")) {
                ObjectNode detokenize = JSON.createObjectNode();
                detokenize.set("tokens", ids);
                String prompt = JSON.readTree(OpenAiServerTest.postTo(served.url("/detokenize"), detokenize.toString()).body())
                        .get("prompt").asText();
                assertTrue(prompt.contains("Answer in one word."), "not dropped: " + prompt);
            }
        }
        assertEquals(counts.get(1), counts.get(0));
    }

    /** vLLM's /tokenize renders a conversation with the tools it is given, as a chat request would. */
    @Test
    void tokenizeRendersTheToolsItIsGiven() throws Exception {
        ObjectNode body = JSON.createObjectNode();
        body.putArray("messages").addObject().put("role", "user").put("content", "Weather?");
        int without = JSON.readTree(OpenAiServerTest.postTo(served.url("/tokenize"), body.toString()).body()).get("count").asInt();
        body.set("tools", JSON.readTree(TOOLS));
        HttpResponse<String> with = OpenAiServerTest.postTo(served.url("/tokenize"), body.toString());
        assertEquals(200, with.statusCode(), with.body());
        assertTrue(JSON.readTree(with.body()).get("count").asInt() > without + 50, with.body());
        body.putArray("tools").addObject().put("type", "web_search");
        assertEquals(400, OpenAiServerTest.postTo(served.url("/tokenize"), body.toString()).statusCode());
    }

    /**
     * vLLM's include_reasoning false leaves the thinking out of the answer, whole or streamed; a model held to
     * {@code <think>} by allowed_token_ids thinks and nothing else.
     */
    @Test
    void includeReasoningFalseLeavesTheThinkingOut() throws Exception {
        for (boolean stream : new boolean[] {false, true}) {
            ObjectNode body = JSON.createObjectNode().put("max_tokens", 4).put("stream", stream);
            body.putArray("messages").addObject().put("role", "user").put("content", "Think.");
            body.putArray("allowed_token_ids").add(151667);  // <think>
            HttpResponse<String> thinking = post(body);
            assertEquals(200, thinking.statusCode(), thinking.body());
            assertTrue(thinking.body().contains("reasoning_content"), thinking.body());
            HttpResponse<String> left = post(body.put("include_reasoning", false));
            assertEquals(200, left.statusCode(), left.body());
            assertFalse(left.body().contains("reasoning_content"), left.body());
            assertFalse(left.body().contains("<think>"), "nor is it content: " + left.body());
        }
    }

    /** What Qwen3's users send with it: thinking turned off through chat_template_kwargs, parallel_tool_calls. */
    @Test
    void templateVariablesAndParallelToolCallsAreTaken() throws Exception {
        ObjectNode body = request("required", false).put("parallel_tool_calls", false);
        body.putObject("chat_template_kwargs").put("enable_thinking", false);
        HttpResponse<String> response = post(body);
        assertEquals(200, response.statusCode(), response.body());
        assertWellFormedCall(JSON.readTree(response.body()).at("/choices/0/message/tool_calls/0"), Set.of("weather", "time"));
        ObjectNode tokenize = JSON.createObjectNode();
        tokenize.putArray("messages").addObject().put("role", "user").put("content", "Hi");
        tokenize.putObject("chat_template_kwargs").put("enable_thinking", false);
        JsonNode off = JSON.readTree(OpenAiServerTest.postTo(served.url("/tokenize"), tokenize.toString()).body());
        tokenize.remove("chat_template_kwargs");
        JsonNode on = JSON.readTree(OpenAiServerTest.postTo(served.url("/tokenize"), tokenize.toString()).body());
        assertTrue(off.get("count").asInt() > on.get("count").asInt(), "an empty thinking block: " + off + " against " + on);
    }

    /**
     * The server runs with --reasoning-parser qwen3: the thinking goes to reasoning_content, whole and streamed (the
     * output held to a thinking answer by guided_choice, since a random model does not think); the calls above, which
     * open with no thinking, were read as they are.
     */
    @Test
    void theReasoningParserSplitsTheThinkingFromTheAnswer() throws Exception {
        ObjectNode body = JSON.createObjectNode().put("max_tokens", 60).put("temperature", 0);
        body.putArray("messages").addObject().put("role", "user").put("content", "Yes?");
        body.putArray("guided_choice").add("<think>\nA short thought.\n</think>\n\nYes, indeed.");
        // With the template's thinking on, the choice would hold only the answer after the model's own thinking.
        body.putObject("chat_template_kwargs").put("enable_thinking", false);
        JsonNode message = JSON.readTree(post(body).body()).at("/choices/0/message");
        assertEquals("\nA short thought.\n", message.get("reasoning_content").asText(), message.toString());
        assertEquals("Yes, indeed.", message.get("content").asText());

        body.put("stream", true);
        StringBuilder reasoning = new StringBuilder(), content = new StringBuilder();
        for (String event : post(body).body().split("\n\n")) {
            String data = event.substring("data: ".length());
            if (!data.equals("[DONE]")) {
                JsonNode delta = JSON.readTree(data).at("/choices/0/delta");
                reasoning.append(delta.path("reasoning_content").asText(""));
                content.append(delta.path("content").asText(""));
            }
        }
        assertEquals("\nA short thought.\n", reasoning.toString());
        assertEquals("Yes, indeed.", content.toString());
    }

    /**
     * With the reasoning parser, a schema holds the answer after the thinking, as vLLM holds it, and vLLM's
     * thinking_token_budget closes the thinking after that many tokens: a random model pushed to think (its opening tag
     * favoured) thinks exactly the budget, then answers in the schema; with the template's thinking off, the schema holds
     * from the first token.
     */
    @Test
    void aSchemaHoldsTheAnswerAfterTheThinkingAndABudgetEndsIt() throws Exception {
        Tokenizer tokenizer = TokenizerFixtures.tokenizer("qwen3");
        int open = tokenizer.encode("<think>", false)[0], close = tokenizer.encode("</think>", false)[0];
        ObjectNode body = JSON.createObjectNode().put("max_tokens", 200).put("temperature", 0).put("return_token_ids", true)
                .put("thinking_token_budget", 5);
        body.putArray("messages").addObject().put("role", "user").put("content", "Yes or no?");
        body.putObject("logit_bias").put(String.valueOf(open), 100);
        body.set("response_format", JSON.readTree("""
                {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object",
                 "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"], "additionalProperties": false}}}"""));

        JsonNode choice = JSON.readTree(post(body).body()).at("/choices/0");
        int[] tokens = JSON.treeToValue(choice.get("token_ids"), int[].class);
        assertEquals(open, tokens[0], choice.toString());
        for (int i = 1; i <= 5; i++) {
            assertNotEquals(close, tokens[i], "the budget's five tokens: " + choice);
        }
        assertEquals(close, tokens[6], "the budget closes the thinking: " + choice);
        assertTrue(choice.at("/message/reasoning_content").isTextual(), choice.toString());
        JsonNode answer = JSON.readTree(choice.at("/message/content").asText());
        assertTrue(Set.of("yes", "no").contains(answer.path("answer").asText()) && answer.size() == 1, choice.toString());
        assertEquals("stop", choice.get("finish_reason").asText());

        body.putObject("chat_template_kwargs").put("enable_thinking", false);
        choice = JSON.readTree(post(body).body()).at("/choices/0");
        assertNotEquals(open, choice.at("/token_ids/0").asInt(), "the thinking was closed in the prompt: " + choice);
        assertFalse(choice.at("/message/reasoning_content").isTextual(), choice.toString());
        answer = JSON.readTree(choice.at("/message/content").asText());
        assertTrue(Set.of("yes", "no").contains(answer.path("answer").asText()), choice.toString());

        body.remove("response_format");
        body.putArray("bad_words").add("rain");
        HttpResponse<String> refused = post(body);
        assertEquals(400, refused.statusCode(), refused.body());
        assertEquals("thinking_token_budget", JSON.readTree(refused.body()).at("/error/param").asText());
    }

    /** A template variable given as null reaches the template as None (Qwen3's then thinks as with none given). */
    @Test
    void aNullTemplateVariableIsNone() throws Exception {
        ObjectNode body = JSON.createObjectNode().put("max_tokens", 1).put("return_token_ids", true);
        body.putArray("messages").addObject().put("role", "user").put("content", "Yes?");
        JsonNode plain = JSON.readTree(post(body).body());
        body.putObject("chat_template_kwargs").putNull("enable_thinking");
        HttpResponse<String> nulled = post(body);
        assertEquals(200, nulled.statusCode(), nulled.body());
        assertTrue(plain.at("/prompt_token_ids").size() > 5, plain.toString());
        assertEquals(plain.at("/prompt_token_ids"), JSON.readTree(nulled.body()).at("/prompt_token_ids"));
    }

    @Test
    void aToolChoiceThatNamesNoToolOrAParametersSchemaOutOfReachIsRefused() throws Exception {
        ObjectNode named = JSON.createObjectNode().put("type", "function");
        named.putObject("function").put("name", "nope");
        HttpResponse<String> unknown = post(request(named, false));
        assertEquals(400, unknown.statusCode());
        assertEquals("tool_choice", JSON.readTree(unknown.body()).at("/error/param").asText());

        ObjectNode patterned = request("required", false);
        patterned.set("tools", JSON.readTree("[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": "
                + "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\", \"multipleOf\": 3}}}}}]"));
        HttpResponse<String> refused = post(patterned);
        assertEquals(400, refused.statusCode());
        assertTrue(JSON.readTree(refused.body()).at("/error/message").asText().contains("\"multipleOf\""), refused.body());
    }
}
