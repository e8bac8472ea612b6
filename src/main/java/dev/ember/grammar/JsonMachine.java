package dev.ember.grammar;

import java.util.ArrayList;
import java.util.List;

/**
 * A pushdown recognizer of JSON texts of a {@link JsonShape}, one byte at a time. A state is every stack of frames the
 * bytes read so far may have left (several where an {@code anyOf}, a number's end or one choice's being a prefix of
 * another leaves it open); each frame is an immutable record, so that states compare and hash by value and a
 * grammar can keep the token mask of each state it met. JSON's structure is ASCII, so bytes of multi-byte characters
 * are allowed inside strings and nowhere else, and there only as whole UTF-8.
 *
 * <p>Whitespace between JSON's tokens is a single space, or a newline and up to {@link #MAX_INDENT} spaces of
 * indentation (no tabs, no blank lines), and numbers have up to a few dozen digits: enough to lay JSON out compactly or
 * pretty-printed, while a model that likes whitespace (small ones do) cannot fill its output with it, as outlines'
 * default of one optional space also keeps it from doing.
 */
final class JsonMachine {
    static final int MAX_INDENT = 16;
    /** The most ways one state may read an output: each is a stack every byte of every token is read through. */
    static final int MAX_STACKS = 256;
    /**
     * The most frames a stack holds (values nested in values, rules begun in rules): a byte that would go deeper is not
     * read, so an output nested without end is closed rather than followed, and comparing states stays shallow.
     */
    static final int MAX_DEPTH = 1_000;
    private static final int MAX_INTEGER_DIGITS = 20, MAX_FRACTION_DIGITS = 20, MAX_EXPONENT_DIGITS = 4;

    private JsonMachine() {
    }

    /** A stack of frames, its top first: what remains to be read, innermost first; {@code depth} frames in all. */
    record Stack(Frame top, Stack below, int depth) {
        Stack(Frame top, Stack below) {
            this(top, below, below == null ? 1 : below.depth + 1);
        }
    }

    /** Every stack the output read so far may be in; a state with none is never made (the bytes left the grammar). */
    record State(List<Stack> stacks) {
        State {
            stacks = List.copyOf(stacks);
        }

        /** Before the first byte of a value of {@code shape}, with nothing after it. */
        static State value(JsonShape shape) {
            return new State(List.of(new Stack(new Value(shape, 0), new Stack(End.INSTANCE, null))));
        }

        /** Before the first byte of one of {@code choice}'s texts, exactly, with nothing after it. */
        static State text(JsonShape.Choice choice) {
            Stack end = new Stack(End.INSTANCE, null);
            List<Stack> stacks = new ArrayList<>(List.of(new Stack(new Literal(choice, all(choice), 0), end)));
            if (choice.texts.stream().anyMatch(t -> t.length == 0)) {
                stacks.add(end);  // the empty choice is already complete
            }
            return new State(stacks);
        }

        /**
         * Exactly {@code before}, then a JSON value of {@code shape}, then exactly {@code after}, with nothing after it
         * (either text may be empty).
         */
        static State between(String before, JsonShape shape, String after) {
            Stack end = new Stack(End.INSTANCE, null);
            if (!after.isEmpty()) {
                end = new Stack(new Literal(new JsonShape.Choice(List.of(after)), 1, 0), end);
            }
            Stack value = new Stack(new Value(shape, 0), end);
            return new State(List.of(before.isEmpty() ? value : new Stack(new Literal(new JsonShape.Choice(List.of(before)), 1, 0), value)));
        }

        /**
         * Exactly {@code before}, then one to {@code most} JSON values of {@code shape} with exactly {@code separator}
         * between each two, then exactly {@code after}, with nothing after it: several calls where one may be made.
         */
        static State repeated(String before, JsonShape shape, String separator, String after, int most) {
            Stack repeat = new Stack(new Repeat(shape, new JsonShape.Choice(List.of(separator)), new JsonShape.Choice(List.of(after)),
                    1, most), new Stack(End.INSTANCE, null));
            Stack value = new Stack(new Value(shape, 0), repeat);
            return new State(List.of(before.isEmpty() ? value : new Stack(new Literal(new JsonShape.Choice(List.of(before)), 1, 0), value)));
        }

