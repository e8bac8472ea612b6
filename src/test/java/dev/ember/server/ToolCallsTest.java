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
    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();


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

    /** Arguments written as JSON text (as OpenAI sends them back) are read as the object they hold. */
    @Test
    void argumentsWrittenAsJsonTextAreTheObjectTheyHold() {
        ToolCalls.Parsed parsed = ToolCalls.Format.HERMES.parse("<tool_call>{\"name\": \"w\", \"arguments\": \"{\\\"c\\\": 1}\"}</tool_call>");
        assertEquals("{\"c\":1}", parsed.calls().getFirst().arguments());
        assertTrue(ToolCalls.Format.HERMES.parse("<tool_call>{\"name\": \"w\", \"arguments\": \"not json\"}</tool_call>").calls().isEmpty());
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
        assertTrue(pieces.stream().noneMatch(p -> p.content() != null), "the second call is not content either: " + pieces);
        assertEquals("{}", pieces.stream().filter(p -> p.arguments() != null).map(ToolCalls.Piece::arguments).collect(Collectors.joining()),
                "nor are its arguments given");
    }

    /**
     * Streamed in random pieces, an answer gives the calls (each opened with its name, then its arguments in pieces that
     * join into the same JSON value) and, whitespace aside, the content its whole text gives.
     */
    @ParameterizedTest
    @CsvSource(delimiter = '|', textBlock = """
            HERMES      | Let me look.\\n<tool_call>\\n{"name": "w", "arguments": {"c": "Oslo", "n": [1, {"x": "}"}]}}\\n</tool_call>\\n<tool_call>{"name": "t", "arguments": {}}</tool_call>
            HERMES      | No call here, just <tool text.
            HERMES      | <tool_call>{"name": "w", "arguments": {"c": 1}}
            HERMES      | <tool_call>not json</tool_call> after
            HERMES      | <tool_call>{"arguments": {"q": "a \\"quoted\\" word"}, "name": "late"}</tool_call>
            HERMES      | <tool_call>{"name": "w", "arguments": "not an object"}</tool_call> after
            LLAMA3_JSON | {"name": "w", "parameters": {"c": "Oslo"}}
            LLAMA3_JSON | {"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": 1.50}}
            LLAMA3_JSON | Plain words {not a call}
            MISTRAL     | Let me see. [TOOL_CALLS] [{"name": "w", "arguments": {"c": "Oslo"}}, {"name": "t", "arguments": {}}]
            MISTRAL     | [TOOL_CALLS]w[ARGS]{"c": 1}[TOOL_CALLS]t[ARGS]{}
            MISTRAL     | An answer with [brackets] and [TOOL_CALL but no call.""")
    void aStreamedAnswerGivesWhatItsWholeTextGives(ToolCalls.Format format, String escaped) throws Exception {
        String text = escaped.replace("\\n", "\n");
        ToolCalls.Parsed whole = format.parse(text);
        for (long seed = 0; seed < 40; seed++) {
            List<ToolCalls.Piece> pieces = streamed(text, format, ToolCalls.Choice.AUTO, seed);
            List<String> calls = new ArrayList<>();
            for (ToolCalls.Piece piece : pieces) {
                if (piece.call() != null) {
                    calls.add(piece.call().name() + "\u0000" + piece.call().arguments());
                } else if (piece.arguments() != null) {
                    calls.set(calls.size() - 1, calls.getLast() + piece.arguments());
                }
            }
            assertEquals(whole.calls().size(), calls.size(), "seed " + seed + ": " + calls);
            for (int i = 0; i < calls.size(); i++) {
                String[] nameAndArguments = calls.get(i).split("\u0000", 2);
                assertEquals(whole.calls().get(i).name(), nameAndArguments[0], "seed " + seed);
                assertEquals(JSON.readTree(whole.calls().get(i).arguments()), JSON.readTree(nameAndArguments[1]), "seed " + seed);
            }
            String content = pieces.stream().filter(p -> p.content() != null).map(ToolCalls.Piece::content)
                    .collect(Collectors.joining());
            assertEquals(whole.content() == null ? "" : whole.content().replaceAll("\\s+", ""), content.replaceAll("\\s+", ""),
                    "seed " + seed);
        }
    }

    /** A call's arguments stream as they are written, without the whitespace outside strings; a call cut short stays one. */
    @Test
    void aCallsArgumentsStreamAsTheyAreWritten() {
        String text = "<tool_call>\n{\"name\": \"write\", \"arguments\": {\"path\": \"a b.txt\", \"text\": \"line one\\nline two\"}}\n</tool_call>";
        ToolCalls.Streamer streamer = new ToolCalls.Streamer(new ToolCalls.Request(List.of(), Map.of(), ToolCalls.Choice.AUTO, null,
                ToolCalls.Format.HERMES, true));
        List<ToolCalls.Piece> pieces = new ArrayList<>();
        int openedAt = -1;
        for (int at = 0; at < text.length(); at++) {
            pieces.addAll(streamer.push(text.substring(at, at + 1)));
            if (openedAt < 0 && pieces.stream().anyMatch(p -> p.call() != null)) {
                openedAt = at;
            }
        }
        pieces.addAll(streamer.finish());
        assertEquals(text.indexOf("{", text.indexOf("arguments")), openedAt, "opened as its arguments begin");
        ToolCalls.Call opened = pieces.stream().filter(p -> p.call() != null).findFirst().orElseThrow().call();
        assertEquals("write", opened.name());
        assertEquals("", opened.arguments());
        String arguments = pieces.stream().filter(p -> p.arguments() != null).map(ToolCalls.Piece::arguments).collect(Collectors.joining());
        assertEquals("{\"path\":\"a b.txt\",\"text\":\"line one\\nline two\"}", arguments);
        assertTrue(pieces.stream().filter(p -> p.arguments() != null).count() > 10, "piece by piece");
        assertTrue(pieces.stream().noneMatch(p -> p.content() != null), pieces.toString());

        List<ToolCalls.Piece> cut = streamed("[{\"name\": \"w\", \"arguments\": {\"c\": \"Os", ToolCalls.Format.MISTRAL,
                ToolCalls.Choice.REQUIRED, 1);
        assertEquals("w", cut.getFirst().call().name());
        assertEquals("{\"c\":\"Os", cut.stream().filter(p -> p.arguments() != null).map(ToolCalls.Piece::arguments)
                .collect(Collectors.joining()));
    }

    private static List<ToolCalls.Piece> streamed(String text, ToolCalls.Format format, ToolCalls.Choice choice, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        ToolCalls.Streamer streamer = new ToolCalls.Streamer(new ToolCalls.Request(List.of(), Map.of(), choice, null, format, true));
        List<ToolCalls.Piece> pieces = new ArrayList<>();
        for (int at = 0; at < text.length(); ) {
            int end = Math.min(text.length(), at + random.nextInt(1, 6));
            pieces.addAll(streamer.push(text.substring(at, end)));
            at = end;
        }
        pieces.addAll(streamer.finish());
        return pieces;
    }
}
