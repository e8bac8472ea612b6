package dev.ember.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.IntPredicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Rewrites the two pieces of Python Jinja syntax that HF chat templates use and Jinjava's expression parser
 * cannot read into equivalent forms it can; everything else is left byte for byte.
 * <ul>
 *   <li>A slice with a step, {@code seq[a:b:c]} (Qwen3 walks {@code messages[::-1]}), becomes
 *       {@code seq.__slice__(a, b, c)}, which {@link PythonMethods} evaluates with Python's slice rules.
 *       A method call keeps the slice's postfix binding, so {@code seq[::-1][0]} still means what it meant.</li>
 *   <li>A keyword argument's value is parenthesised, {@code f(n=a - 1)} becoming {@code f(n=(a - 1))}: Jinjava
 *       parses {@code =} as an operator at the level of {@code +} and {@code -}, so Qwen3's
 *       {@code namespace(last_query_index=messages|length - 1)} would otherwise subtract from the argument.</li>
 *   <li>What a {@code not} negates is parenthesised, {@code not x is defined} becoming {@code not (x is defined)}:
 *       in Jinja2 {@code not} binds more loosely than tests and comparisons, up to the next {@code and}, {@code or},
 *       {@code if} or {@code else}; Jinjava binds it as tightly as a unary minus, so Mistral's
 *       {@code not tools is defined} asked whether the boolean {@code not tools} is defined (always) and dropped
 *       the tools. The {@code not} of {@code is not} and {@code not in} is an operator's, and left alone.</li>
 *   <li>A loop with a filter, {@code for x in xs if c}, becomes a loop that collects the items passing {@code c}
 *       and a loop over those: Jinjava ignores the filter, so {@code loop.index} and {@code loop.last} counted the
 *       items it should have skipped (Mistral's templates skip a function's "return" key this way).</li>
 *   <li>{@code {%+ ... %}} keeps the whitespace before it on its line, as lstrip_blocks leaves it in Jinja2: an empty
 *       {@code {{ '' }}} goes before the tag, which Jinjava would otherwise strip to the line's start.</li>
 *   <li>A string literal is read with Python's escapes (hexadecimal, Unicode and octal ones, a backslash before a
 *       line break continuing the line, an unknown escape kept as written) and written back with only the escapes
 *       Jinjava reads (the backslash, the quote, a line break and a tab); Jinjava refuses the others, and Mistral's
 *       templates continue their long strings over lines.</li>
 * </ul>
 * Only the insides of {@code {{ }}} and {@code {% %}} are touched; text, comments, {@code raw} blocks and string
 * literals never are. The translation also lists the filters and tests the template names: Jinjava renders an
 * unknown one as nothing, where Jinja2 refuses the template, so {@link ChatTemplate} checks them up front.
 */
final class JinjaDialect {

    /** The translated template and the names after its {@code |} (filters) and {@code is}/{@code is not} (tests). */
    record Translation(String template, Set<String> filters, Set<String> tests) {
    }

    private static final String OPENING = "([{";
    private static final String CLOSING = ")]}";
    private static final Pattern KEYWORD_ARGUMENT = Pattern.compile("(\\s*[A-Za-z_][A-Za-z0-9_]*\\s*=)(?!=)(.*)", Pattern.DOTALL);
    private static final Pattern RAW_START = Pattern.compile("\\{%[-+]?\\s*raw\\s*[-+]?%}");
    private static final Pattern RAW_END = Pattern.compile("\\{%[-+]?\\s*endraw\\s*[-+]?%}");
    private static final Pattern FILTER = Pattern.compile("\\|\\s*([A-Za-z_][A-Za-z0-9_]*)");
    private static final Pattern TEST = Pattern.compile("(?<![A-Za-z0-9_])is\\s+(?:not\\s+)?([A-Za-z_][A-Za-z0-9_]*)");

    private final Set<String> filters = new TreeSet<>();
    private final Set<String> tests = new TreeSet<>();

    private JinjaDialect() {
    }

    /** The template with every step slice and keyword argument rewritten; throws on an unterminated tag. */
    static Translation translate(String template) {
        JinjaDialect dialect = new JinjaDialect();
        String translated = dialect.rewrite(template);
        return new Translation(translated, Set.copyOf(dialect.filters), Set.copyOf(dialect.tests));
    }