        /** A text that {@code regex} matches whole, with nothing after it. */
        static State pattern(Regex regex) {
            return new State(List.of(new Stack(PatternFrame.unquoted(regex), new Stack(End.INSTANCE, null))));
        }

        /** A text of {@code grammar}'s root rule, with nothing after it. */
        static State grammar(Gbnf grammar) {
            return new State(List.of(new Stack(new GrammarFrame(grammar, grammar.start, 0), new Stack(End.INSTANCE, null))));
        }

        /**
         * The state after byte {@code b} (0-255), or null where no stack can read it.
         *
         * @throws IllegalStateException where the output could be read in more than {@link #MAX_STACKS} ways (a schema of
         *                               deeply nested unions): the request ends, rather than every mask slowing to a crawl
         */
        State read(int b) {
            List<Stack> next = new ArrayList<>(stacks.size());
            for (Stack s : stacks) {
                s.top().read(b, s.below(), next);
            }
            next.removeIf(s -> s.depth() > MAX_DEPTH);
            if (next.size() > MAX_STACKS) {
                throw new IllegalStateException("the grammar reads the output so far in more than " + MAX_STACKS
                        + " ways (unions nested too deep): it cannot be followed token by token");
            }
            return next.isEmpty() ? null : new State(next);
        }

        /**
         * A state every token of up to {@code span} bytes reads as it reads this one, to share its mask with the states
         * of the same class: a bounded string's length matters only within {@code span} characters of its bounds, so
         * the lengths between {@code minLength} and {@code maxLength - span} are one class (each step inside a long
         * bounded string would otherwise be a state of its own, and walk the vocabulary).
         */
        State representative(int span) {
            List<Stack> canonical = null;
            for (int i = 0; i < stacks.size(); i++) {
                Stack s = stacks.get(i);
                if (s.top() instanceof StringFrame f && f.length() > f.shape().minLength()
                        && (long) f.length() + span <= f.shape().maxLength()) {
                    if (canonical == null) {
                        canonical = new ArrayList<>(stacks);
                    }
                    canonical.set(i, new Stack(new StringFrame(f.shape(), f.escape(), f.shape().minLength(), f.utf8()), s.below()));
                }
                // A pattern's token is read only where the rest of a match still fits after it: the class must leave
                // room for the most characters any state of the automaton still needs, as well as for the token.
                if (s.top() instanceof PatternFrame f && f.length() > f.minLength()
                        && (long) f.length() + span + f.regex().farthestMatch() <= f.maxLength()) {
                    if (canonical == null) {
                        canonical = new ArrayList<>(stacks);
                    }
                    canonical.set(i, new Stack(new PatternFrame(f.regex(), f.state(), f.quoted(), f.minLength(), f.minLength(),
                            f.maxLength()), s.below()));
                }
            }
            return canonical == null ? this : new State(canonical);
        }

        /** Whether the bytes read so far are a whole text of the grammar. */
        boolean accepting() {
            for (Stack s : stacks) {
                Stack at = s;
                while (at.top().mayEnd()) {
                    at = at.below();
                }
                if (at.top() == End.INSTANCE) {
                    return true;
                }
            }
            return false;
        }
    }

    /** What a frame expects next. */
    sealed interface Frame {
        /** Adds to {@code out} each stack that reading {@code b} with this frame on top of {@code below} leaves. */
        void read(int b, Stack below, List<Stack> out);

        /** Whether the frame's value may end here, with no byte more (a number has no closing byte). */
        default boolean mayEnd() {
            return false;
        }
    }

    private static void add(List<Stack> out, Stack s) {
        if (!out.contains(s)) {
            out.add(s);
        }
    }

