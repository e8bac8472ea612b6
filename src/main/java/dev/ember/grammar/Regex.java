package dev.ember.grammar;

import dev.ember.EmberException;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;

/**
 * A regular expression as a Thompson automaton over bytes, for outputs held to a pattern (vLLM's {@code guided_regex},
 * a JSON schema's {@code pattern} and the formats built on one). The syntax is the common core of Python's and Java's:
 * literals, {@code .}, classes {@code [a-z_]} and {@code [^...]}, {@code \d \w \s} and their negations, groups
 * {@code (...)} {@code (?:...)} {@code (?P<name>...)}, {@code |}, and {@code * + ? {n} {n,} {n,m}} (a lazy {@code ?}
 * after one changes nothing: only which strings match counts). {@code .}, negated classes and {@code \D \W \S} stand for
 * printable ASCII only, so a pattern never lets a model write half a character; a non-ASCII literal stands for its
 * UTF-8 bytes. Backreferences, lookaround and non-ASCII class ranges are refused by name.
 *
 * <p>A state of the automaton is the set of its positions the bytes read so far may have reached: a {@link BitSet}
 * never changed once made, compared by value.
 */
final class Regex {
    /** Repetitions written out: {@code {n,m}} past this many copies is refused. */
    private static final int MAX_REPEAT = 256;
    /** Positions of one automaton: each is a bit of every state, read at every byte of every token a mask walks. */
    private static final int MAX_POSITIONS = 5_000;

    /** What a position does: read a byte of {@code lo}/{@code hi} (ASCII bits) or exactly {@code single}, or split. */
    private static final int READ = 0, SPLIT = 1, MATCH = 2;

    private final String source;
    private int[] kind = new int[64];
    private long[] lo = new long[64];
    private long[] hi = new long[64];
    private int[] single = new int[64];
    private int[] next = new int[64];
    private int[] other = new int[64];
    private int count;
    private final int start;
    private final BitSet initial;

    private Regex(String source, boolean anchored) {
        this.source = source;
        Parser parser = new Parser(source);
        Fragment body = parser.alternation();
        if (parser.at < source.length()) {
            throw refused("an unmatched ')' at " + parser.at);
        }
        if (!anchored) {  // a search: anything before and after
            body = concat(concat(star(any()), body), star(any()));
        }
        int match = add(MATCH, 0, 0, -1);
        patch(body, match);
        this.start = body.start;
        this.initial = closure(single(start));
    }

    /**
     * The whole output (or string) must match {@code pattern} (vLLM's guided_regex, Python's fullmatch); a {@code ^} before
     * it and a {@code $} after it say nothing more.
     */
    static Regex fullMatch(String pattern) {
        String body = pattern.startsWith("^") ? pattern.substring(1) : pattern;
        body = body.endsWith("$") && !body.endsWith("\\$") ? body.substring(0, body.length() - 1) : body;
        return new Regex(body, true);
    }

    /**
     * JSON schema's {@code pattern}: a search, so the string must contain a match, unless the pattern anchors itself
     * with {@code ^...$} (the usual form), which then must match the whole string.
     */
    static Regex schemaPattern(String pattern) {
        boolean anchored = pattern.startsWith("^") && pattern.endsWith("$") && !pattern.endsWith("\\$");
        return anchored ? fullMatch(pattern) : new Regex(pattern, false);
    }

    String source() {
        return source;
    }

    /** The state before any byte. */
    BitSet initial() {
        return initial;
    }

    /** The state after byte {@code b}, or null where no position can read it. */
    BitSet read(BitSet state, int b) {
        BitSet reached = new BitSet(count);
        for (int p = state.nextSetBit(0); p >= 0; p = state.nextSetBit(p + 1)) {
            if (kind[p] == READ && (single[p] >= 0 ? single[p] == b
                    : b < 64 ? (lo[p] >>> b & 1) != 0 : b < 128 && (hi[p] >>> (b - 64) & 1) != 0)) {
                reached.set(next[p]);
            }
        }
        return reached.isEmpty() ? null : closure(reached);
    }

    /**
     * The fewest characters after {@code state} that end in a whole match (0 where it is one): a string of bounded
     * length may take a byte only where the rest of a match still fits. Integer.MAX_VALUE where no match can follow.
     */
    int charactersToMatch(BitSet state) {
        int[] distance = distances();
        int fewest = Integer.MAX_VALUE;
        for (int p = state.nextSetBit(0); p >= 0; p = state.nextSetBit(p + 1)) {
            fewest = Math.min(fewest, distance[p]);
        }
        return fewest;
    }