    private String rewrite(String template) {
        StringBuilder out = new StringBuilder(template.length() + 64);
        int i = 0;
        while (i < template.length()) {
            int open = template.indexOf('{', i);
            if (open < 0 || open + 1 >= template.length()) {
                out.append(template, i, template.length());
                break;
            }
            char kind = template.charAt(open + 1);
            if (kind != '{' && kind != '%' && kind != '#') {
                out.append(template, i, open + 1);
                i = open + 1;
                continue;
            }
            out.append(template, i, open);
            if (kind == '#') {
                int close = template.indexOf("#}", open + 2);
                int end = close < 0 ? template.length() : close + 2;
                out.append(template, open, end);
                i = end;
                continue;
            }
            Matcher raw = RAW_START.matcher(template).region(open, template.length());
            if (kind == '%' && raw.lookingAt()) {
                Matcher endRaw = RAW_END.matcher(template);
                int end = endRaw.find(raw.end()) ? endRaw.end() : template.length();
                out.append(template, open, end);
                i = end;
                continue;
            }
            int close = tagEnd(template, open + 2, kind == '{' ? '}' : '%');
            if (close < 0) {
                throw new IllegalArgumentException("unterminated " + template.substring(open, open + 2) + " at offset " + open);
            }
            String body = template.substring(open + 2, close);
            if (kind == '%' && body.startsWith("+")) {
                // {%+ keeps the whitespace before the tag, which lstrip_blocks would strip; Jinjava strips it anyway
                // unless the tag is not the first thing on its line, which an empty expression before it makes so.
                out.append("{{ '' }}");
            }
            out.append(template, open, open + 2);
            noteFiltersAndTests(body);
            String loop = kind == '%' ? filteredLoop(body) : null;
            out.append(loop != null ? loop : isMacroDefinition(body) ? body : expression(body));
            out.append(template, close, close + 2);
            i = close + 2;
        }
        return out.toString();
    }

    private static final Pattern FOR_TAG = Pattern.compile("(\\s*[-+]?\\s*)for\\s+(.+?)\\s+in\\s+(.*?)(\\s*[-+]?\\s*)", Pattern.DOTALL);
    private int filteredLoops;

    /**
     * The tag body {@code for T in XS if C}, rewritten as the bodies of a loop that collects the items passing
     * {@code C} into a list and the start of a loop over that list; null for any other tag.
     */
    private String filteredLoop(String body) {
        Matcher tag = FOR_TAG.matcher(body);
        if (!tag.matches()) {
            return null;
        }
        String rest = tag.group(3);
        int filter = findTopLevel(rest, 0, i -> isWordAt(rest, i, "if"));
        if (filter < 0 || findTopLevel(rest, 0, i -> isWordAt(rest, i, "recursive")) >= 0) {
            return null;
        }
        String targets = tag.group(2).strip();
        String items = expression(rest.substring(0, filter)).strip();
        String condition = expression(rest.substring(filter + 2)).strip();
        String bare = targets.startsWith("(") && targets.endsWith(")") ? targets.substring(1, targets.length() - 1) : targets;
        String item = bare.contains(",") ? "[" + bare + "]" : bare;
        String kept = "ember_filtered_loop_" + filteredLoops++;
        return tag.group(1) + "set " + kept + " = [] %}{% for " + targets + " in " + items + " %}{% if " + condition
                + " %}{% do " + kept + ".append(" + item + ") %}{% endif %}{% endfor %}{% for " + targets + " in " + kept + tag.group(4);
    }

    /** Macro signatures are parsed by Jinjava's macro tag itself, not as an expression: leave them alone. */
    private static boolean isMacroDefinition(String tagBody) {
        String body = tagBody.strip();
        if (body.startsWith("-") || body.startsWith("+")) {
            body = body.substring(1).strip();
        }
        return body.startsWith("macro ") || body.startsWith("call(") || body.startsWith("call ");
    }

    /** Offset of the closing {@code }}} or {@code %}} of a tag whose body starts at {@code from}, or -1. */
    private static int tagEnd(String s, int from, char closer) {
        return findTopLevel(s, from, i -> s.charAt(i) == closer && i + 1 < s.length() && s.charAt(i + 1) == '}');
    }