    /**
     * The whitespace of a gap after {@code b}, or -1 where {@code b} may not come: {@code gap} 0 before any, 1 after a
     * lone space, 2 + n after a newline and n spaces.
     */
    private static int gap(int gap, int b) {
        if (b == '\n') {
            return gap == 0 ? 2 : -1;
        }
        if (b == ' ') {
            return gap == 0 ? 1 : gap >= 2 && gap < 2 + MAX_INDENT ? gap + 1 : -1;
        }
        return -1;
    }

    private static boolean isSpace(int b) {
        return b == ' ' || b == '\n' || b == '\t' || b == '\r';
    }

    private static long all(JsonShape.Choice choice) {
        return choice.texts.size() == 64 ? -1L : (1L << choice.texts.size()) - 1;
    }

    /** Starts a value of {@code shape} with its first byte {@code b}, above {@code below}. */
    private static void start(JsonShape shape, int b, Stack below, List<Stack> out) {
        switch (shape) {
            case JsonShape.AnyValue any -> {
                switch (b) {
                    case '{' -> start(JsonShape.ObjectShape.ANY, b, below, out);
                    case '[' -> start(JsonShape.ArrayShape.ANY, b, below, out);
                    case '"' -> start(JsonShape.StringShape.ANY, b, below, out);
                    case 't', 'f', 'n' -> start(JsonShape.Choice.LITERALS, b, below, out);
                    default -> start(new JsonShape.NumberShape(false), b, below, out);
                }
            }
            case JsonShape.ObjectShape object -> {
                if (b == '{') {
                    add(out, new Stack(new ObjectFrame(object, 0, 0, ObjectFrame.OPEN, 0, 0, -1, 0), below));
                }
            }
            case JsonShape.ArrayShape array -> {
                if (b == '[') {
                    add(out, new Stack(new ArrayFrame(array, 0, 0, ArrayFrame.OPEN, 0), below));
                }
            }
            case JsonShape.StringShape string -> {
                if (b == '"') {
                    add(out, new Stack(new StringFrame(string, 0, 0), below));
                }
            }
            case JsonShape.PatternString string -> {
                if (b == '"' && string.regex.charactersToMatch(string.regex.initial()) <= string.maxLength
                        && string.regex.mostCharactersToMatch(string.regex.initial()) >= string.minLength) {
                    add(out, new Stack(new PatternFrame(string.regex, string.regex.initial(), true, 0, string.minLength,
                            string.maxLength), below));
                }
            }
            case JsonShape.PatternNumber number -> PatternFrame.unquoted(number.regex).read(b, below, out);
            case JsonShape.NumberShape number -> new NumberFrame(number.integer(), NumberFrame.START, 0).read(b, below, out);
            case JsonShape.Choice choice -> new Literal(choice, all(choice), 0).read(b, below, out);
            case JsonShape.AnyOf anyOf -> anyOf.alternatives.forEach(alternative -> start(alternative, b, below, out));
            case JsonShape.Reference reference -> start(reference.target(), b, below, out);
        }
    }

    /** Nothing more: the bottom of every stack. */
    enum End implements Frame {
        INSTANCE;

        @Override
        public void read(int b, Stack below, List<Stack> out) {
        }
    }

    /** A value of {@code shape} to come, after whitespace of {@link #gap} {@code spaces}. */
    record Value(JsonShape shape, int spaces) implements Frame {
        @Override
        public void read(int b, Stack below, List<Stack> out) {
            if (isSpace(b)) {
                if (gap(spaces, b) >= 0) {
                    add(out, new Stack(new Value(shape, gap(spaces, b)), below));
                }
                return;
            }
            start(shape, b, below, out);
        }
    }