    /**
     * The most characters after {@code state} a whole match can still take (Integer.MAX_VALUE where a loop lets it grow
     * without end; -1 where no match can follow): a string held to a {@code minLength} may take a byte only where a
     * match can still reach it.
     */
    int mostCharactersToMatch(BitSet state) {
        int[] longest = longest();
        int most = -1;
        for (int p = state.nextSetBit(0); p >= 0; p = state.nextSetBit(p + 1)) {
            most = Math.max(most, longest[p]);
        }
        return most;
    }

    /**
     * The most characters any position still needs to reach a match, over the positions that can reach one: a bound on
     * {@link #charactersToMatch} of every state this automaton can be in.
     */
    int farthestMatch() {
        if (farthest < 0) {
            int most = 0;
            for (int d : distances()) {
                if (d != Integer.MAX_VALUE) {
                    most = Math.max(most, d);
                }
            }
            farthest = most;
        }
        return farthest;
    }

    private int farthest = -1;

    private int[] distances;
    private int[] longest;

    /**
     * Per position, the most characters from it to a match: the longest path, relaxed as many rounds as there are
     * positions; what still grows after that lies on or before a loop, and is unbounded. -1 where no match is reached.
     */
    private synchronized int[] longest() {
        if (longest != null) {
            return longest;
        }
        long[] d = new long[count];
        java.util.Arrays.fill(d, -1);
        for (int p = 0; p < count; p++) {
            if (kind[p] == MATCH) {
                d[p] = 0;
            }
        }
        boolean[] unbounded = new boolean[count];
        for (int round = 0; round <= count + 1; round++) {
            boolean improved = false;
            for (int p = 0; p < count; p++) {
                long via = switch (kind[p]) {
                    case SPLIT -> Math.max(d[next[p]], d[other[p]]);
                    case READ -> d[next[p]] < 0 ? -1 : d[next[p]] + (single[p] >= 0x80 && single[p] < 0xC0 ? 0 : 1);
                    default -> 0;
                };
                if (via > d[p]) {
                    d[p] = via;
                    improved = true;
                    if (round > count) {
                        unbounded[p] = true;
                    }
                }
            }
            if (!improved) {
                break;
            }
        }
        for (boolean spread = true; spread; ) {  // what reaches an unbounded position is unbounded too
            spread = false;
            for (int p = 0; p < count; p++) {
                boolean reaches = kind[p] == SPLIT ? unbounded[next[p]] || unbounded[other[p]] : kind[p] == READ && unbounded[next[p]];
                if (reaches && !unbounded[p]) {
                    unbounded[p] = true;
                    spread = true;
                }
            }
        }
        int[] result = new int[count];
        for (int p = 0; p < count; p++) {
            result[p] = unbounded[p] ? Integer.MAX_VALUE : (int) Math.min(d[p], Integer.MAX_VALUE - 1);
        }
        longest = result;
        return result;
    }

    /**
     * Per position, the fewest characters from it to a match: a byte read costs one, but a UTF-8 continuation byte,
     * which only completes its character; the splits cost nothing. Found by relaxing every position until none
     * improves (positions are few).
     */
    private synchronized int[] distances() {
        if (distances != null) {
            return distances;
        }
        int[] d = new int[count];
        java.util.Arrays.fill(d, Integer.MAX_VALUE);
        for (int p = 0; p < count; p++) {
            if (kind[p] == MATCH) {
                d[p] = 0;
            }
        }
        for (boolean improved = true; improved; ) {
            improved = false;
            for (int p = 0; p < count; p++) {
                long via = switch (kind[p]) {
                    case SPLIT -> Math.min(d[next[p]], d[other[p]]);
                    case READ -> d[next[p]] == Integer.MAX_VALUE ? Integer.MAX_VALUE
                            : d[next[p]] + (single[p] >= 0x80 && single[p] < 0xC0 ? 0 : 1);
                    default -> 0;
                };
                if (via < d[p]) {
                    d[p] = (int) via;
                    improved = true;
                }
            }
        }
        distances = d;
        return d;
    }

