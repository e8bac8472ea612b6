package dev.ember.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.expression.ExpressionStrategy;
import com.hubspot.jinjava.lib.exptest.ExpTest;
import com.hubspot.jinjava.lib.filter.EscapeFilter;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.mode.ExecutionMode;
import com.hubspot.jinjava.tree.output.RenderedOutputNode;
import com.hubspot.jinjava.tree.parse.ExpressionToken;
import dev.ember.EmberException;
import jinjava.javax.el.CompositeELResolver;

import java.lang.reflect.Method;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * A model's Jinja chat template, rendered as HF's {@code apply_chat_template(..., tokenize=False)} renders it:
 * Jinja2 with {@code trim_blocks} and {@code lstrip_blocks}, the source's one trailing newline dropped, and HF's
 * globals ({@code raise_exception}, {@code strftime_now}, a Python {@code tojson}) on top of Jinjava, which
 * {@link JinjaDialect} and {@link PythonMethods} teach the Python-isms HF templates use.
 *
 * <p>Rendering is thread-safe. Each render gets its own interpreter and context, but Jinjava clears bookkeeping
 * of its shared global context after every render, so renders of one template take turns (one is about a
 * millisecond).
 *
 * <p>Known differences from Jinja2, none of which the templates of Llama 3, Qwen 2.5/3 or Mistral meet: booleans
 * print as {@code true}/{@code false} and None as nothing (Jinja2 prints {@code True} and {@code None}); an
 * undefined variable {@code is none} (in Jinja2 it is not); filters and tests Jinjava lacks ({@code items},
 * {@code max}, {@code min}) are refused when the template is loaded rather than rendered wrong.
 */
final class ChatTemplate {

    /** The special-token variables HF passes to every template (from tokenizer_config.json). */
    record TokenVariables(String bosToken, String eosToken, String unkToken, String padToken) {
    }

    private final String origin;
    private final String source;
    private final Map<String, Object> constants;
    private final Jinjava jinjava;

    /**
     * @param template the template text as the model ships it
     * @param origin   the file it came from, named in every error
     * @param tokens   the special-token variables; null ones are left undefined, as HF leaves them None
     * @param clock    what {@code strftime_now} reads
     */
    ChatTemplate(String template, String origin, TokenVariables tokens, Clock clock) {
        this.origin = origin;
        JinjaDialect.Translation translation;
        try {
            translation = JinjaDialect.translate(dropTrailingNewline(template));
        } catch (IllegalArgumentException e) {
            throw new EmberException(origin + ": chat template does not parse: " + e.getMessage(), e);
        }
        this.source = translation.template();
        this.jinjava = newJinjava();
        for (String filter : translation.filters()) {
            if (jinjava.getGlobalContext().getFilter(filter) == null) {
                throw new EmberException(origin + ": chat template uses the filter '" + filter + "', which Jinjava does not have");
            }
        }
        for (String test : translation.tests()) {
            if (jinjava.getGlobalContext().getExpTest(test) == null) {
                throw new EmberException(origin + ": chat template uses the test 'is " + test + "', which Jinjava does not have");
            }
        }
        Map<String, Object> constants = new HashMap<>();
        putIfPresent(constants, "bos_token", tokens.bosToken());
        putIfPresent(constants, "eos_token", tokens.eosToken());
        putIfPresent(constants, "unk_token", tokens.unkToken());
        putIfPresent(constants, "pad_token", tokens.padToken());
        // HF's functions are Jinja globals, so templates test them with `is defined` (Llama 3 does, for the date);
        // Jinjava functions are not variables, so a same-named binding stands in for that test.
        constants.put("raise_exception", "raise_exception");
        constants.put("strftime_now", "strftime_now");
        constants.put(TemplateFunctions.CLOCK, clock);
        this.constants = Map.copyOf(constants);
    }