    private String expression(String e) {
        StringBuilder out = new StringBuilder(e.length() + 16);
        int i = 0;
        while (i < e.length()) {
            char c = e.charAt(i);
            if (c == '\'' || c == '"') {
                int end = stringEnd(e, i);
                out.append(jinjavaString(e.substring(i + 1, end - 1), c));
                i = end;
            } else if (OPENING.indexOf(c) >= 0) {
                int end = matchingBracket(e, i);
                String inner = e.substring(i + 1, end);
                switch (c) {
                    case '[' -> out.append(subscript(inner));
                    case '(' -> out.append('(').append(arguments(inner)).append(')');
                    default -> out.append('{').append(expression(inner)).append('}');
                }
                i = end + 1;
            } else {
                out.append(c);
                i++;
            }
        }
        return negationsBindLoosely(out.toString());
    }

    /**
     * {@code e} (its brackets already rewritten) with the operand of every {@code not} that Jinja2 reads as a logical
     * negation put in parentheses, so that Jinjava negates what Jinja2 negates.
     */
    private static String negationsBindLoosely(String e) {
        int not = findTopLevel(e, 0, i -> isNegation(e, i));
        if (not < 0) {
            return e;
        }
        int from = not + 3;
        int end = findTopLevel(e, from, i -> e.charAt(i) == ',' || isWordAt(e, i, "and") || isWordAt(e, i, "or")
                || isWordAt(e, i, "if") || isWordAt(e, i, "else"));
        end = end < 0 ? e.length() : end;
        int last = end;
        while (last > from && Character.isWhitespace(e.charAt(last - 1))) {
            last--;
        }
        if (end == e.length() && last > from && (e.charAt(last - 1) == '-' || e.charAt(last - 1) == '+')) {
            last--;  // a tag's whitespace control ({%- if not x -%}), not part of the operand
        }
        int start = from;
        while (start < last && Character.isWhitespace(e.charAt(start))) {
            start++;
        }
        if (start == last) {
            return e;
        }
        return e.substring(0, from) + " (" + negationsBindLoosely(e.substring(start, last)) + ")"
                + negationsBindLoosely(e.substring(last));
    }

    /** Whether the {@code not} at {@code i} is a logical negation: a word of its own, not {@code is not} nor {@code not in}. */
    private static boolean isNegation(String e, int i) {
        if (!isWordAt(e, i, "not")) {
            return false;
        }
        int before = i;
        while (before > 0 && Character.isWhitespace(e.charAt(before - 1))) {
            before--;
        }
        if (before >= 2 && isWordAt(e, before - 2, "is")) {
            return false;
        }
        int after = i + 3;
        while (after < e.length() && Character.isWhitespace(e.charAt(after))) {
            after++;
        }
        return !isWordAt(e, after, "in");
    }

    /** Whether {@code word} stands at {@code i} as a whole word (not part of a name or an attribute). */
    private static boolean isWordAt(String e, int i, String word) {
        if (i < 0 || !e.startsWith(word, i)) {
            return false;
        }
        boolean startsWord = i == 0 || !isNameChar(e.charAt(i - 1)) && e.charAt(i - 1) != '.';
        int end = i + word.length();
        return startsWord && (end == e.length() || !isNameChar(e.charAt(end)));
    }

    private static boolean isNameChar(char c) {
        return Character.isLetterOrDigit(c) || c == '_';
    }

    /** Records the filter and test names of an expression, looking only outside its string literals. */
    private void noteFiltersAndTests(String e) {
        StringBuilder code = new StringBuilder(e.length());
        for (int i = 0; i < e.length(); i++) {
            char c = e.charAt(i);
            if (c == '\'' || c == '"') {
                i = stringEnd(e, i) - 1;
                code.append(' ');
            } else {
                code.append(c);
            }
        }
        Matcher filter = FILTER.matcher(code);
        while (filter.find()) {
            filters.add(filter.group(1));
        }
        Matcher test = TEST.matcher(code);
        while (test.find()) {
            tests.add(test.group(1));
        }
    }

    private String subscript(String inner) {
        List<String> parts = splitTopLevel(inner, ':');
        if (parts.size() != 3) {
            return "[" + expression(inner) + "]";
        }
        List<String> bounds = new ArrayList<>(3);
        for (String part : parts) {
            bounds.add(part.isBlank() ? "none" : expression(part).strip());
        }
        return ".__slice__(" + String.join(", ", bounds) + ")";
    }