    /** Whether the bytes that led to {@code state} are a whole match. */
    boolean accepts(BitSet state) {
        for (int p = state.nextSetBit(0); p >= 0; p = state.nextSetBit(p + 1)) {
            if (kind[p] == MATCH) {
                return true;
            }
        }
        return false;
    }

    /** Every position reachable without reading, from those of {@code from}. */
    private BitSet closure(BitSet from) {
        BitSet all = (BitSet) from.clone();
        int[] stack = new int[count];
        int top = 0;
        for (int p = from.nextSetBit(0); p >= 0; p = from.nextSetBit(p + 1)) {
            stack[top++] = p;
        }
        while (top > 0) {
            int p = stack[--top];
            if (kind[p] == SPLIT) {
                for (int q : new int[] {next[p], other[p]}) {
                    if (!all.get(q)) {
                        all.set(q);
                        stack[top++] = q;
                    }
                }
            }
        }
        // Only the positions that read or match matter to what follows: dropping the splits keeps equal states equal.
        BitSet kept = new BitSet(count);
        for (int p = all.nextSetBit(0); p >= 0; p = all.nextSetBit(p + 1)) {
            if (kind[p] != SPLIT) {
                kept.set(p);
            }
        }
        return kept;
    }

    private static BitSet single(int p) {
        BitSet s = new BitSet();
        s.set(p);
        return s;
    }

    // ---- construction: fragments with dangling exits, patched when their successor is known ----

    /** A piece of automaton: where it starts, and the positions whose exit is not set yet (a list of exit slots). */
    private record Fragment(int start, List<int[]> exits) {
    }

    private int add(int kind, long lo, long hi, int single) {
        if (count == MAX_POSITIONS) {
            throw refused("a pattern this large (over " + MAX_POSITIONS + " positions once its repetitions are written out)");
        }
        if (count == this.kind.length) {
            int n = count * 2;
            this.kind = java.util.Arrays.copyOf(this.kind, n);
            this.lo = java.util.Arrays.copyOf(this.lo, n);
            this.hi = java.util.Arrays.copyOf(this.hi, n);
            this.single = java.util.Arrays.copyOf(this.single, n);
            this.next = java.util.Arrays.copyOf(this.next, n);
            this.other = java.util.Arrays.copyOf(this.other, n);
        }
        this.kind[count] = kind;
        this.lo[count] = lo;
        this.hi[count] = hi;
        this.single[count] = single;
        this.next[count] = -1;
        this.other[count] = -1;
        return count++;
    }

    /** Slot 0 of an exit is the position, slot 1 which of its two arrows (0: next, 1: other). */
    private void patch(Fragment f, int target) {
        for (int[] exit : f.exits) {
            if (exit[1] == 0) {
                next[exit[0]] = target;
            } else {
                other[exit[0]] = target;
            }
        }
    }

    private Fragment readByte(long lo, long hi, int single) {
        int p = add(READ, lo, hi, single);
        return new Fragment(p, new ArrayList<>(List.<int[]>of(new int[] {p, 0})));
    }

    /** Reads nothing: a split whose two arrows both lead on (an empty group, or zero repetitions). */
    private Fragment empty() {
        int p = add(SPLIT, 0, 0, -1);
        return new Fragment(p, new ArrayList<>(List.of(new int[] {p, 0}, new int[] {p, 1})));
    }

    private Fragment concat(Fragment a, Fragment b) {
        patch(a, b.start);
        return new Fragment(a.start, b.exits);
    }

    private Fragment either(Fragment a, Fragment b) {
        int p = add(SPLIT, 0, 0, -1);
        next[p] = a.start;
        other[p] = b.start;
        List<int[]> exits = new ArrayList<>(a.exits);
        exits.addAll(b.exits);
        return new Fragment(p, exits);
    }

    private Fragment optional(Fragment a) {
        int p = add(SPLIT, 0, 0, -1);
        next[p] = a.start;
        List<int[]> exits = new ArrayList<>(a.exits);
        exits.add(new int[] {p, 1});
        return new Fragment(p, exits);
    }

    private Fragment star(Fragment a) {
        int p = add(SPLIT, 0, 0, -1);
        next[p] = a.start;
        patch(a, p);
        return new Fragment(p, new ArrayList<>(List.<int[]>of(new int[] {p, 1})));
    }

    /** Printable ASCII, what {@code .} and the negated classes stand for. */
    private Fragment any() {
        return readByte(PRINTABLE_LO, PRINTABLE_HI, -1);
    }