    /**
     * @param tools     the functions the model may call, as OpenAI's request lists them; none when empty
     * @param variables further variables for the template (under the messages, tools and flags, which they cannot replace)
     */
    String render(List<ChatMessage> messages, boolean addGenerationPrompt, List<Map<String, Object>> tools,
                  Map<String, Object> variables) {
        List<Map<String, Object>> conversation = new ArrayList<>(messages.size());
        for (ChatMessage message : messages) {
            Map<String, Object> turn = new LinkedHashMap<>();
            turn.put("role", message.role());
            turn.put("content", message.content());
            if (!message.toolCalls().isEmpty()) {
                turn.put("tool_calls", message.toolCalls());
            }
            if (message.toolCallId() != null) {
                turn.put("tool_call_id", message.toolCallId());
            }
            if (message.reasoning() != null) {
                turn.put("reasoning_content", message.reasoning());
            }
            conversation.add(turn);
        }
        Map<String, Object> bindings = new HashMap<>(constants);
        bindings.putAll(variables);
        bindings.put("messages", conversation);
        bindings.put("add_generation_prompt", addGenerationPrompt);
        if (!tools.isEmpty()) {
            bindings.put("tools", tools);
        } else {
            bindings.remove("tools");
        }

        RenderResult result;
        synchronized (jinjava) {
            result = jinjava.renderForResult(source, bindings);
        }
        for (TemplateError error : result.getErrors()) {
            TemplateFunctions.TemplateRaised raised = raisedBy(error.getException());
            if (raised != null) {
                throw new EmberException(origin + ": the chat template rejected the conversation: " + raised.getMessage());
            }
        }
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new EmberException(origin + ": chat template failed at line " + error.getLineno() + ": " + error.getMessage());
            }
        }
        return result.getOutput();
    }

    /** The template as it runs (translated to Jinjava's dialect). */
    String source() {
        return source;
    }

    private static Jinjava newJinjava() {
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PythonMethods());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_WRITE);
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withKeepTrailingNewline(true)   // Jinja2 drops the source's trailing newline, not the output's
                .withElResolver(resolver)
                .withExecutionMode(new StringsAsTheyAre())
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        .withEvaluateMapKeys(true)
                        .withIterateOverMapKeys(true)
                        .withUsePyishObjectMapper(true)
                        .withUseNaturalOperatorPrecedence(true)
                        .withParseWhitespaceControlStrictly(true)
                        .withAllowAdjacentTextNodes(true)
                        .withUseTrimmingForNotesAndExpressions(true)
                        .withKeepNullableLoopValues(true)
                        .withHandleBackslashInQuotesOnly(true)
                        .build())
                .build();
        Jinjava jinjava = new Jinjava(config);
        register(jinjava, "raise_exception", "raiseException", Object.class);
        register(jinjava, "strftime_now", "strftimeNow", String.class);
        jinjava.getGlobalContext().registerFilter(new PythonToJson());
        jinjava.getGlobalContext().registerFilter(new PythonTrim());
        jinjava.getGlobalContext().registerExpTest(new PythonTypeTest("iterable", PythonTypeTest::isIterable));
        jinjava.getGlobalContext().registerExpTest(new PythonTypeTest("sequence", PythonTypeTest::isSequence));
        return jinjava;
    }

    private static void register(Jinjava jinjava, String name, String method, Class<?> parameter) {
        try {
            Method function = TemplateFunctions.class.getMethod(method, parameter);
            function.setAccessible(true); // the class is package-private; Jinjava calls through reflection
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", name, function));
        } catch (NoSuchMethodException e) {
            throw new AssertionError(e);
        }
    }

    /**
     * The source as Jinja2's lexer reads it: every line break ({@code \r\n}, {@code \r}, {@code \n}) made the
     * environment's {@code \n}, in text and string literals alike, then one trailing line break dropped. Left as
     * {@code \r\n}, a template saved with Windows line endings rendered them into the prompt, and trim_blocks
     * removed none of them.
     */
    private static String dropTrailingNewline(String template) {
        String normalized = template.replace("\r\n", "\n").replace('\r', '\n');
        return normalized.endsWith("\n") ? normalized.substring(0, normalized.length() - 1) : normalized;
    }

    private static void putIfPresent(Map<String, Object> map, String key, String value) {
        if (value != null) {
            map.put(key, value);
        }
    }

    private static TemplateFunctions.TemplateRaised raisedBy(Throwable error) {
        for (Throwable t = error; t != null; t = t.getCause()) {
            if (t instanceof TemplateFunctions.TemplateRaised raised) {
                return raised;
            }
        }
        return null;
    }

    /**
     * Jinja2's {@code iterable} and {@code sequence} tests, which (as in Python) hold for strings too: Llama 3 writes
     * a tool result with {@code tojson} when it {@code is iterable}, so a string result is quoted. Jinjava's say no.
     */
    private record PythonTypeTest(String name, Predicate<Object> test) implements ExpTest {
        static boolean isIterable(Object value) {
            return value instanceof Iterable<?> || value instanceof Map<?, ?> || value instanceof CharSequence
                    || (value != null && value.getClass().isArray());
        }

        static boolean isSequence(Object value) {   // has len() and [] in Python: str, list, tuple, dict
            return value instanceof List<?> || value instanceof Map<?, ?> || value instanceof CharSequence
                    || (value != null && value.getClass().isArray());
        }

        @Override
        public String getName() {
            return name;
        }

        @Override
        public boolean evaluate(Object var, JinjavaInterpreter interpreter, Object... args) {
            return test.test(var);
        }
    }

    /**
     * A filter of Python's signature, whose arguments come positionally or by name and whose plain string arguments
     * (Jinjava's other entry) are read the same way.
     */
    private abstract static class PythonFilter implements Filter {
        private final String name;

        PythonFilter(String name) {
            this.name = name;
        }

        @Override
        public String getName() {
            return name;
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return filter(var, interpreter, args, Map.of());
        }

        /** Argument {@code name}, given by name or else as the {@code position}-th positional one; null when absent. */
        static Object argument(Object[] args, Map<String, Object> kwargs, int position, String name) {
            return kwargs.containsKey(name) ? kwargs.get(name) : args.length > position ? args[position] : null;
        }
    }

    /**
     * Jinja2's {@code trim(value, chars=None)}, which is Python's {@code str.strip(chars)}: Jinjava's strips what
     * Java's {@code String.trim} does (every control character, but no U+00A0, U+3000 or other Unicode space) and
     * ignores {@code chars}. Llama 3's templates trim every message with it.
     */
    private static final class PythonTrim extends PythonFilter {
        PythonTrim() {
            super("trim");
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object chars = argument(args, kwargs, 0, "chars");
            String text = var == null ? "" : var.toString();
            return PythonMethods.strip(text, chars == null ? null : chars.toString(), true, true);
        }
    }

    /**
     * Prints a {@code {{ expression }}} whose value is a string as Jinja2 does: the string itself. Jinjava's Python-style
     * object mapper, which prints lists and dicts as Python does, writes a string through JSON and undoes only some of
     * the escapes, so a control character (an ANSI colour code in a tool's output) came out as {@code \u001B}. Other
     * values print as Jinjava prints them, and a value is evaluated once.
     */
    private static final class StringsAsTheyAre implements ExpressionStrategy, ExecutionMode {
        @java.io.Serial
        private static final long serialVersionUID = 1L;

        @Override
        public void prepareContext(Context context) {  // each render's context, as Jinjava's eager mode sets its own
            context.setExpressionStrategy(this);
        }

        @Override
        public RenderedOutputNode interpretOutput(ExpressionToken master, JinjavaInterpreter interpreter) {
            Object value = interpreter.resolveELExpression(master.getExpr(), master.getLineNumber());
            String text = value instanceof String s ? s : interpreter.getAsString(value);
            return new RenderedOutputNode(interpreter.getContext().isAutoEscape() ? EscapeFilter.escapeHtmlEntities(text) : text);
        }
    }

    /**
     * HF's {@code tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)}: positional arguments in
     * that order (not Jinja2's own {@code tojson(indent)}), and {@code separators} as a pair of strings (Kimi K2's
     * templates write tools with {@code separators=(',', ':')}).
     */
    private static final class PythonToJson extends PythonFilter {
        PythonToJson() {
            super("tojson");
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object ensureAscii = argument(args, kwargs, 0, "ensure_ascii");
            Object indent = argument(args, kwargs, 1, "indent");
            Object separators = argument(args, kwargs, 2, "separators");
            Object sortKeys = argument(args, kwargs, 3, "sort_keys");
            String itemSeparator = null;
            String keySeparator = null;
            if (separators != null) {
                List<?> pair = separators instanceof List<?> list ? list
                        : separators instanceof Object[] array ? List.of(array) : List.of();
                if (pair.size() != 2) {
                    throw new IllegalArgumentException("tojson: separators must be a pair of strings, got " + separators);
                }
                itemSeparator = String.valueOf(pair.get(0));
                keySeparator = String.valueOf(pair.get(1));
            }
            return PythonJson.dumps(var, truthy(ensureAscii), indent instanceof Number n ? n.intValue() : -1, itemSeparator,
                    keySeparator, truthy(sortKeys));
        }

        private static boolean truthy(Object value) {
            return value instanceof Boolean b ? b : value instanceof Number n ? n.doubleValue() != 0
                    : value instanceof CharSequence c ? !c.isEmpty() : value != null;
        }
    }
}