    /**
     * Inside an object: after its '{' ({@link #OPEN}), inside a named key matching {@code candidates} (a bit per name) up
     * to {@code keyPos} bytes ({@link #KEY}), before the colon of key {@code key} ({@link #COLON}, -1 for a key of an
     * object of any keys), after a value ({@link #AFTER}), after a comma ({@link #NEXT}); {@code seen} the names so far,
     * {@code count} the keys so far, {@code spaces} the whitespace of the gap so far ({@link #gap}).
     */
    record ObjectFrame(JsonShape.ObjectShape shape, long seen, int count, int phase, long candidates, int keyPos, int key,
                       int spaces) implements Frame {
        static final int OPEN = 0, KEY = 1, COLON = 2, AFTER = 3, NEXT = 4;

        private ObjectFrame at(int phase, int spaces) {
            return new ObjectFrame(shape, seen, count, phase, 0, 0, key, spaces);
        }

        /**
         * The names a next key may be: those not yet written, and only the required ones where the keys left under
         * maxProperties are no more than the required names still to come (so that the object can always be closed).
         */
        private long nextNames() {
            int n = shape.names.size();
            long unseen = (n == 64 ? -1L : (1L << n) - 1) & ~seen;
            long requiredLeft = shape.required & ~seen;
            return shape.maxProperties - count <= Long.bitCount(requiredLeft) ? requiredLeft : unseen;
        }

        /** Whether another key may follow. */
        private boolean mayAddKey() {
            return count < shape.maxProperties && (shape.anyKeys() || nextNames() != 0);
        }

        /** Whether the object may close here. */
        private boolean mayClose() {
            return (seen & shape.required) == shape.required && count >= shape.minProperties;
        }

        @Override
        public void read(int b, Stack below, List<Stack> out) {
            if (isSpace(b) && phase != KEY) {
                if (gap(spaces, b) >= 0) {
                    add(out, new Stack(new ObjectFrame(shape, seen, count, phase, candidates, keyPos, key, gap(spaces, b)), below));
                }
                return;
            }
            switch (phase) {
                case OPEN, NEXT -> {
                    if (b == '}' && phase == OPEN && mayClose()) {
                        add(out, below);
                    } else if (b == '"' && shape.anyKeys() && count < shape.maxProperties) {
                        add(out, new Stack(new StringFrame(JsonShape.StringShape.ANY, 0, 0),
                                new Stack(new ObjectFrame(shape, seen, count + 1, COLON, 0, 0, -1, 0), below)));
                    } else if (b == '"' && !shape.anyKeys() && mayAddKey()) {
                        add(out, new Stack(new ObjectFrame(shape, seen, count, KEY, nextNames(), 0, -1, 0), below));
                    }
                }
                case KEY -> {
                    long next = 0;
                    for (long rest = candidates; rest != 0; rest &= rest - 1) {
                        int i = Long.numberOfTrailingZeros(rest);
                        byte[] name = shape.names.get(i);
                        if (b == '"' && name.length == keyPos) {
                            add(out, new Stack(new ObjectFrame(shape, seen | 1L << i, count + 1, COLON, 0, 0, i, 0), below));
                        } else if (keyPos < name.length && (name[keyPos] & 0xff) == b) {
                            next |= 1L << i;
                        }
                    }
                    if (next != 0) {
                        add(out, new Stack(new ObjectFrame(shape, seen, count, KEY, next, keyPos + 1, -1, 0), below));
                    }
                }
                case COLON -> {
                    if (b == ':') {
                        JsonShape value = key >= 0 ? shape.values.get(key) : shape.otherValues;
                        add(out, new Stack(new Value(value, 0), new Stack(at(AFTER, 0), below)));
                    }
                }
                default -> {  // AFTER
                    if (b == ',' && mayAddKey()) {
                        add(out, new Stack(at(NEXT, 0), below));
                    } else if (b == '}' && mayClose()) {
                        add(out, below);
                    }
                }
            }
        }
    }

    /**
     * Inside an array of {@code count} items so far: after its '[' ({@link #OPEN}), after an item, after a comma;
     * {@code used} the choices written so far where the items are distinct (a bit per choice).
     */
    record ArrayFrame(JsonShape.ArrayShape shape, int count, long used, int phase, int spaces) implements Frame {
        static final int OPEN = 0, AFTER = 1, NEXT = 2;