    private static final long PRINTABLE_LO = -1L << 32;                 // 0x20-0x3F
    private static final long PRINTABLE_HI = -1L >>> 1;                  // 0x40-0x7E

    private EmberException refused(String what) {
        return new EmberException("the regular expression \"" + source + "\": " + what + " is not supported");
    }

    /** A recursive-descent reader of the pattern, building fragments as it goes. */
    private final class Parser {
        private final String p;
        private int at;

        Parser(String p) {
            this.p = p;
        }

        Fragment alternation() {
            Fragment f = sequence();
            while (at < p.length() && p.charAt(at) == '|') {
                at++;
                f = either(f, sequence());
            }
            return f;
        }

        Fragment sequence() {
            Fragment f = null;
            while (at < p.length() && p.charAt(at) != '|' && p.charAt(at) != ')') {
                Fragment piece = quantified(p.length());
                f = f == null ? piece : concat(f, piece);
            }
            return f == null ? empty() : f;
        }

        /**
         * An atom and the quantifiers after it, up to {@code limit}. A repetition {@code {n,m}} writes out copies of what
         * it repeats, each re-read from the pattern's text ({@link #copy}).
         */
        Fragment quantified(int limit) {
            int pieceStart = at;
            Fragment f = atom();
            while (at < limit) {
                char c = p.charAt(at);
                int pieceEnd = at;
                if (c == '*' || c == '?') {
                    at++;
                    f = c == '*' ? star(f) : optional(f);
                } else if (c == '+') {
                    at++;
                    f = concat(f, star(copy(pieceStart, pieceEnd)));
                } else if (c == '{' && quantifierEnd(at) > 0) {
                    int close = quantifierEnd(at);
                    String[] bounds = p.substring(at + 1, close).split(",", -1);
                    at = close + 1;
                    int min = Integer.parseInt(bounds[0]);
                    int max = bounds.length == 1 ? min : bounds[1].isEmpty() ? -1 : Integer.parseInt(bounds[1]);
                    if (Math.max(min, max) > MAX_REPEAT || max >= 0 && max < min) {
                        throw refused("the repetition {" + String.join(",", bounds) + "}");
                    }
                    f = repeat(f, pieceStart, pieceEnd, min, max);
                } else {
                    break;
                }
                if (at < limit && p.charAt(at) == '?') {
                    at++;  // lazy: the same strings match
                }
            }
            return f;
        }

        /** Where a quantifier {@code {n}}, {@code {n,}} or {@code {n,m}} opening at {@code from} closes; -1 if none does. */
        private int quantifierEnd(int from) {
            int close = p.indexOf('}', from);
            return close > from && p.substring(from + 1, close).matches("\\d+(,\\d*)?") ? close : -1;
        }

        /** {@code min} copies of what {@code [from, to)} reads, then up to {@code max - min} more (any more when -1). */
        private Fragment repeat(Fragment first, int from, int to, int min, int max) {
            Fragment[] unused = {first};
            java.util.function.Supplier<Fragment> one = () -> {
                Fragment f = unused[0] != null ? unused[0] : copy(from, to);
                unused[0] = null;
                return f;
            };
            Fragment f = null;
            for (int i = 0; i < min; i++) {
                f = f == null ? one.get() : concat(f, one.get());
            }
            Fragment rest = null;
            if (max < 0) {
                rest = star(one.get());
            } else {
                for (int i = min; i < max; i++) {  // (a(a(a)?)?)?: each further copy only after the one before
                    Fragment copy = one.get();
                    rest = optional(rest == null ? copy : concat(copy, rest));
                }
            }
            if (f == null) {
                return rest == null ? empty() : rest;
            }
            return rest == null ? f : concat(f, rest);
        }

        /** A fresh automaton of the text {@code [from, to)}: an atom and any quantifiers within it. */
        private Fragment copy(int from, int to) {
            int saved = at;
            at = from;
            Fragment f = quantified(to);
            at = saved;
            return f;
        }