    private String arguments(String inner) {
        List<String> arguments = splitTopLevel(inner, ',');
        List<String> rewritten = new ArrayList<>(arguments.size());
        for (String argument : arguments) {
            Matcher keyword = KEYWORD_ARGUMENT.matcher(argument);
            rewritten.add(keyword.matches()
                    ? keyword.group(1) + "(" + expression(keyword.group(2)) + ")"
                    : expression(argument));
        }
        return String.join(",", rewritten);
    }

    /** Splits at {@code separator} where it stands outside strings and nested brackets. */
    private static List<String> splitTopLevel(String s, char separator) {
        List<String> parts = new ArrayList<>();
        int start = 0;
        for (int at; (at = findTopLevel(s, start, i -> s.charAt(i) == separator)) >= 0; start = at + 1) {
            parts.add(s.substring(start, at));
        }
        parts.add(s.substring(start));
        return parts;
    }

    private static int matchingBracket(String s, int open) {
        int close = findTopLevel(s, open + 1, i -> CLOSING.indexOf(s.charAt(i)) >= 0);
        if (close < 0) {
            throw new IllegalArgumentException("unbalanced '" + s.charAt(open) + "' in expression: " + s.strip());
        }
        return close;
    }

    /**
     * The first offset from {@code from} on where {@code stop} holds, outside string literals and outside brackets
     * opened after {@code from}; -1 if none.
     */
    private static int findTopLevel(String s, int from, IntPredicate stop) {
        int depth = 0;
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (depth == 0 && stop.test(i)) {
                return i;
            }
            if (c == '\'' || c == '"') {
                i = stringEnd(s, i) - 1;
            } else if (OPENING.indexOf(c) >= 0) {
                depth++;
            } else if (CLOSING.indexOf(c) >= 0) {
                depth--;
            }
        }
        return -1;
    }

    /** The literal whose source text between its quotes is {@code body}, as Jinjava reads what Python reads. */
    private static String jinjavaString(String body, char quote) {
        StringBuilder value = new StringBuilder(body.length());
        for (int i = 0; i < body.length(); i++) {
            char c = body.charAt(i);
            if (c != '\\' || i + 1 == body.length()) {
                value.append(c);
                continue;
            }
            char next = body.charAt(++i);
            switch (next) {
                case '\n' -> { }  // a line continued
                case '\r' -> i += i + 1 < body.length() && body.charAt(i + 1) == '\n' ? 1 : 0;
                case '\\', '\'', '"' -> value.append(next);
                case 'a' -> value.append('\u0007');
                case 'b' -> value.append('\b');
                case 'f' -> value.append('\f');
                case 'n' -> value.append('\n');
                case 'r' -> value.append('\r');
                case 't' -> value.append('\t');
                case 'v' -> value.append('\u000b');
                case 'x', 'u', 'U' -> {
                    int digits = next == 'x' ? 2 : next == 'u' ? 4 : 8;
                    if (i + digits < body.length() && body.substring(i + 1, i + 1 + digits).chars().allMatch(d -> Character.digit(d, 16) >= 0)) {
                        value.appendCodePoint(Integer.parseInt(body, i + 1, i + 1 + digits, 16));
                        i += digits;
                    } else {
                        throw new IllegalArgumentException("truncated \\" + next + " escape in string literal: " + body);
                    }
                }
                default -> {
                    if (next >= '0' && next <= '7') {
                        int end = i;
                        while (end < body.length() && end < i + 3 && body.charAt(end) >= '0' && body.charAt(end) <= '7') {
                            end++;
                        }
                        value.append((char) Integer.parseInt(body, i, end, 8));
                        i = end - 1;
                    } else {
                        value.append('\\').append(next);  // Python keeps an escape it does not know
                    }
                }
            }
        }
        StringBuilder out = new StringBuilder(value.length() + 2).append(quote);
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            switch (c) {
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\t' -> out.append("\\t");
                default -> out.append(c == quote ? "\\" + quote : String.valueOf(c));
            }
        }
        return out.append(quote).toString();
    }

    /** Offset just past the string literal opening at {@code quote}. */
    private static int stringEnd(String s, int quote) {
        char q = s.charAt(quote);
        for (int i = quote + 1; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\') {
                i++;
            } else if (c == q) {
                return i + 1;
            }
        }
        throw new IllegalArgumentException("unterminated string literal: " + s.substring(quote));
    }
}
