package dev.ember.server;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Calls read out of a model's text in Hermes' and Llama 3's formats, as vLLM's hermes and llama3_json parsers read them. */
class ToolCallsTest {

    @Test
    void callsAreReadAndTheTextAroundThemIsTheContent() {
        ToolCalls.Parsed parsed = ToolCalls.Format.HERMES.parse("Let me look.\n<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Oslo\"}}\n"
                + "</tool_call>\n<tool_call>{\"name\": \"time\", \"arguments\": {}}</tool_call>");
        assertEquals("Let me look.", parsed.content());
        assertEquals(2, parsed.calls().size());
        assertEquals("weather", parsed.calls().get(0).name());
        assertEquals("{\"city\":\"Oslo\"}", parsed.calls().get(0).arguments());
        assertEquals("time", parsed.calls().get(1).name());
        assertEquals("{}", parsed.calls().get(1).arguments());
        assertNotEquals(parsed.calls().get(0).id(), parsed.calls().get(1).id());
        assertTrue(parsed.calls().get(0).id().startsWith("chatcmpl-tool-"));
    }

    @Test
    void aCallAloneHasNoContentAndAnUnclosedLastBlockCountsWhenWhole() {
        ToolCalls.Parsed parsed = ToolCalls.Format.HERMES.parse("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": [1, 2]}}\n");
        assertNull(parsed.content());
        assertEquals("{\"x\":[1,2]}", parsed.calls().getFirst().arguments());
    }

    @Test
    void whatIsNotACallStaysTextAsWritten() {
        for (String text : new String[] {"plain words", "<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": </tool_call>",
                "<tool_call>{\"arguments\": {}}</tool_call>", "<tool_call>[1]</tool_call>", "<tool_call>{\"name\": 3, \"arguments\": {}}"}) {
            ToolCalls.Parsed parsed = ToolCalls.Format.HERMES.parse(text);
            assertTrue(parsed.calls().isEmpty(), text);
            assertEquals(text, parsed.content());
        }
    }

    @Test
    void llama3AnswersThatAreCallsAreRead() {
        ToolCalls.Parsed one = ToolCalls.Format.LLAMA3_JSON.parse("<|python_tag|>{\"name\": \"weather\", \"parameters\": {\"city\": \"Oslo\"}}");
        assertNull(one.content());
        assertEquals("weather", one.calls().getFirst().name());
        assertEquals("{\"city\":\"Oslo\"}", one.calls().getFirst().arguments());
        ToolCalls.Parsed two = ToolCalls.Format.LLAMA3_JSON.parse(" {\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"x\": 1}}");
        assertEquals(2, two.calls().size());
        assertEquals("b", two.calls().get(1).name());
        for (String text : new String[] {"Hello there", "{\"name\": \"a\"}", "{\"name\": \"a\", \"parameters\": {}} and more", "{broken"}) {
            ToolCalls.Parsed parsed = ToolCalls.Format.LLAMA3_JSON.parse(text);
            assertTrue(parsed.calls().isEmpty(), text);
            assertEquals(text, parsed.content());
        }
    }
}
