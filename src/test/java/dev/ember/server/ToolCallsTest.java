package dev.ember.server;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Calls read out of a model's text in Hermes' format, as vLLM's hermes parser reads them. */
class ToolCallsTest {

    @Test
    void callsAreReadAndTheTextAroundThemIsTheContent() {
        ToolCalls.Parsed parsed = ToolCalls.parse("Let me look.\n<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Oslo\"}}\n"
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
        ToolCalls.Parsed parsed = ToolCalls.parse("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": [1, 2]}}\n");
        assertNull(parsed.content());
        assertEquals("{\"x\":[1,2]}", parsed.calls().getFirst().arguments());
    }

    @Test
    void whatIsNotACallStaysTextAsWritten() {
        for (String text : new String[] {"plain words", "<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": </tool_call>",
                "<tool_call>{\"arguments\": {}}</tool_call>", "<tool_call>[1]</tool_call>", "<tool_call>{\"name\": 3, \"arguments\": {}}"}) {
            ToolCalls.Parsed parsed = ToolCalls.parse(text);
            assertTrue(parsed.calls().isEmpty(), text);
            assertEquals(text, parsed.content());
        }
    }
}
