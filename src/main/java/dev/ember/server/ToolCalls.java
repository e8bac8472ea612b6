package dev.ember.server;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.tokenizer.ChatMessage;
import dev.ember.tokenizer.Tokenizer;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Tool calling: what a chat request asked ({@link Request}), the format the model's chat template teaches it to call
 * in ({@link Format}), and the calls read back out of its text ({@link Format#parse}), as vLLM's tool-call parsers of
 * the same names read them.
 */
final class ToolCalls {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Hermes' tags around a call. */
    static final String OPEN = "<tool_call>", CLOSE = "</tool_call>";
    /** The special token before Mistral's calls, and the one between a call's name and its arguments in its later form. */
    static final String MISTRAL_CALLS = "[TOOL_CALLS]", MISTRAL_ARGS = "[ARGS]";
    private static final String ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    private static final TypeReference<Map<String, Object>> MAP = new TypeReference<>() { };

    private ToolCalls() {
    }

    /**
     * How a model writes a call. {@link #HERMES} (Qwen 2.5 and 3): each call a JSON object {@code {"name", "arguments"}}
     * between {@code <tool_call>} and {@code </tool_call>}. {@link #LLAMA3_JSON} (Llama 3.1 to 3.3): the answer is the
     * call, a JSON object {@code {"name", "parameters"}} (several joined by {@code ;}), after an optional
     * {@code <|python_tag|>}. {@link #MISTRAL} (Mistral 7B v0.3, Small, Nemo): the calls follow the special token
     * {@code [TOOL_CALLS]}, a JSON array of {@code {"name", "arguments"}} objects, or in the later tokenizers' form
     * {@code [TOOL_CALLS]NAME[ARGS]{...}} per call; their ids are nine letters and digits, as the templates demand.
     * A call forced by {@code tool_choice} is written without the special token, which a grammar cannot write: as the
     * array alone for Mistral.
     */
    enum Format {
        HERMES(OPEN + "\n", "arguments", "\n" + CLOSE + "\n" + OPEN + "\n", "\n" + CLOSE),
        LLAMA3_JSON("", "parameters", "; ", ""),
        MISTRAL("[", "arguments", ", ", "]");

        private static final Pattern HERMES_BLOCK = Pattern.compile(Pattern.quote(OPEN) + "(.*?)(?:" + Pattern.quote(CLOSE) + "|$)",
                Pattern.DOTALL);

        /** How forced calls are written: their opening, the key of the arguments, what goes between two calls, the closing. */
        final String before, argumentsKey, separator, after;

        Format(String before, String argumentsKey, String separator, String after) {
            this.before = before;
            this.argumentsKey = argumentsKey;
            this.separator = separator;
            this.after = after;
        }

        /** The format of vLLM's {@code --tool-call-parser} name. */
        static Format named(String name) {
            return switch (name) {
                case "hermes" -> HERMES;
                case "llama3_json" -> LLAMA3_JSON;
                case "mistral" -> MISTRAL;
                default -> throw new dev.ember.EmberException("--tool-call-parser " + name + " is not one of hermes, llama3_json, mistral");
            };
        }

        /** The format {@code tokenizer}'s chat template teaches, or null where it teaches none Ember reads. */
        static Format of(Tokenizer tokenizer) {
            if (tokenizer.chatTemplateContains(OPEN)) {
                return HERMES;
            }
            if (tokenizer.chatTemplateContains(MISTRAL_CALLS)) {
                return MISTRAL;
            }
            if (tokenizer.chatTemplateContains("\"parameters\": dictionary of argument name")) {
                return LLAMA3_JSON;
            }
            return null;
        }

        /**
         * The calls in {@code text}. A block (or answer) that is not a call, an object with a string "name" and an
         * object of arguments, stays in the content as written.
         */
        Parsed parse(String text) {
            return switch (this) {
                case HERMES -> hermes(text);
                case LLAMA3_JSON -> llama3(text);
                case MISTRAL -> mistral(text);
            };
        }

        /** Whether {@code key} holds a call's arguments: the format's key, or the other of "arguments" and "parameters". */
        boolean argumentsKey(String key) {
            return "arguments".equals(key) || "parameters".equals(key);
        }

        /** A new call's id: nine letters and digits for Mistral (its templates refuse others), else vLLM's form. */
        String newId() {
            ThreadLocalRandom random = ThreadLocalRandom.current();
            if (this == MISTRAL) {
                StringBuilder id = new StringBuilder(9);
                for (int i = 0; i < 9; i++) {
                    id.append(ALPHANUMERIC.charAt(random.nextInt(ALPHANUMERIC.length())));
                }
                return id.toString();
            }
            return "chatcmpl-tool-" + HexFormat.of().toHexDigits(random.nextLong());
        }

        /**
         * The id of a call sent back in a conversation's history, as the template is given it: for Mistral the last
         * nine characters of a longer one (OpenAI's and other servers' ids are longer, and Mistral's templates take
         * nine), as vLLM cuts them; as sent otherwise.
         */
        String historyId(String id) {
            return this == MISTRAL && id != null && id.length() > 9 ? id.substring(id.length() - 9) : id;
        }

        /** A conversation's turns with the ids of their calls and results as {@link #historyId} gives them to the template. */
        List<ChatMessage> history(List<ChatMessage> turns) {
            if (this != MISTRAL) {
                return turns;
            }
            List<ChatMessage> out = new ArrayList<>(turns.size());
            for (ChatMessage turn : turns) {
                List<Map<String, Object>> calls = new ArrayList<>();
                for (Map<String, Object> call : turn.toolCalls()) {
                    Map<String, Object> copy = new LinkedHashMap<>(call);
                    if (copy.get("id") instanceof String id) {
                        copy.put("id", historyId(id));
                    }
                    calls.add(copy);
                }
                out.add(new ChatMessage(turn.role(), turn.content(), calls, historyId(turn.toolCallId()), turn.reasoning()));
            }
            return out;
        }

        private static Parsed hermes(String text) {
            List<Call> calls = new ArrayList<>();
            StringBuilder content = new StringBuilder();
            Matcher block = HERMES_BLOCK.matcher(text);
            int from = 0;
            while (block.find()) {
                Call call = call(block.group(1), HERMES);
                if (call == null) {
                    continue;
                }
                content.append(text, from, block.start());
                from = block.end();
                calls.add(call);
            }
            content.append(text.substring(from));
            String rest = content.toString().strip();
            return new Parsed(rest.isEmpty() && !calls.isEmpty() ? null : calls.isEmpty() ? text : rest, calls);
        }

        private static Parsed llama3(String text) {
            String body = text.strip();
            body = body.startsWith("<|python_tag|>") ? body.substring("<|python_tag|>".length()).strip() : body;
            if (!body.startsWith("{")) {
                return new Parsed(text, List.of());
            }
            List<Call> calls = new ArrayList<>();
            try (MappingIterator<JsonNode> values = JSON.readerFor(JsonNode.class).readValues(body.replaceAll("}\\s*;\\s*\\{", "} {"))) {
                while (values.hasNext()) {
                    Call call = call(values.next(), LLAMA3_JSON);
                    if (call == null) {
                        return new Parsed(text, List.of());
                    }
                    calls.add(call);
                }
            } catch (Exception e) {
                return new Parsed(text, List.of());
            }
            return calls.isEmpty() ? new Parsed(text, List.of()) : new Parsed(null, calls);
        }

        private static Parsed mistral(String text) {
            int marker = text.indexOf(MISTRAL_CALLS);
            if (marker < 0) {  // a forced call: the array alone
                List<Call> calls = jsonCalls(text.strip());
                return calls == null ? new Parsed(text, List.of()) : new Parsed(null, calls);
            }
            List<Call> calls = new ArrayList<>();
            for (String segment : text.substring(marker + MISTRAL_CALLS.length()).split(Pattern.quote(MISTRAL_CALLS), -1)) {
                List<Call> some = mistralSegment(segment.strip());
                if (some == null) {
                    return new Parsed(text, List.of());
                }
                calls.addAll(some);
            }
            String before = text.substring(0, marker).strip();
            return new Parsed(before.isEmpty() ? null : before, calls);
        }

        /** The calls after one {@code [TOOL_CALLS]}: JSON calls, or {@code NAME[ARGS]{...}} (or {@code NAME{...}}); null if neither. */
        private static List<Call> mistralSegment(String segment) {
            if (segment.startsWith("[") || segment.startsWith("{")) {
                return jsonCalls(segment);
            }
            int args = segment.indexOf(MISTRAL_ARGS);
            int brace = segment.indexOf('{');
            int nameEnd = args >= 0 ? args : brace;
            if (nameEnd <= 0) {
                return null;
            }
            String name = segment.substring(0, nameEnd).strip();
            String arguments = segment.substring(args >= 0 ? args + MISTRAL_ARGS.length() : brace).strip();
            try {
                JsonNode object = JSON.readTree(arguments);
                if (name.isEmpty() || object == null || !object.isObject()) {
                    return null;
                }
                return List.of(new Call(MISTRAL.newId(), name, JSON.writeValueAsString(object)));
            } catch (JsonProcessingException e) {
                return null;
            }
        }

        /** The calls of a text that is JSON calls alone: arrays of them, or objects, one after another; null otherwise. */
        private static List<Call> jsonCalls(String text) {
            if (!text.startsWith("[") && !text.startsWith("{")) {
                return null;
            }
            List<Call> calls = new ArrayList<>();
            // A parser, not readValues: that would read a root array's elements and stop silently at its end.
            try (JsonParser values = JSON.createParser(text)) {
                while (values.nextToken() != null) {
                    JsonNode value = JSON.readTree(values);
                    for (JsonNode element : value.isArray() ? value : List.of(value)) {
                        Call call = call(element, MISTRAL);
                        if (call == null) {
                            return null;
                        }
                        calls.add(call);
                    }
                }
            } catch (IOException e) {
                return null;
            }
            return calls.isEmpty() ? null : calls;
        }
    }

    /**
     * What a streamed answer gives as its text arrives: a piece of its content, a call's opening (its id and name, with
     * the arguments known so far: "" while they are being written), or the next piece of the arguments of the call last
     * opened. Exactly one of the three is set.
     */
    record Piece(String content, Call call, String arguments) {
        static Piece content(String text) {
            return new Piece(text, null, null);
        }

        static Piece opening(Call call) {
            return new Piece(null, call, null);
        }

        static Piece arguments(String text) {
            return new Piece(null, null, text);
        }
    }

    /**
     * Reads calls out of an answer as it streams, so that its content is shown as it comes and each call as it is
     * written: opened once its name is known and its arguments have begun, then its arguments piece by piece (the
     * model's text with the whitespace outside strings left out), as vLLM streams them. In Hermes' format the text
     * outside {@code <tool_call>} blocks is content (a piece that may be the start of a tag held back until the next
     * shows); in Mistral's the text before {@code [TOOL_CALLS]} is content; in Llama 3's an answer that opens with
     * {@code {} is calls, any other content; a call forced by {@code tool_choice} is calls from the start. What is not
     * written as JSON calls (Mistral's later {@code NAME[ARGS]{...}}, a block that turns out not to be a call) is read
     * whole at the end, as {@link Format#parse} reads it. A call once opened stays one: cut short (by max_tokens), its
     * arguments are what was written.
     */
    static final class Streamer {
        private enum Phase { UNDECIDED, TEXT, CALL, WHOLE }

        private final Format format;
        private final boolean parallel;
        private final StringBuilder held = new StringBuilder();
        private Phase phase;
        private CallScanner scanner;
        private boolean called, keeping;

        Streamer(Request request) {
            this.format = request.format();
            this.parallel = request.parallel();
            // A forced call is calls from the start, but in Hermes' format, whose tags it keeps.
            boolean forced = request.choice() == Choice.REQUIRED || request.choice() == Choice.NAMED;
            this.phase = forced && format != Format.HERMES ? Phase.WHOLE : format == Format.LLAMA3_JSON ? Phase.UNDECIDED : Phase.TEXT;
            this.scanner = phase == Phase.WHOLE ? new CallScanner(format) : null;
        }

        /** Whether a call has been given. */
        boolean called() {
            return called;
        }

        List<Piece> push(String text) {
            List<Piece> out = new ArrayList<>();
            if (phase == Phase.WHOLE) {
                scan(out, text);
                return out;
            }
            held.append(text);
            while (true) {
                String h = held.toString();
                switch (phase) {
                    case UNDECIDED -> {  // Llama 3: an answer that opens with '{' is a call
                        String start = h.stripLeading();
                        if (start.isEmpty()) {
                            return out;
                        }
                        if (!start.startsWith("{")) {
                            phase = Phase.TEXT;
                            continue;
                        }
                        held.setLength(0);
                        whole(out, start);
                        return out;
                    }
                    case TEXT -> {
                        String tag = format == Format.HERMES ? OPEN : format == Format.MISTRAL ? MISTRAL_CALLS : null;
                        int open = tag == null ? -1 : h.indexOf(tag);
                        int upTo = open >= 0 ? open : h.length() - (tag == null ? 0 : Reasoning.partialTag(h, tag));
                        content(out, h.substring(0, upTo));
                        held.delete(0, open >= 0 ? open + tag.length() : upTo);
                        if (open < 0) {
                            return out;
                        }
                        if (format == Format.HERMES) {
                            phase = Phase.CALL;
                            scanner = new CallScanner(format);
                        } else {  // Mistral: what follows its token is calls, to the end
                            String rest = held.toString();
                            held.setLength(0);
                            whole(out, MISTRAL_CALLS, rest);
                            return out;
                        }
                    }
                    case CALL -> {
                        int close = h.indexOf(CLOSE);
                        int keep = close >= 0 ? 0 : Reasoning.partialTag(h, CLOSE);
                        String body = h.substring(0, close >= 0 ? close : h.length() - keep);
                        held.delete(0, body.length());
                        scan(out, body);
                        if (close < 0) {
                            return out;
                        }
                        held.delete(0, CLOSE.length());
                        closeBlock(out, true);
                        phase = Phase.TEXT;
                    }
                    case WHOLE -> throw new IllegalStateException("read above");
                }
            }
        }

        /** What was held back, once the answer has ended. */
        List<Piece> finish() {
            List<Piece> out = new ArrayList<>();
            String rest = held.toString();
            held.setLength(0);
            switch (phase) {
                case CALL -> {
                    scan(out, rest);
                    closeBlock(out, false);
                }
                case WHOLE -> {
                    Parsed parsed = format.parse(scanner.unread());
                    parsed.calls().forEach(call -> open(out, call));
                    content(out, parsed.content() == null ? "" : parsed.content());
                }
                default -> content(out, rest);
            }
            return out;
        }

        /** Calls from here to the end: {@code text} (after {@code prefix}, which a whole reading needs) to a scanner. */
        private void whole(List<Piece> out, String text) {
            whole(out, "", text);
        }

        private void whole(List<Piece> out, String prefix, String text) {
            phase = Phase.WHOLE;
            scanner = new CallScanner(format);
            scanner.unreadPrefix(prefix);
            scan(out, text);
        }

        private void scan(List<Piece> out, String text) {
            for (Piece piece : scanner.feed(text)) {
                if (piece.call() != null) {
                    open(out, piece.call());
                } else if (keeping) {
                    out.add(piece);
                }
            }
        }

        /** The end of a Hermes block: a call it opened is done; one it did not is read whole, or is content. */
        private void closeBlock(List<Piece> out, boolean closed) {
            String body = scanner.unread();
            if (!scanner.opened()) {
                Call call = call(body, Format.HERMES);
                if (call == null) {
                    content(out, OPEN + body + (closed ? CLOSE : ""));
                } else {
                    open(out, call);
                }
            }
            scanner = null;
        }

        /** A call, unless calls are not parallel and one was given (its arguments are then dropped too). */
        private void open(List<Piece> out, Call call) {
            keeping = parallel || !called;
            if (keeping) {
                out.add(Piece.opening(call));
            }
            called = true;
        }

        /** Content, but for the whitespace that only separates calls. */
        private void content(List<Piece> out, String text) {
            String shown = called ? text.strip() : text;
            if (!shown.isEmpty()) {
                out.add(Piece.content(shown));
            }
        }
    }

    /**
     * Calls read as their JSON is written: call objects ({@code {"name": ..., "arguments": {...}}}, or "parameters")
     * one after another, at the top level or in an array, between commas or semicolons. A call is opened once its name
     * is known and its arguments object has begun (or, written before the name, has ended), then its arguments follow
     * as they come, whitespace outside strings left out. At anything else between calls, or at an object that ends
     * without having been opened as a call, it gives up: what it was fed from the end of the last call on is then
     * {@link #unread}, for a whole reading.
     */
    static final class CallScanner {
        private enum Expect { KEY, COLON, VALUE, NEXT }

        private final Format format;
        private final StringBuilder unread = new StringBuilder();
        private final StringBuilder token = new StringBuilder();
        private final StringBuilder arguments = new StringBuilder();
        private int depth, calls;
        private int argumentsDepth = -1;  // the depth of the call object while its arguments are being read
        private boolean inString, escaped, gaveUp, opened, argumentsSeen;
        private Expect expect = Expect.KEY;
        private String key, name;

        CallScanner(Format format) {
            this.format = format;
        }

        /** Text a whole reading needs before what is fed (Mistral's token, which the streamer has read). */
        void unreadPrefix(String prefix) {
            unread.append(prefix);
        }

        /** Whether it met what is not JSON calls; from then on it only keeps what it is fed. */
        boolean gaveUp() {
            return gaveUp;
        }

        /** Whether the call being read (the last one, once it gave up or ended) was opened. */
        boolean opened() {
            return opened;
        }

        /**
         * What a whole reading has left to read: all that was fed since the last call ended, where it gave up (without
         * the separators after that call) or where an object is cut short unopened; "" where all is calls and separators.
         */
        String unread() {
            if (!gaveUp && (depth == 0 || opened)) {
                return "";
            }
            String text = unread.toString();
            return calls == 0 ? text : text.replaceFirst("^[\\s\\[\\],;]+", "");
        }

        List<Piece> feed(String text) {
            List<Piece> out = new ArrayList<>();
            int i = 0;
            while (i < text.length() && !gaveUp) {
                read(text.charAt(i++), out);
            }
            unread.append(text, i, text.length());  // once it gave up, kept for the whole reading
            flush(out);
            return out;
        }

        private void read(char c, List<Piece> out) {
            unread.append(c);
            if (depth == 0) {  // between calls
                if (c == '{') {
                    depth = 1;
                    expect = Expect.KEY;
                    key = name = null;
                    opened = argumentsSeen = false;
                    arguments.setLength(0);
                } else if (!Character.isWhitespace(c) && "[],;".indexOf(c) < 0) {
                    gaveUp = true;
                }
                return;
            }
            boolean inArguments = argumentsDepth >= 0;
            if (inString) {
                if (escaped) {
                    escaped = false;
                } else if (c == '\\') {
                    escaped = true;
                } else if (c == '"') {
                    inString = false;
                }
                if (inArguments) {
                    arguments.append(c);
                } else if (inString) {
                    token.append(c);
                } else {
                    stringEnded(out);
                }
                return;
            }
            if (Character.isWhitespace(c)) {
                return;
            }
            if (inArguments) {
                arguments.append(c);
                if (c == '"') {
                    inString = true;
                } else if (c == '{' || c == '[') {
                    depth++;
                } else if ((c == '}' || c == ']') && --depth == argumentsDepth) {
                    argumentsDepth = -1;
                    expect = Expect.NEXT;
                    open(out);  // arguments written before the name wait for it
                }
                return;
            }
            if (c == '"') {
                inString = true;
                token.setLength(0);
            } else if (c == '{' && depth == 1 && expect == Expect.VALUE && format.argumentsKey(key)) {
                argumentsDepth = depth++;
                argumentsSeen = true;
                arguments.append(c);
                open(out);
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    endCall(out);
                }
            } else if (depth == 1) {
                expect = c == ':' ? Expect.VALUE : c == ',' ? Expect.KEY : Expect.NEXT;
            }
        }

        private void stringEnded(List<Piece> out) {
            if (depth != 1) {
                return;
            }
            if (expect == Expect.KEY) {
                key = token.toString();
            } else if (expect == Expect.VALUE && "name".equals(key)) {
                try {
                    name = JSON.readValue("\"" + token + "\"", String.class);
                } catch (JsonProcessingException e) {
                    name = token.toString();
                }
                if (argumentsSeen) {
                    open(out);
                }
            }
            expect = expect == Expect.KEY ? Expect.COLON : Expect.NEXT;
        }

        /** Opens the call once its name is known and its arguments began; what they hold so far follows. */
        private void open(List<Piece> out) {
            if (opened || name == null || !argumentsSeen) {
                return;
            }
            opened = true;
            calls++;
            out.add(Piece.opening(new Call(format.newId(), name, "")));
            flush(out);
        }

        private void flush(List<Piece> out) {
            if (opened && !arguments.isEmpty()) {
                out.add(Piece.arguments(arguments.toString()));
                arguments.setLength(0);
            }
        }

        private void endCall(List<Piece> out) {
            if (!opened) {
                gaveUp = true;  // an object that is not a call: the whole reading takes it from here
                return;
            }
            flush(out);
            unread.setLength(0);
        }
    }

    /** OpenAI's {@code tool_choice}: the model decides, must call some function, must call the one named, or calls none. */
    enum Choice { AUTO, REQUIRED, NAMED, NONE }

    /**
     * A chat request's tools: the functions as the template writes them, each one's parameters schema by name, whether
     * the output is a call ({@link Choice#REQUIRED}, or the function {@code named}), the format its calls are in
     * (null where the request lets the model call nothing), and whether an answer may make several calls (OpenAI's
     * {@code parallel_tool_calls}, true by default; false keeps the first, as vLLM does).
     */
    record Request(List<Map<String, Object>> templateTools, Map<String, JsonNode> parameters, Choice choice, String named,
                   Format format, boolean parallel) {
        /** Whether the model's text is read for calls: unless the request said none. */
        boolean parsed() {
            return choice != Choice.NONE;
        }

        /** The calls in {@code text} and the text outside them, the first call alone where calls are not parallel. */
        Parsed read(String text) {
            Parsed parsed = format.parse(text);
            return parallel || parsed.calls().size() <= 1 ? parsed : new Parsed(parsed.content(), parsed.calls().subList(0, 1));
        }
    }

    /** One call the model made, as OpenAI's answer lists it ({@code arguments} the JSON text of an object). */
    record Call(String id, String name, String arguments) {
    }

    /** The model's text read for calls: the text outside them (null where there is none), and the calls in order. */
    record Parsed(String content, List<Call> calls) {
    }

    /** An assistant message's {@code tool_calls}, each {@code {"id", "type": "function", "function": {"name", "arguments"}}}. */
    static List<Map<String, Object>> historyCalls(RequestFields message, String param) {
        if (!message.has("tool_calls")) {
            return List.of();
        }
        JsonNode calls = message.node("tool_calls");
        if (!calls.isArray()) {
            throw RequestFields.wrongType(param, "an array of tool calls", calls);
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < calls.size(); i++) {
            JsonNode call = calls.get(i);
            JsonNode function = call.path("function");
            if (!function.path("name").isTextual() || !(function.path("arguments").isTextual() || function.path("arguments").isObject())) {
                throw ApiException.invalid(param + "[" + i + "]", param + "[" + i + "] needs a function with a \"name\" and "
                        + "\"arguments\" (a JSON string or an object), got " + RequestFields.describe(call));
            }
            Map<String, Object> entry = JSON.convertValue(call, MAP);
            JsonNode arguments = function.get("arguments");
            if (arguments.isTextual()) {  // OpenAI sends the arguments as JSON text; templates write them as an object
                try {
                    JsonNode parsed = JSON.readTree(arguments.asText());
                    if (parsed != null && parsed.isObject()) {
                        @SuppressWarnings("unchecked")
                        Map<String, Object> f = (Map<String, Object>) entry.get("function");
                        f.put("arguments", JSON.convertValue(parsed, MAP));
                    }
                } catch (JsonProcessingException e) {
                    // not JSON: the template gets the text as it came
                }
            }
            out.add(entry);
        }
        return out;
    }

    /** A request's tools: each function's parameters schema by name (null for none), and the tools as a template is given them. */
    private record Functions(Map<String, JsonNode> parameters, List<Map<String, Object>> forTemplate) {
    }

    /** {@code tools} checked: a list of {@code {"type": "function", "function": {"name", ...}}}, no name twice. */
    private static Functions functions(JsonNode tools) {
        if (!tools.isArray()) {
            throw RequestFields.wrongType("tools", "an array of tools", tools);
        }
        List<Map<String, Object>> templateTools = new ArrayList<>();
        Map<String, JsonNode> parameters = new LinkedHashMap<>();
        for (int i = 0; i < tools.size(); i++) {
            JsonNode tool = tools.get(i);
            JsonNode function = tool.path("function");
            String at = "tools[" + i + "]";
            if (!"function".equals(tool.path("type").asText()) || !function.path("name").isTextual() || function.path("name").asText().isEmpty()) {
                throw ApiException.invalid(at, at + " must be {\"type\": \"function\", \"function\": {\"name\": ...}}, got "
                        + RequestFields.describe(tool));
            }
            JsonNode schema = function.get("parameters");
            if (schema != null && !schema.isNull() && !schema.isObject()) {
                throw RequestFields.wrongType(at + ".function.parameters", "a JSON schema object", schema);
            }
            String name = function.get("name").asText();
            if (parameters.containsKey(name)) {
                throw ApiException.invalid(at, "two tools are named \"" + name + "\"");
            }
            parameters.put(name, schema == null || schema.isNull() ? null : schema);
            templateTools.add(JSON.convertValue(tool, MAP));
        }
        return new Functions(parameters, templateTools);
    }

    /** A request's {@code tools} as the chat template is given them (vLLM's /tokenize takes them too); empty where none. */
    static List<Map<String, Object>> forTemplate(RequestFields fields) {
        return fields.has("tools") ? functions(fields.node("tools")).forTemplate() : List.of();
    }

    /**
     * A chat request's {@code tools} and {@code tool_choice} (OpenAI's: "auto" by default where tools are given, "none",
     * "required", or one function named), or null where no tools are given. Calls are read in {@code format} (the
     * server's --tool-call-parser, else the one the model's template teaches); where there is none, a request that lets
     * the model call is refused.
     */
    static Request read(RequestFields fields, Tokenizer tokenizer, Format format) {
        JsonNode tools = fields.node("tools");
        JsonNode choiceNode = fields.node("tool_choice");
        if (tools == null || tools.isNull() || tools.isArray() && tools.isEmpty()) {
            if (choiceNode != null && !choiceNode.isNull() && !"none".equals(choiceNode.asText())) {
                throw ApiException.invalid("tool_choice", "tool_choice " + choiceNode + " needs tools to choose from");
            }
            return null;
        }
        Functions functions = functions(tools);
        Map<String, JsonNode> parameters = functions.parameters();
        List<Map<String, Object>> templateTools = functions.forTemplate();
        Choice choice = Choice.AUTO;
        String named = null;
        if (choiceNode != null && !choiceNode.isNull()) {
            if (choiceNode.isObject()) {
                named = choiceNode.at("/function/name").asText(null);
                if (!"function".equals(choiceNode.path("type").asText()) || named == null || !parameters.containsKey(named)) {
                    throw ApiException.invalid("tool_choice", "tool_choice " + choiceNode + " must name one of the tools: "
                            + String.join(", ", parameters.keySet()));
                }
                choice = Choice.NAMED;
            } else {
                choice = switch (choiceNode.asText()) {
                    case "auto" -> Choice.AUTO;
                    case "required" -> Choice.REQUIRED;
                    case "none" -> Choice.NONE;
                    default -> throw ApiException.invalid("tool_choice", "tool_choice " + choiceNode
                            + " is not one of \"auto\", \"required\", \"none\" or {\"type\": \"function\", \"function\": {\"name\": ...}}");
                };
            }
        }
        if (!tokenizer.hasChatTemplate()) {
            throw ApiException.invalid("tools", "tools: the model has no chat template, so nothing tells it of the tools");
        }
        if (choice != Choice.NONE && format == null) {
            throw ApiException.invalid("tools", "tools: Ember reads calls in Hermes' format (<tool_call> blocks, as Qwen's "
                    + "templates teach), Llama 3's JSON and Mistral's [TOOL_CALLS], and this model's chat template teaches none "
                    + "of them (ember serve --tool-call-parser hermes|llama3_json|mistral names one)");
        }
        return new Request(templateTools, parameters, choice, named, format, fields.bool("parallel_tool_calls", true));
    }

    /** A call of {@code body}, the text of a call's JSON object in {@code format}; null if it is not one. */
    private static Call call(String body, Format format) {
        try {
            return call(JSON.readTree(body.strip()), format);
        } catch (JsonProcessingException e) {
            return null;
        }
    }

    /**
     * A call of {@code call}, a JSON object with a string "name" and an object under the format's key for the
     * arguments (or the other one); null if it is not one.
     */
    private static Call call(JsonNode call, Format format) {
        String key = format.argumentsKey;
        JsonNode name = call == null ? null : call.get("name");
        JsonNode arguments = call == null ? null : call.has(key) ? call.get(key) : call.get(key.equals("arguments") ? "parameters" : "arguments");
        if (arguments != null && arguments.isTextual()) {  // some models write the arguments as OpenAI sends them: JSON text
            try {
                arguments = JSON.readTree(arguments.asText());
            } catch (JsonProcessingException e) {
                return null;
            }
        }
        if (name == null || !name.isTextual() || arguments == null || !arguments.isObject()) {
            return null;
        }
        try {
            return new Call(format.newId(), name.asText(), JSON.writeValueAsString(arguments));
        } catch (JsonProcessingException e) {
            return null;
        }
    }
}