        Fragment atom() {
            char c = p.charAt(at);
            switch (c) {
                case '(' -> {
                    at++;
                    if (p.startsWith("?:", at)) {
                        at += 2;
                    } else if (p.startsWith("?P<", at) || p.startsWith("?<", at) && !p.startsWith("?<=", at) && !p.startsWith("?<!", at)) {
                        at = p.indexOf('>', at) + 1;
                    } else if (p.startsWith("?", at)) {
                        throw refused("the group \"(" + p.substring(at, Math.min(p.length(), at + 3)) + "\" (lookaround and flags)");
                    }
                    Fragment f = alternation();
                    if (at >= p.length() || p.charAt(at) != ')') {
                        throw refused("an unclosed group");
                    }
                    at++;
                    return f;
                }
                case '[' -> {
                    return characterClass();
                }
                case '.' -> {
                    at++;
                    return any();
                }
                case '^', '$' -> throw refused("an anchor inside the pattern");
                case '\\' -> {
                    long[] set = escape();
                    return set == null ? literal(p.codePointAt(at - 1)) : readByte(set[0], set[1], -1);
                }
                case '*', '+', '?' -> throw refused("a quantifier with nothing before it at " + at);
                default -> {
                    int cp = p.codePointAt(at);
                    at += Character.charCount(cp);
                    return literal(cp);
                }
            }
        }

        /** A code point as its UTF-8 bytes, one after another. */
        private Fragment literal(int cp) {
            byte[] bytes = new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8);
            Fragment f = null;
            for (byte b : bytes) {
                Fragment one = readByte(0, 0, b & 0xff);
                f = f == null ? one : concat(f, one);
            }
            return f;
        }

        /**
         * After a backslash: a class ({@code \d \w \s} and negations) as ASCII bits, or null for a literal, whose code
         * point is then the one just read ({@code at - 1}).
         */
        private long[] escape() {
            at++;
            if (at >= p.length()) {
                throw refused("a trailing backslash");
            }
            char c = p.charAt(at++);
            long[] set = switch (c) {
                case 'd', 'D' -> range(new long[2], '0', '9');
                case 'w', 'W' -> range(range(range(range(new long[2], '0', '9'), 'a', 'z'), 'A', 'Z'), '_', '_');
                case 's', 'S' -> range(range(new long[2], ' ', ' '), '\t', '\r');
                case 'n' -> range(new long[2], '\n', '\n');
                case 't' -> range(new long[2], '\t', '\t');
                case 'r' -> range(new long[2], '\r', '\r');
                default -> {
                    if (Character.isLetterOrDigit(c)) {
                        throw refused("the escape \\" + c);
                    }
                    yield null;  // an escaped punctuation mark: itself
                }
            };
            if (c == 'D' || c == 'W' || c == 'S') {
                set = complement(set);
            }
            return set;
        }

        private Fragment characterClass() {
            at++;
            boolean negated = at < p.length() && p.charAt(at) == '^';
            if (negated) {
                at++;
            }
            long[] set = new long[2];
            boolean first = true;
            while (at < p.length() && (p.charAt(at) != ']' || first)) {
                first = false;
                int from;
                if (p.charAt(at) == '\\') {
                    long[] escaped = escape();
                    if (escaped != null) {
                        set[0] |= escaped[0];
                        set[1] |= escaped[1];
                        continue;
                    }
                    from = p.charAt(at - 1);
                } else {
                    from = p.codePointAt(at);
                    at += Character.charCount(from);
                }
                int to = from;
                if (at + 1 < p.length() && p.charAt(at) == '-' && p.charAt(at + 1) != ']') {
                    at++;
                    to = p.charAt(at) == '\\' ? p.charAt(at + 1) : p.codePointAt(at);
                    at += p.charAt(at) == '\\' ? 2 : Character.charCount(to);
                }
                if (from > 127 || to > 127) {
                    throw refused("a class with characters beyond ASCII");
                }
                if (to < from) {
                    throw refused("the range " + (char) from + "-" + (char) to);
                }
                range(set, from, to);
            }
            if (at >= p.length()) {
                throw refused("an unclosed class");
            }
            at++;
            if (negated) {
                set = complement(set);
            }
            return readByte(set[0], set[1], -1);
        }
    }

    private static long[] range(long[] set, int from, int to) {
        for (int c = from; c <= to; c++) {
            set[c >> 6] |= 1L << (c & 63);
        }
        return set;
    }

    /** The printable ASCII characters not in {@code set}. */
    private static long[] complement(long[] set) {
        return new long[] {~set[0] & PRINTABLE_LO, ~set[1] & PRINTABLE_HI};
    }
}
