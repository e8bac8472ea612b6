package dev.ember.grammar;

import dev.ember.EmberException;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A context-free grammar in GBNF, llama.cpp's notation (its server's {@code grammar}), which vLLM's
 * {@code guided_grammar} and SGLang's {@code ebnf} take too: rules {@code name ::= alternatives}, the output a text of
 * the rule {@code root}; alternatives {@code |}; strings {@code "..."}; classes {@code [a-z]} and {@code [^...]} of
 * Unicode characters; {@code .} any character; groups {@code (...)}; {@code * + ?} and {@code {m} {m,} {m,n}};
 * escapes {@code \n \r \t \\ \" \[ \] \xHH \\uHHHH \UHHHHHHHH}; comments from {@code #}. A rule ends at the end of its
 * line, unless the line ends inside a group or after a {@code |}.
 *
 * <p>Compiled to bytes: a string is its UTF-8 bytes, a class the byte sequences of its code points ({@link Utf8Ranges}),
 * a group or repetition a rule of its own ({@code x*} is {@code r ::= x r | ""}), so that {@link JsonMachine}'s
 * {@code GrammarFrame} reads the output one byte at a time with a stack of the sequences it is inside. A recognizer that
 * reads left to right cannot hold a rule that reaches itself before reading a byte (left recursion, or a repetition of
 * something that may be empty): such a grammar is refused, naming the rule.
 */
final class Gbnf {
    /** Copies a bounded repetition writes out: {@code {m,n}} past this is refused. */
    private static final int MAX_REPEAT = 1_000;
    /** Symbols of the whole compiled grammar, repetitions written out. */
    private static final int MAX_SYMBOLS = 200_000;
    /** Rules, named or made for groups, classes and repetitions: a byte is read through a chain of them, recursively. */
    private static final int MAX_RULES = 10_000;
    /** Groups inside groups: each is read by a recursive call. */
    private static final int MAX_NESTING = 64;
    /** Rules begun one inside another before a byte: reading a byte calls through each. */
    private static final int MAX_LEFT_DEPTH = 1_000;

    private final String source;
    /** Each sequence's symbols: a terminal (a set of bytes: {@link #terminals}' index), or {@code ~rule}. */
    private final int[][] sequences;
    /** Each rule's alternatives, as sequences. */
    private final int[][] alternatives;
    /** Each terminal's bytes, four longs of bits. */
    private final long[][] terminals;
    private final boolean[] nullable;
    /** The sequence of the rule {@code root} alone: where the output starts. */
    final int start;

    private Gbnf(String source, Builder b) {
        this.source = source;
        this.sequences = b.sequences.toArray(int[][]::new);
        this.terminals = b.terminals.toArray(long[][]::new);
        this.alternatives = new int[b.rules.size()][];
        for (int r = 0; r < alternatives.length; r++) {
            alternatives[r] = b.rules.get(r).stream().mapToInt(Integer::intValue).toArray();
        }
        this.nullable = nullableRules();
        refuseLeftRecursion(b.names);
        this.start = sequences.length - 1;  // the builder added [root] last
    }

    /**
     * Compiles {@code text}.
     *
     * @throws EmberException naming where the text is not GBNF, a rule used but not defined, a missing {@code root}, or
     *                        a rule that reaches itself before reading a byte
     */
    static Gbnf parse(String text) {
        Builder b = new Builder();
        new Parser(text, b).grammar();
        Integer root = b.ids.get("root");
        if (root == null || b.rules.get(root) == null) {
            throw new EmberException("GBNF: no rule named root (the output is a text of root)");
        }
        for (Map.Entry<String, Integer> rule : b.ids.entrySet()) {
            if (b.rules.get(rule.getValue()) == null) {
                throw new EmberException("GBNF: the rule " + rule.getKey() + " is used but never defined");
            }
        }
        b.sequence(List.of(~root));
        return new Gbnf(text, b);
    }

    String source() {
        return source;
    }

    int length(int sequence) {
        return sequences[sequence].length;
    }

    /** The symbol at {@code position} of {@code sequence}: a terminal's index, or {@code ~rule}. */
    int symbol(int sequence, int position) {
        return sequences[sequence][position];
    }

    int[] alternatives(int rule) {
        return alternatives[rule];
    }

    boolean matches(int terminal, int b) {
        return (terminals[terminal][b >>> 6] >>> (b & 63) & 1) != 0;
    }

    /** Whether the symbols of {@code sequence} from {@code position} on may read no byte at all. */
    boolean nullableFrom(int sequence, int position) {
        int[] symbols = sequences[sequence];
        for (int i = position; i < symbols.length; i++) {
            if (symbols[i] >= 0 || !nullable[~symbols[i]]) {
                return false;
            }
        }
        return true;
    }

    private boolean[] nullableRules() {
        boolean[] empty = new boolean[alternatives.length];
        for (boolean changed = true; changed; ) {
            changed = false;
            for (int r = 0; r < alternatives.length; r++) {
                if (empty[r]) {
                    continue;
                }
                for (int sequence : alternatives[r]) {
                    if (allNullable(sequences[sequence], sequences[sequence].length, empty)) {
                        empty[r] = changed = true;
                        break;
                    }
                }
            }
        }
        return empty;
    }

    private static boolean allNullable(int[] symbols, int end, boolean[] empty) {
        for (int i = 0; i < end; i++) {
            if (symbols[i] >= 0 || !empty[~symbols[i]]) {
                return false;
            }
        }
        return true;
    }

    /**
     * Refuses a rule that may be entered again before a byte is read (reading it would never end), and chains of rules
     * entered one inside another before a byte deeper than {@link #MAX_LEFT_DEPTH} (each is a call when a byte is read).
     * A depth-first walk of the rules each rule may begin with, kept on a stack of its own.
     */
    private void refuseLeftRecursion(List<String> names) {
        int[] depth = new int[alternatives.length];  // 0 unseen, -1 on the path, else the longest chain from the rule
        for (int root = 0; root < alternatives.length; root++) {
            if (depth[root] != 0) {
                continue;
            }
            Deque<int[]> path = new ArrayDeque<>();  // {rule, index of the next left-edge rule to visit}
            depth[root] = -1;
            path.push(new int[] {root, 0});
            while (!path.isEmpty()) {
                int[] top = path.peek();
                int[] edges = leftEdges(top[0]);
                if (top[1] < edges.length) {
                    int next = edges[top[1]++];
                    if (depth[next] == -1) {
                        throw new EmberException("GBNF: the rule " + names.get(next) + " can reach itself before reading a "
                                + "character (left recursion, or a repetition of something that may be empty), which cannot be "
                                + "read left to right");
                    }
                    if (depth[next] == 0) {
                        depth[next] = -1;
                        path.push(new int[] {next, 0});
                    }
                    continue;
                }
                int longest = 0;
                for (int edge : edges) {
                    longest = Math.max(longest, depth[edge]);
                }
                depth[top[0]] = longest + 1;
                if (depth[top[0]] > MAX_LEFT_DEPTH) {
                    throw new EmberException("GBNF: the rule " + names.get(top[0]) + " begins with a chain of more than "
                            + MAX_LEFT_DEPTH + " rules, one inside another, before a character");
                }
                path.pop();
            }
        }
    }

    /** The rules {@code rule} may begin with: each alternative's first symbols up to and including its first not nullable. */
    private int[] leftEdges(int rule) {
        List<Integer> edges = new ArrayList<>();
        for (int sequence : alternatives[rule]) {
            int[] symbols = sequences[sequence];
            for (int i = 0; i < symbols.length && symbols[i] < 0; i++) {
                edges.add(~symbols[i]);
                if (!nullable[~symbols[i]]) {
                    break;
                }
            }
        }
        return edges.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The rules, sequences and terminals as they are made; rules named or made for groups, classes and repetitions. */
    private static final class Builder {
        final Map<String, Integer> ids = new LinkedHashMap<>();
        final List<String> names = new ArrayList<>();
        /** Each rule's alternatives (sequence indices); null until defined. */
        final List<List<Integer>> rules = new ArrayList<>();
        final List<int[]> sequences = new ArrayList<>();
        final List<long[]> terminals = new ArrayList<>();
        private final Map<String, Integer> terminalIds = new HashMap<>();
        private int symbols;

        int rule(String name) {
            return ids.computeIfAbsent(name, n -> newRule(n));
        }

        int newRule(String name) {
            if (rules.size() == MAX_RULES) {
                throw new EmberException("GBNF: the grammar has more than " + MAX_RULES + " rules with its groups and repetitions");
            }
            names.add(name);
            rules.add(null);
            return rules.size() - 1;
        }

        void define(int rule, List<List<Integer>> alternatives) {
            List<Integer> ids = new ArrayList<>();
            for (List<Integer> alternative : alternatives) {
                ids.add(sequence(alternative));
            }
            rules.set(rule, ids);
        }

        int sequence(List<Integer> symbols) {
            this.symbols += symbols.size();
            if (this.symbols > MAX_SYMBOLS) {
                throw new EmberException("GBNF: the grammar is larger than " + MAX_SYMBOLS + " symbols with its repetitions written out");
            }
            sequences.add(symbols.stream().mapToInt(Integer::intValue).toArray());
            return sequences.size() - 1;
        }

        int terminal(int low, int high) {
            long[] bits = new long[4];
            for (int b = low; b <= high; b++) {
                bits[b >>> 6] |= 1L << (b & 63);
            }
            return terminal(bits);
        }

        int terminal(long[] bits) {
            return terminalIds.computeIfAbsent(Arrays.toString(bits), key -> {
                terminals.add(bits);
                return terminals.size() - 1;
            });
        }
    }

    /** Recursive descent over the text, llama.cpp's grammar: each method leaves {@code at} after what it read. */
    private static final class Parser {
        private final String text;
        private final Builder b;
        private int at;
        /** The rule being defined, to name the rules its groups and repetitions make. */
        private String current;
        private int made;
        /** Groups open around the element being read. */
        private int depth;

        Parser(String text, Builder b) {
            this.text = text;
            this.b = b;
        }

        void grammar() {
            space(true);
            while (at < text.length()) {
                rule();
                space(true);
            }
        }

        private void rule() {
            String name = name();
            current = name;
            made = 0;
            space(false);
            if (!text.startsWith("::=", at)) {
                throw error("expected ::= after the rule name " + name);
            }
            at += 3;
            space(true);
            int rule = b.rule(name);
            if (b.rules.get(rule) != null) {
                throw error("the rule " + name + " is defined twice");
            }
            b.define(rule, alternatives(false));
            if (at < text.length() && text.charAt(at) != '\n' && text.charAt(at) != '\r') {
                throw error("expected the end of the line after the rule " + name);
            }
        }

        private List<List<Integer>> alternatives(boolean nested) {
            List<List<Integer>> alternatives = new ArrayList<>();
            alternatives.add(sequence(nested));
            while (at < text.length() && text.charAt(at) == '|') {
                at++;
                space(true);
                alternatives.add(sequence(nested));
            }
            return alternatives;
        }

        /** Elements up to a {@code |}, a {@code )} or (outside a group) the end of the line; each a list of symbols. */
        private List<Integer> sequence(boolean nested) {
            List<List<Integer>> elements = new ArrayList<>();
            while (at < text.length()) {
                char c = text.charAt(at);
                if (c == '"') {
                    at++;
                    List<Integer> literal = new ArrayList<>();
                    while (!closedBy('"', "a string that never ends")) {
                        for (byte x : Utf8Ranges.encode(character())) {
                            literal.add(b.terminal(x & 0xff, x & 0xff));
                        }
                    }
                    elements.add(literal);
                } else if (c == '[') {
                    elements.add(List.of(characterClass()));
                } else if (c == '.') {
                    at++;
                    elements.add(List.of(classSymbol(false, List.of(new int[] {0, Utf8Ranges.MAX_CODE_POINT}))));
                } else if (c == '(') {
                    if (++depth > MAX_NESTING) {
                        throw error("groups nested more than " + MAX_NESTING + " deep");
                    }
                    at++;
                    space(true);
                    List<List<Integer>> group = alternatives(true);
                    depth--;
                    if (at >= text.length() || text.charAt(at) != ')') {
                        throw error("expected ) to close the group");
                    }
                    at++;
                    int rule = made();
                    b.define(rule, group);
                    elements.add(List.of(~rule));
                } else if (isNameCharacter(c)) {
                    elements.add(List.of(~b.rule(name())));
                } else if (c == '*' || c == '+' || c == '?' || c == '{') {
                    if (elements.isEmpty()) {
                        throw error("'" + c + "' with nothing before it to repeat");
                    }
                    elements.add(repeat(elements.removeLast()));
                } else {
                    break;
                }
                space(nested);
            }
            List<Integer> symbols = new ArrayList<>();
            elements.forEach(symbols::addAll);
            return symbols;
        }

        /** {@code element} repeated as the quantifier at {@code at} says. */
        private List<Integer> repeat(List<Integer> element) {
            char c = text.charAt(at++);
            int min, max;
            switch (c) {
                case '*' -> { min = 0; max = -1; }
                case '+' -> { min = 1; max = -1; }
                case '?' -> { min = 0; max = 1; }
                default -> {
                    space(true);
                    min = number();
                    space(true);
                    max = min;
                    if (at < text.length() && text.charAt(at) == ',') {
                        at++;
                        space(true);
                        max = at < text.length() && Character.isDigit(text.charAt(at)) ? number() : -1;
                        space(true);
                    }
                    if (at >= text.length() || text.charAt(at) != '}') {
                        throw error("expected } to close the repetition");
                    }
                    at++;
                    if (max >= 0 && max < min || Math.max(min, max) > MAX_REPEAT) {
                        throw error("a repetition {" + min + "," + (max < 0 ? "" : max) + "}: at most " + MAX_REPEAT
                                + " copies, and no fewer than the least");
                    }
                }
            }
            List<Integer> symbols = new ArrayList<>();
            for (int i = 0; i < min; i++) {
                symbols.addAll(element);
            }
            if (max < 0) {  // r ::= element r | ""
                int rule = made();
                List<Integer> again = new ArrayList<>(element);
                again.add(~rule);
                b.define(rule, List.of(again, List.of()));
                symbols.add(~rule);
            } else if (max > min) {  // nested optionals: r1 ::= element | "", rk ::= element r(k-1) | ""
                int inner = -1;
                for (int k = 0; k < max - min; k++) {
                    int rule = made();
                    List<Integer> once = new ArrayList<>(element);
                    if (inner >= 0) {
                        once.add(~inner);
                    }
                    b.define(rule, List.of(once, List.of()));
                    inner = rule;
                }
                symbols.add(~inner);
            }
            return symbols;
        }

        /** A class as one terminal where it holds only ASCII, else as a rule of its code points' byte sequences. */
        private int characterClass() {
            at++;
            boolean negated = at < text.length() && text.charAt(at) == '^';
            if (negated) {
                at++;
            }
            List<int[]> ranges = new ArrayList<>();
            while (!closedBy(']', "a class that never ends")) {
                int low = character(), high = low;
                if (at + 1 < text.length() && text.charAt(at) == '-' && text.charAt(at + 1) != ']') {
                    at++;
                    high = character();
                    if (high < low) {
                        throw error("a class range that runs backwards");
                    }
                }
                ranges.add(new int[] {low, high});
            }
            return classSymbol(negated, ranges);
        }

        private int classSymbol(boolean negated, List<int[]> ranges) {
            List<int[]> points = negated ? complement(ranges) : ranges;
            if (points.stream().allMatch(r -> r[1] < 0x80)) {
                long[] bits = new long[4];
                for (int[] r : points) {
                    for (int x = r[0]; x <= r[1]; x++) {
                        bits[x >>> 6] |= 1L << (x & 63);
                    }
                }
                return b.terminal(bits);
            }
            List<List<Integer>> alternatives = new ArrayList<>();
            for (int[] r : points) {
                for (int[][] bytes : Utf8Ranges.of(r[0], r[1])) {
                    List<Integer> sequence = new ArrayList<>();
                    for (int[] range : bytes) {
                        sequence.add(b.terminal(range[0], range[1]));
                    }
                    alternatives.add(sequence);
                }
            }
            int rule = made();
            b.define(rule, alternatives);
            return ~rule;
        }

        /** The code points not in {@code ranges}. */
        private static List<int[]> complement(List<int[]> ranges) {
            List<int[]> sorted = new ArrayList<>(ranges);
            sorted.sort((x, y) -> Integer.compare(x[0], y[0]));
            List<int[]> out = new ArrayList<>();
            int next = 0;
            for (int[] r : sorted) {
                if (r[0] > next) {
                    out.add(new int[] {next, r[0] - 1});
                }
                next = Math.max(next, r[1] + 1);
            }
            if (next <= Utf8Ranges.MAX_CODE_POINT) {
                out.add(new int[] {next, Utf8Ranges.MAX_CODE_POINT});
            }
            return out;
        }

        /** A rule made for a group, class or repetition of the rule being defined, named after it as llama.cpp does. */
        private int made() {
            return b.newRule(current + "_" + ++made);
        }

        /**
         * Whether a string or class ends here, at {@code close} (read past it); an unescaped {@code close} ends it.
         *
         * @throws EmberException naming {@code unterminated} where the text ends first
         */
        private boolean closedBy(char close, String unterminated) {
            if (at >= text.length()) {
                throw error(unterminated);
            }
            if (text.charAt(at) != close) {
                return false;
            }
            at++;
            return true;
        }

        /** One character of a string or class, escapes read. */
        private int character() {
            int c = text.codePointAt(at);
            at += Character.charCount(c);
            if (c != '\\') {
                return c;
            }
            if (at >= text.length()) {
                throw error("an escape at the end of the text");
            }
            char e = text.charAt(at++);
            return switch (e) {
                case 'n' -> '\n';
                case 'r' -> '\r';
                case 't' -> '\t';
                case '\\', '"', '[', ']', '-', '^', '/' -> e;
                case 'x' -> hex(2);
                case 'u' -> hex(4);
                case 'U' -> hex(8);
                default -> throw error("the escape \\" + e + " (GBNF has \\n \\r \\t \\\\ \\\" \\[ \\] \\x \\u \\U)");
            };
        }

        private int hex(int digits) {
            if (at + digits > text.length()) {
                throw error("an escape of " + digits + " hex digits cut short");
            }
            long value;
            try {
                value = Long.parseLong(text.substring(at, at + digits), 16);
            } catch (NumberFormatException e) {
                throw error("an escape of " + digits + " hex digits that are not all hex");
            }
            if (value > Utf8Ranges.MAX_CODE_POINT || value >= 0xD800 && value <= 0xDFFF) {
                throw error("the escape U+" + Long.toHexString(value).toUpperCase() + " is not a character");
            }
            at += digits;
            return (int) value;
        }

        private int number() {
            int from = at;
            while (at < text.length() && Character.isDigit(text.charAt(at))) {
                at++;
            }
            if (from == at || at - from > 6) {
                throw error("expected a count of repetitions");
            }
            return Integer.parseInt(text.substring(from, at));
        }

        private String name() {
            int from = at;
            while (at < text.length() && isNameCharacter(text.charAt(at))) {
                at++;
            }
            if (from == at) {
                throw error("expected a rule name");
            }
            return text.substring(from, at);
        }

        private static boolean isNameCharacter(char c) {
            return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_';
        }

        /** Spaces, tabs and comments; newlines too where {@code newlines} (inside a group, after ::= or |). */
        private void space(boolean newlines) {
            while (at < text.length()) {
                char c = text.charAt(at);
                if (c == ' ' || c == '\t' || newlines && (c == '\n' || c == '\r')) {
                    at++;
                } else if (c == '#') {
                    while (at < text.length() && text.charAt(at) != '\n' && text.charAt(at) != '\r') {
                        at++;
                    }
                } else {
                    break;
                }
            }
        }

        private EmberException error(String what) {
            int line = 1, column = 1;
            for (int i = 0; i < Math.min(at, text.length()); i++) {
                if (text.charAt(i) == '\n') {
                    line++;
                    column = 1;
                } else {
                    column++;
                }
            }
            return new EmberException("GBNF, line " + line + ", column " + column + ": " + what);
        }
    }
}