        @Override
        public void read(int b, Stack below, List<Stack> out) {
            if (isSpace(b)) {
                if (gap(spaces, b) >= 0) {
                    add(out, new Stack(new ArrayFrame(shape, count, used, phase, gap(spaces, b)), below));
                }
                return;
            }
            switch (phase) {
                case OPEN -> {
                    if (b == ']' && shape.minItems == 0) {
                        add(out, below);
                    } else if (shape.maxItems > 0) {
                        startItem(b, below, out);
                    }
                }
                case AFTER -> {
                    if (b == ',' && count < shape.maxItems) {
                        add(out, new Stack(new ArrayFrame(shape, count, used, NEXT, 0), below));
                    } else if (b == ']' && count >= shape.minItems) {
                        add(out, below);
                    }
                }
                default -> startItem(b, below, out);  // NEXT
            }
        }

        /**
         * Starts the next item with {@code b}. Distinct items follow each unwritten choice on a path of its own, which
         * knows, once its text ends, which choice it wrote.
         */
        private void startItem(int b, Stack below, List<Stack> out) {
            if (!shape.unique) {
                start(shape.item(count), b, new Stack(new ArrayFrame(shape, count + 1, used, AFTER, 0), below), out);
                return;
            }
            JsonShape.Choice choice = (JsonShape.Choice) shape.items;
            int n = choice.texts.size();
            for (long unused = (n == 64 ? -1L : (1L << n) - 1) & ~used; unused != 0; unused &= unused - 1) {
                long one = Long.lowestOneBit(unused);
                new Literal(choice, one, 0).read(b, new Stack(new ArrayFrame(shape, count + 1, used | one, AFTER, 0), below), out);
            }
        }
    }

    /**
     * Inside a string of {@code length} characters so far; {@code escape} 0 outside an escape, 1 after its backslash,
     * 2-5 before the first to fourth hex digit of a {@code \\u} escape; {@code utf8} the continuation bytes its last
     * character still needs ({@link #continuation}), so that only whole UTF-8, which JSON requires, is written.
     */
    record StringFrame(JsonShape.StringShape shape, int escape, int length, int utf8) implements Frame {
        StringFrame {
            if (shape.minLength() == 0 && shape.maxLength() == Integer.MAX_VALUE) {
                length = 0;  // nothing bounds it: uncounted, so that every step inside the string is one state, one mask
            }
        }

        StringFrame(JsonShape.StringShape shape, int escape, int length) {
            this(shape, escape, length, 0);
        }

        @Override
        public void read(int b, Stack below, List<Stack> out) {
            if (utf8 > 0) {
                int next = continuation(utf8, b);
                if (next >= 0) {
                    add(out, new Stack(new StringFrame(shape, 0, length, next), below));
                }
                return;
            }
            if (escape == 1) {
                if ("\"\\/bfnrt".indexOf(b) >= 0) {
                    add(out, new Stack(new StringFrame(shape, 0, length + 1), below));
                } else if (b == 'u') {
                    add(out, new Stack(new StringFrame(shape, 2, length), below));
                }
                return;
            }
            if (escape > 1) {
                if (b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F') {
                    add(out, new Stack(escape == 5 ? new StringFrame(shape, 0, length + 1) : new StringFrame(shape, escape + 1, length), below));
                }
                return;
            }
            if (b == '"') {
                if (length >= shape.minLength()) {
                    add(out, below);
                }
                return;
            }
            int needs = b < 0x80 ? 0 : b >= 0xC2 && b <= 0xDF ? 1 : b == 0xE0 ? 4 : b == 0xED ? 5 : b >= 0xE1 && b <= 0xEF ? 2
                    : b == 0xF0 ? 6 : b >= 0xF1 && b <= 0xF3 ? 3 : b == 0xF4 ? 7 : -1;
            if (b >= 0x20 && needs >= 0 && length < shape.maxLength()) {
                add(out, new Stack(b == '\\' ? new StringFrame(shape, 1, length) : new StringFrame(shape, 0, length + 1, needs), below));
            }
        }

