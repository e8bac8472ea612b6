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
            out.append(template, open, open + 2);
            String body = template.substring(open + 2, close);
            noteFiltersAndTests(body);
            out.append(isMacroDefinition(body) ? body : expression(body));
            out.append(template, close, close + 2);
            i = close + 2;
        }
        return out.toString();
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
                out.append(e, i, end);
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
        return out.toString();
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
