package dev.ember.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Collectors;

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

    /**
     * Mistral's calls follow [TOOL_CALLS]: a JSON array of calls (7B v0.3, Small 3), or NAME[ARGS]{...} per call (the
     * later tokenizers); a forced call is the array alone. Ids are nine letters and digits, as its templates demand.
     */
    @Test
    void mistralsCallsAreReadInBothItsForms() {
        ToolCalls.Parsed array = ToolCalls.Format.MISTRAL.parse("I will look. [TOOL_CALLS] [{\"name\": \"weather\", \"arguments\": "
                + "{\"city\": \"Oslo\"}}, {\"name\": \"time\", \"arguments\": {}}]");
        assertEquals("I will look.", array.content());
        assertEquals(List.of("weather{\"city\":\"Oslo\"}", "time{}"), array.calls().stream().map(c -> c.name() + c.arguments()).toList());
        ToolCalls.Parsed named = ToolCalls.Format.MISTRAL.parse("[TOOL_CALLS]weather[ARGS]{\"city\": \"Oslo\"}[TOOL_CALLS]time{}");
        assertNull(named.content());
        assertEquals(List.of("weather{\"city\":\"Oslo\"}", "time{}"), named.calls().stream().map(c -> c.name() + c.arguments()).toList());
        ToolCalls.Parsed forced = ToolCalls.Format.MISTRAL.parse("[{\"name\": \"weather\", \"arguments\": {\"city\": \"Oslo\"}}]");
        assertNull(forced.content());
        assertEquals("weather", forced.calls().getFirst().name());
        for (ToolCalls.Call call : List.of(array.calls().get(0), array.calls().get(1), named.calls().get(0), forced.calls().get(0))) {
            assertTrue(call.id().matches("[A-Za-z0-9]{9}"), call.id());
        }
        for (String text : new String[] {"[1, 2, 3]", "Plain [words]", "[TOOL_CALLS] [{\"name\": \"w\"}]", "[TOOL_CALLS] not a call",
                "[TOOL_CALLS] [{\"name\": \"w\", \"arguments\": {}}] trailing words", "[TOOL_CALLS][ARGS]{}"}) {
            ToolCalls.Parsed parsed = ToolCalls.Format.MISTRAL.parse(text);
            assertTrue(parsed.calls().isEmpty(), text);
            assertEquals(text, parsed.content());
        }
        assertEquals("abcdefghi", ToolCalls.Format.MISTRAL.historyId("chatcmpl-tool-abcdefghi"));
        assertEquals("call_1", ToolCalls.Format.MISTRAL.historyId("call_1"));
        assertEquals("chatcmpl-tool-abcdefghi", ToolCalls.Format.HERMES.historyId("chatcmpl-tool-abcdefghi"));
    }

    /** parallel_tool_calls false keeps an answer's first call, whole or streamed. */
    @Test
    void callsThatAreNotParallelAreTheFirstAlone() {
        String text = "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>";
        ToolCalls.Request serial = new ToolCalls.Request(List.of(), Map.of(), ToolCalls.Choice.AUTO, null, ToolCalls.Format.HERMES, false);
        assertEquals(List.of("a"), serial.read(text).calls().stream().map(ToolCalls.Call::name).toList());
        ToolCalls.Request parallel = new ToolCalls.Request(List.of(), Map.of(), ToolCalls.Choice.AUTO, null, ToolCalls.Format.HERMES, true);
        assertEquals(List.of("a", "b"), parallel.read(text).calls().stream().map(ToolCalls.Call::name).toList());
        ToolCalls.Streamer streamer = new ToolCalls.Streamer(serial);
        List<ToolCalls.Piece> pieces = new ArrayList<>(streamer.push(text));
        pieces.addAll(streamer.finish());
        assertEquals(List.of("a"), pieces.stream().filter(p -> p.call() != null).map(p -> p.call().name()).toList());
        assertTrue(pieces.stream().allMatch(p -> p.call() != null), "the second call is not content either: " + pieces);
    }

    /** Streamed in random pieces, an answer gives the calls and (whitespace aside) the content its whole text gives. */
    @ParameterizedTest
    @CsvSource(delimiter = '|', textBlock = """
            HERMES      | Let me look.\\n<tool_call>\\n{"name": "w", "arguments": {"c": "Oslo"}}\\n</tool_call>\\n<tool_call>{"name": "t", "arguments": {}}</tool_call>
            HERMES      | No call here, just <tool text.
            HERMES      | <tool_call>{"name": "w", "arguments": {"c": 1}}
            HERMES      | <tool_call>not json</tool_call> after
            LLAMA3_JSON | {"name": "w", "parameters": {"c": "Oslo"}}
            LLAMA3_JSON | Plain words {not a call}
            MISTRAL     | Let me see. [TOOL_CALLS] [{"name": "w", "arguments": {"c": "Oslo"}}, {"name": "t", "arguments": {}}]
            MISTRAL     | [TOOL_CALLS]w[ARGS]{"c": 1}[TOOL_CALLS]t[ARGS]{}
            MISTRAL     | An answer with [brackets] and [TOOL_CALL but no call.
            MISTRAL     | [TOOL_CALLS] [{"name": "w", "arguments": {"c":""")
    void aStreamedAnswerGivesWhatItsWholeTextGives(ToolCalls.Format format, String escaped) {
        String text = escaped.replace("\\n", "\n");
        ToolCalls.Parsed whole = format.parse(text);
        for (long seed = 0; seed < 40; seed++) {
            SplittableRandom random = new SplittableRandom(seed);
            ToolCalls.Streamer streamer = new ToolCalls.Streamer(new ToolCalls.Request(List.of(), Map.of(), ToolCalls.Choice.AUTO, null, format, true));
            List<ToolCalls.Piece> pieces = new ArrayList<>();
            for (int at = 0; at < text.length(); ) {
                int end = Math.min(text.length(), at + random.nextInt(1, 6));
                pieces.addAll(streamer.push(text.substring(at, end)));
                at = end;
            }
            pieces.addAll(streamer.finish());
            List<String> names = pieces.stream().filter(p -> p.call() != null).map(p -> p.call().name() + p.call().arguments()).toList();
            assertEquals(whole.calls().stream().map(c -> c.name() + c.arguments()).toList(), names, "seed " + seed);
            String content = pieces.stream().filter(p -> p.content() != null).map(ToolCalls.Piece::content)
                    .collect(Collectors.joining());
            assertEquals(whole.content() == null ? "" : whole.content().replaceAll("\\s+", ""), content.replaceAll("\\s+", ""),
                    "seed " + seed);
            assertEquals(!whole.calls().isEmpty(), streamer.called());
        }
    }
}