        /**
         * The continuation bytes still needed after {@code b}, or -1 where {@code b} cannot continue the character:
         * {@code utf8} 1-3 takes any of 0x80-0xBF; 4-7 are the second bytes UTF-8 narrows (after E0: A0-BF, ED: 80-9F,
         * so no surrogates; F0: 90-BF, F4: 80-8F, so nothing past U+10FFFF).
         */
        private static int continuation(int utf8, int b) {
            return switch (utf8) {
                case 4 -> b >= 0xA0 && b <= 0xBF ? 1 : -1;
                case 5 -> b >= 0x80 && b <= 0x9F ? 1 : -1;
                case 6 -> b >= 0x90 && b <= 0xBF ? 2 : -1;
                case 7 -> b >= 0x80 && b <= 0x8F ? 2 : -1;
                default -> b >= 0x80 && b <= 0xBF ? utf8 - 1 : -1;
            };
        }
    }

    /**
     * Inside a text that {@code regex} must match, in its automaton's {@code state}: a JSON string's characters
     * ({@code quoted}: its closing quote ends it where the automaton accepts; no escapes, no control characters), or
     * unquoted, a number's text or the whole output of a regular-expression grammar, which ends wherever the automaton
     * accepts and the next byte cannot go on with it.
     */
    record PatternFrame(Regex regex, java.util.BitSet state, boolean quoted, int length, int minLength, int maxLength)
            implements Frame {
        /** A number's text (or a pattern's, alone), not between quotes, of any length. */
        static PatternFrame unquoted(Regex regex) {
            return new PatternFrame(regex, regex.initial(), false, 0, 0, Integer.MAX_VALUE);
        }

        @Override
        public boolean mayEnd() {
            return !quoted && regex.accepts(state) && length >= minLength;
        }

        @Override
        public void read(int b, Stack below, List<Stack> out) {
            if (quoted && b == '"') {
                if (regex.accepts(state) && length >= minLength) {
                    add(out, below);
                }
                return;
            }
            // A character begins at every byte but a continuation; where no length is bounded none is counted (one state).
            boolean counted = minLength > 0 || maxLength < Integer.MAX_VALUE;
            int longer = counted && (b & 0xC0) != 0x80 ? length + 1 : length;
            java.util.BitSet next = quoted && (b == '\\' || b < 0x20) || longer > maxLength ? null : regex.read(state, b);
            if (next != null && counted && ((long) longer + regex.charactersToMatch(next) > maxLength
                    || longer < minLength && (long) longer + regex.mostCharactersToMatch(next) < minLength)) {
                next = null;  // a match would not fit, or could not reach the least length: the string could not end
            }
            if (next != null) {
                add(out, new Stack(new PatternFrame(regex, next, quoted, longer, minLength, maxLength), below));
            } else if (mayEnd()) {
                below.top().read(b, below.below(), out);
            }
        }
    }

    /**
     * Inside a sequence of a GBNF grammar, its symbol {@code position} to come. A frame never stands at a sequence's end:
     * the sequence's last symbol read, what is below it comes next (so a rule that ends in itself, as repetitions do,
     * keeps its stack as deep as it was).
     */
    record GrammarFrame(Gbnf grammar, int sequence, int position) implements Frame {
        @Override
        public boolean mayEnd() {
            return grammar.nullableFrom(sequence, position);
        }

        @Override
        public void read(int b, Stack below, List<Stack> out) {
            readSymbols(grammar, sequence, position, b, below, out);
        }

        /** Reads {@code b} as the first byte of {@code sequence}'s symbols from {@code position} on, then of {@code below}. */
        private static void readSymbols(Gbnf g, int sequence, int position, int b, Stack below, List<Stack> out) {
            if (position == g.length(sequence)) {
                below.top().read(b, below.below(), out);
                return;
            }
            int symbol = g.symbol(sequence, position);
            Stack rest = position + 1 == g.length(sequence) ? below : new Stack(new GrammarFrame(g, sequence, position + 1), below);
            if (symbol >= 0) {
                if (g.matches(symbol, b)) {
                    add(out, rest);
                }
            } else {
                for (int alternative : g.alternatives(~symbol)) {
                    readSymbols(g, alternative, 0, b, rest, out);
                }
            }
        }
    }

