package dev.ember.tokenizer;

import dev.ember.EmberException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real templates of Qwen3, Qwen2.5, Llama 3.2 and Mistral-7B-Instruct-v0.1, rendered for conversations whose
 * expected prompts were worked out by hand from the templates' source (and, for Mistral, match the rendering
 * huggingface/jinja publishes for that template).
 */
class ChatTemplateTest {

    static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }

    @Test
    void qwen3DropsEarlierThinkingAndKeepsTheLatest() {
        Tokenizer qwen3 = TokenizerFixtures.tokenizer("qwen3");
        assertTrue(qwen3.hasChatTemplate());
        List<ChatMessage> conversation = List.of(system("You are terse."), user("Hi"),
                assistant("<think>\nhmm\n</think>\n\nHello."), user("Bye"));
        assertEquals("""
                <|im_start|>system
                You are terse.<|im_end|>
                <|im_start|>user
                Hi<|im_end|>
                <|im_start|>assistant
                Hello.<|im_end|>
                <|im_start|>user
                Bye<|im_end|>
                <|im_start|>assistant
                """, qwen3.applyChatTemplate(conversation, true));

        // An answer after the last question keeps its reasoning; one without gets an empty <think> block.
        assertEquals("""
                <|im_start|>user
                Hi<|im_end|>
                <|im_start|>assistant
                <think>
                plan
                </think>

                Yo<|im_end|>
                """, qwen3.applyChatTemplate(List.of(user("Hi"), assistant("<think>\nplan\n</think>\n\nYo")), false));
        assertEquals("""
                <|im_start|>user
                Hi<|im_end|>
                <|im_start|>assistant
                <think>

                </think>

                Yo<|im_end|>
                """, qwen3.applyChatTemplate(List.of(user("Hi"), assistant("Yo")), false));
    }

    @Test
    void qwen3WrapsToolResultsAsAUserTurn() {
        Tokenizer qwen3 = TokenizerFixtures.tokenizer("qwen3");
        List<ChatMessage> conversation = List.of(user("What is 6*7?"), assistant("Let me compute."), new ChatMessage("tool", "42"));
        assertEquals("""
                <|im_start|>user
                What is 6*7?<|im_end|>
                <|im_start|>assistant
                Let me compute.<|im_end|>
                <|im_start|>user
                <tool_response>
                42
                </tool_response><|im_end|>
                <|im_start|>assistant
                """, qwen3.applyChatTemplate(conversation, true));
    }

    /**
     * Tools as HF's apply_chat_template(tools=...) passes them: the template lists each as Python's json.dumps writes it,
     * and an earlier call (its arguments a JSON string, as OpenAI sends them) and its result come back in Hermes' format.
     */
    @Test
    void qwen3ListsToolsAndWritesEarlierCallsInHermesFormat() {
        Tokenizer qwen3 = TokenizerFixtures.tokenizer("qwen3");
        Map<String, Object> weather = new LinkedHashMap<>();
        weather.put("type", "function");
        weather.put("function", Map.of("name", "weather"));
        Map<String, Object> call = new LinkedHashMap<>();
        call.put("id", "call-1");
        call.put("type", "function");
        Map<String, Object> function = new LinkedHashMap<>();
        function.put("name", "weather");
        function.put("arguments", "{\"city\": \"Oslo\"}");
        call.put("function", function);
        List<ChatMessage> conversation = List.of(user("Weather in Oslo?"),
                new ChatMessage("assistant", "", List.of(call), null), new ChatMessage("tool", "18 C", List.of(), "call-1"));
        assertEquals("""
                <|im_start|>system
                # Tools

                You may call one or more functions to assist with the user query.

                You are provided with function signatures within <tools></tools> XML tags:
                <tools>
                {"type": "function", "function": {"name": "weather"}}
                </tools>

                For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
                <tool_call>
                {"name": <function-name>, "arguments": <args-json-object>}
                </tool_call><|im_end|>
                <|im_start|>user
                Weather in Oslo?<|im_end|>
                <|im_start|>assistant
                <tool_call>
                {"name": "weather", "arguments": {"city": "Oslo"}}
                </tool_call><|im_end|>
                <|im_start|>user
                <tool_response>
                18 C
                </tool_response><|im_end|>
                <|im_start|>assistant
                """, qwen3.applyChatTemplate(conversation, new ChatOptions(true, false, List.of(weather), Map.of())));
        assertTrue(qwen3.chatTemplateContains("<tool_call>"));

        // The thinking of a turn after the last question, given back apart from its content, is written back.
        List<ChatMessage> withThinking = List.of(user("Weather in Oslo?"),
                new ChatMessage("assistant", "", List.of(call), null, "I should look it up."),
                new ChatMessage("tool", "18 C", List.of(), "call-1"));
        String rendered = qwen3.applyChatTemplate(withThinking, new ChatOptions(true, false, List.of(weather), Map.of()));
        assertTrue(rendered.contains("<|im_start|>assistant\n<think>\nI should look it up.\n</think>\n\n<tool_call>\n"
                + "{\"name\": \"weather\""), rendered);
    }

    /**
     * Mistral Small 3.1's template as llama.cpp keeps it, worked through by Jinja2's rules: the tools listed before the
     * last user turn (the "return" key of a function skipped by the loop's filter, so no comma trails the last key),
     * the earlier call as {@code [TOOL_CALLS]} with its id's last nine characters, its result in {@code [TOOL_RESULTS]},
     * and the system prompt after the tools' instructions (the two backslash line breaks between them continue the
     * string, as in Python, and so join them).
     */
    @Test
    void mistralListsToolsBeforeTheLastUserTurnAndWritesEarlierCalls() {
        Tokenizer mistral = TokenizerFixtures.mistralWithTools();
        Map<String, Object> function = new LinkedHashMap<>();
        function.put("name", "weather");
        function.put("parameters", Map.of("type", "object"));
        function.put("return", "a number");
        Map<String, Object> weather = new LinkedHashMap<>();
        weather.put("type", "function");
        weather.put("function", function);
        Map<String, Object> arguments = new LinkedHashMap<>();
        arguments.put("name", "weather");
        arguments.put("arguments", Map.of("city", "Oslo"));
        Map<String, Object> call = new LinkedHashMap<>();
        call.put("id", "abcdefghijkl");
        call.put("type", "function");
        call.put("function", arguments);
        List<ChatMessage> conversation = List.of(system("Be brief."), user("Weather in Oslo?"),
                new ChatMessage("assistant", "", List.of(call), null), new ChatMessage("tool", "18", List.of(), "abcdefghijkl"),
                assistant("18 degrees."), user("And Bergen?"));
        String rendered = mistral.applyChatTemplate(conversation, new ChatOptions(true, false, List.of(weather), Map.of()));
        assertTrue(rendered.startsWith("<s>[SYSTEM_PROMPT]You are a helpful assistant that can call tools."), rendered);
        assertTrue(rendered.endsWith("""
                you can interpret for the user.Be brief.[/SYSTEM_PROMPT][INST]Weather in Oslo?[/INST]\
                [TOOL_CALLS] [{"name": "weather", "arguments": {"city": "Oslo"}, "id": "defghijkl"}]</s>\
                [TOOL_RESULTS] {"content": 18, "call_id": "defghijkl"}[/TOOL_RESULTS]18 degrees.</s>\
                [AVAILABLE_TOOLS] [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]\
                [/AVAILABLE_TOOLS][INST]And Bergen?[/INST]"""), rendered);
    }

    /**
     * DeepSeek-R1's distillations into Qwen2.5 open with {@code not add_generation_prompt is defined}: read as Jinja2
     * reads it, the generation prompt (and its opening {@code <think>}) is written; earlier thinking is dropped.
     */
    @Test
    void deepSeekR1DistillWritesItsGenerationPrompt() throws IOException {
        String template = Files.readString(TokenizerFixtures.resources("qwen2_5").resolve("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"));
        ChatTemplate deepSeek = new ChatTemplate(template, "deepseek.jinja",
                new ChatTemplate.TokenVariables("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", null, null), TokenizerFixtures.CLOCK);
        List<ChatMessage> conversation = List.of(system("You are terse."), user("Hi"), assistant("<think>\nhmm\n</think>Hello."), user("Bye"));
        assertEquals("<｜begin▁of▁sentence｜>You are terse.<｜User｜>Hi<｜Assistant｜>Hello.<｜end▁of▁sentence｜><｜User｜>Bye"
                + "<｜Assistant｜><think>\n", deepSeek.render(conversation, true, List.of(), Map.of()));
        assertEquals("<｜begin▁of▁sentence｜><｜User｜>Hi", deepSeek.render(List.of(user("Hi")), false, List.of(), Map.of()));
    }

    /** vLLM's chat_template_kwargs reach the template (Qwen3's enable_thinking); continue_final_message ends inside it. */
    @Test
    void qwen3TakesTemplateVariablesAndContinuesTheLastMessage() {
        Tokenizer qwen3 = TokenizerFixtures.tokenizer("qwen3");
        String thinkingOff = qwen3.applyChatTemplate(List.of(user("Hi")), new ChatOptions(true, false, List.of(),
                Map.of("enable_thinking", false)));
        assertTrue(thinkingOff.endsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n"), thinkingOff);
        assertTrue(qwen3.applyChatTemplate(List.of(user("Hi")), true).endsWith("<|im_start|>assistant\n"));
        String continued = qwen3.applyChatTemplate(List.of(user("Tell a story"), assistant("Once upon a")),
                new ChatOptions(false, true, List.of(), Map.of()));
        assertTrue(continued.endsWith("Once upon a") && continued.contains("<|im_start|>user\nTell a story<|im_end|>"), continued);
        assertThrows(EmberException.class, () -> qwen3.applyChatTemplate(List.of(user("Hi"), assistant("")),
                new ChatOptions(false, true, List.of(), Map.of())));
    }

    /** vLLM's --chat-template: a template given in place of the model's, here for a model that ships none. */
    @Test
    void aTemplateGivenReplacesTheModelsOwn() {
        try (Tokenizer plain = Tokenizer.load(Path.of("models", "ember-tiny"));
             Tokenizer templated = Tokenizer.load(Path.of("models", "ember-tiny"),
                     "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}",
                     "my-template.jinja")) {
            assertFalse(plain.hasChatTemplate());
            assertTrue(templated.hasChatTemplate());
            assertEquals("<user>Hi<assistant>", templated.applyChatTemplate(List.of(user("Hi")), true));
        }
        try (Tokenizer broken = Tokenizer.load(Path.of("models", "ember-tiny"), "{% for m in messages %}",
                "my-template.jinja")) {
            EmberException bad = assertThrows(EmberException.class,
                    () -> broken.applyChatTemplate(List.of(user("Hi")), true));
            assertTrue(bad.getMessage().startsWith("my-template.jinja"), "an error names the template given: " + bad.getMessage());
        }
    }

    /** Named templates, as some tokenizer_config.json files list them: HF renders a conversation given tools with "tool_use". */
    @Test
    void aConversationGivenToolsIsRenderedWithTheToolUseTemplate(@TempDir Path dir)
            throws IOException {
        Files.copy(Path.of("models", "ember-tiny", "tokenizer.json"), dir.resolve("tokenizer.json"));
        Files.writeString(dir.resolve("tokenizer_config.json"), """
                {"chat_template": [
                  {"name": "default", "template": "{% for m in messages %}[{{ m.content }}]{% endfor %}"},
                  {"name": "tool_use", "template": "<tools>{{ tools | length }}</tools><tool_call>{% for m in messages %}[{{ m.content }}]{% endfor %}"}]}""");
        try (Tokenizer tokenizer = Tokenizer.load(dir)) {
            assertEquals("[Hi]", tokenizer.applyChatTemplate(List.of(user("Hi")), false));
            assertEquals("<tools>1</tools><tool_call>[Hi]", tokenizer.applyChatTemplate(List.of(user("Hi")),
                    new ChatOptions(false, false, List.of(Map.of("type", "function")), Map.of())));
            assertTrue(tokenizer.chatTemplateContains("<tool_call>"), "the tool_use template teaches the format");
        }
    }

    @Test
    void qwen25AddsItsDefaultSystemPrompt() {
        Tokenizer qwen25 = TokenizerFixtures.tokenizer("qwen2_5");
        assertEquals("""
                <|im_start|>system
                You are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>
                <|im_start|>user
                Hello!<|im_end|>
                <|im_start|>assistant
                """, qwen25.applyChatTemplate(List.of(user("Hello!")), true));
        assertEquals("""
                <|im_start|>system
                S<|im_end|>
                <|im_start|>user
                U<|im_end|>
                <|im_start|>assistant
                A<|im_end|>
                """, qwen25.applyChatTemplate(List.of(system("S"), user("U"), assistant("A")), false));
    }

    /** The shared fixture believes it is 7 March 2026 (TokenizerFixtures.CLOCK). */
    @Test
    void llama32WritesTodaysDateAndTrimsTurns() {
        Tokenizer llama = TokenizerFixtures.tokenizer("llama3_2");
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                            + "Cutting Knowledge Date: December 2023\nToday Date: 07 Mar 2026\n\n"
                            + "You are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                            + "Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                    llama.applyChatTemplate(List.of(system("  You are terse.\n"), user(" Hi ")), true));
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                        + "Cutting Knowledge Date: December 2023\nToday Date: 07 Mar 2026\n\n"
                        + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                        + "Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nYo<|eot_id|>",
                llama.applyChatTemplate(List.of(user("Hi"), assistant("Yo")), false));
    }

    /** Llama 3 trims each turn with Jinja2's trim, Python's str.strip: an ideographic or no-break space goes too. */
    @Test
    void llama32TrimsTurnsOfUnicodeSpacesAsJinja2Does() {
        Tokenizer llama = TokenizerFixtures.tokenizer("llama3_2");
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                        + "Cutting Knowledge Date: December 2023\nToday Date: 07 Mar 2026\n\n"
                        + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                        + "\u3053\u3093\u306b\u3061\u306f<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                llama.applyChatTemplate(List.of(user("\u3000\u3053\u3093\u306b\u3061\u306f\u00a0")), true));
    }

    /** HF finds the last message by its Python strip(), which takes a trailing no-break space off too. */
    @Test
    void continuingTheLastMessageStripsItAsPythonDoes() {
        Tokenizer qwen3 = TokenizerFixtures.tokenizer("qwen3");
        String continued = qwen3.applyChatTemplate(List.of(user("Tell a story"), assistant("Once upon a\u00a0")),
                new ChatOptions(false, true, List.of(), Map.of()));
        assertTrue(continued.endsWith("</think>\n\nOnce upon a"), continued);
    }

    /** Llama 3 writes a tool result through tojson when it "is iterable", which in Jinja2 a string is: quoted. */
    @Test
    void llama32QuotesAToolResultAsJson() {
        Tokenizer llama = TokenizerFixtures.tokenizer("llama3_2");
        String prompt = llama.applyChatTemplate(List.of(user("6*7?"), assistant("Let me compute."), new ChatMessage("tool", "42 \"exact\"")), false);
        assertTrue(prompt.endsWith("Let me compute.<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n\"42 \\\"exact\\\"\"<|eot_id|>"), prompt);
    }

    @Test
    void mistralAlternatesInstructionsAndRejectsOtherRoles() {
        Tokenizer mistral = TokenizerFixtures.tokenizer("mistral");
        assertEquals("<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s> "
                        + "[INST] I'd like to show off how chat templating works! [/INST]",
                mistral.applyChatTemplate(List.of(user("Hello, how are you?"), assistant("I'm doing great. How can I help you today?"),
                        user("I'd like to show off how chat templating works!")), true));

        EmberException e = assertThrows(EmberException.class,
                () -> mistral.applyChatTemplate(List.of(system("Be brief."), user("Hi")), true));
        assertTrue(e.getMessage().contains("tokenizer_config.json") && e.getMessage().contains("Conversation roles must alternate"),
                e.getMessage());
    }

    @Test
    void aModelWithoutTemplateGetsPlainRoleLines(@TempDir Path dir) throws IOException {
        Files.copy(TokenizerFixtures.directory("mistral").resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        try (Tokenizer tokenizer = Tokenizer.load(dir)) {
            assertFalse(tokenizer.hasChatTemplate());
            List<ChatMessage> conversation = List.of(system("Be brief."), user("Hi"), assistant("Yo"));
            assertEquals("system: Be brief.\nuser: Hi\nassistant: Yo\nassistant:", tokenizer.applyChatTemplate(conversation, true));
            assertEquals("system: Be brief.\nuser: Hi\nassistant: Yo\n", tokenizer.applyChatTemplate(conversation, false));
        }
    }

    @Test
    void aChatTemplateFileBesideTheConfigWins(@TempDir Path dir) throws IOException {
        TokenizerFixtures.copyOf("mistral", dir);
        Files.writeString(dir.resolve("chat_template.jinja"),
                "{% for m in messages %}{{ m.role | upper }}={{ m.content.strip() }};{% endfor %}\n");
        try (Tokenizer tokenizer = Tokenizer.load(dir)) {
            assertEquals("USER=Hi;ASSISTANT=Yo;", tokenizer.applyChatTemplate(List.of(user(" Hi "), assistant("Yo\n")), true));
        }
    }

    @Test
    void brokenTemplatesNameTheirFile(@TempDir Path dir) throws IOException {
        TokenizerFixtures.copyOf("mistral", dir);
        Path template = dir.resolve("chat_template.jinja");
        for (String broken : List.of("{% if %}x{% endif %}", "{{ messages[0].content | no_such_filter }}",
                "{{ messages is no_such_test }}", "{{ messages[0 }}", "{{ 'unterminated }}", "{{ messages[0].content.no_such_method() }}")) {
            Files.writeString(template, broken);
            EmberException e = assertThrows(EmberException.class, () -> {
                try (Tokenizer tokenizer = Tokenizer.load(dir)) {
                    tokenizer.applyChatTemplate(List.of(user("Hi")), true);
                }
            }, broken);
            assertTrue(e.getMessage().contains(template.toString()), e.getMessage());
        }
    }
}