    /** Inside a number, in one of the states of JSON's number grammar, with {@code digits} digits in its current part. */
    record NumberFrame(boolean integer, int state, int digits) implements Frame {
        static final int START = 0, MINUS = 1, ZERO = 2, INTEGER = 3, DOT = 4, FRACTION = 5, EXPONENT = 6, EXPONENT_SIGN = 7,
                EXPONENT_DIGITS = 8;

        @Override
        public boolean mayEnd() {
            return state == ZERO || state == INTEGER || state == FRACTION || state == EXPONENT_DIGITS;
        }

        @Override
        public void read(int b, Stack below, List<Stack> out) {
            boolean digit = b >= '0' && b <= '9';
            boolean exponent = (b == 'e' || b == 'E') && !integer;
            NumberFrame next = switch (state) {
                case START -> b == '-' ? at(MINUS, 0) : b == '0' ? at(ZERO, 1) : digit ? at(INTEGER, 1) : null;
                case MINUS -> b == '0' ? at(ZERO, 1) : digit ? at(INTEGER, 1) : null;
                case ZERO -> b == '.' && !integer ? at(DOT, 0) : exponent ? at(EXPONENT, 0) : null;
                case INTEGER -> digit && digits < MAX_INTEGER_DIGITS ? at(INTEGER, digits + 1)
                        : b == '.' && !integer ? at(DOT, 0) : exponent ? at(EXPONENT, 0) : null;
                case DOT -> digit ? at(FRACTION, 1) : null;
                case FRACTION -> digit && digits < MAX_FRACTION_DIGITS ? at(FRACTION, digits + 1) : exponent ? at(EXPONENT, 0) : null;
                case EXPONENT -> b == '+' || b == '-' ? at(EXPONENT_SIGN, 0) : digit ? at(EXPONENT_DIGITS, 1) : null;
                case EXPONENT_SIGN -> digit ? at(EXPONENT_DIGITS, 1) : null;
                default -> digit && digits < MAX_EXPONENT_DIGITS ? at(EXPONENT_DIGITS, digits + 1) : null;
            };
            if (next != null) {
                add(out, new Stack(next, below));
            } else if (mayEnd()) {
                below.top().read(b, below.below(), out);  // the number ended before b: what follows it reads b
            }
        }

        private NumberFrame at(int state, int digits) {
            return new NumberFrame(integer, state, digits);
        }
    }

    /** Inside one of {@code choice}'s texts, those still {@code alive} (a bit each) matched up to {@code pos} bytes. */
    /**
     * After the {@code count}-th value of a repetition: the separator and another value (while fewer than {@code most}),
     * or the closing text; where that is empty the repetition may end here.
     */
    record Repeat(JsonShape shape, JsonShape.Choice separator, JsonShape.Choice after, int count, int most) implements Frame {
        @Override
        public boolean mayEnd() {
            return after.texts.getFirst().length == 0;
        }

        @Override
        public void read(int b, Stack below, List<Stack> out) {
            if (count < most) {
                Stack next = new Stack(new Value(shape, 0), new Stack(new Repeat(shape, separator, after, count + 1, most), below));
                new Literal(separator, 1, 0).read(b, next, out);
            }
            if (mayEnd()) {
                below.top().read(b, below.below(), out);
            } else {
                new Literal(after, 1, 0).read(b, below, out);
            }
        }
    }

    record Literal(JsonShape.Choice choice, long alive, int pos) implements Frame {
        @Override
        public void read(int b, Stack below, List<Stack> out) {
            long next = 0;
            boolean ended = false;
            for (long rest = alive; rest != 0; rest &= rest - 1) {
                int i = Long.numberOfTrailingZeros(rest);
                byte[] text = choice.texts.get(i);
                if (pos < text.length && (text[pos] & 0xff) == b) {
                    if (pos + 1 == text.length) {
                        ended = true;
                    } else {
                        next |= 1L << i;
                    }
                }
            }
            if (next != 0) {
                add(out, new Stack(new Literal(choice, next, pos + 1), below));
            }
            if (ended) {
                add(out, below);
            }
        }
    }
}
