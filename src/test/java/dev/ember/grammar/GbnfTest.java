package dev.ember.grammar;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * GBNF grammars read byte by byte: against java.util.regex on random regular grammars written both ways (classes of
 * any Unicode character, negated ones, every repetition), against Jackson with a JSON grammar, and on a language no
 * regular expression holds; UTF-8 sequences of code-point ranges against Java's encoder; refusals by name and place.
 */
class GbnfTest {
    static boolean accepts(Gbnf grammar, String text) {
        return JsonMachineTest.accepts(JsonMachine.State.grammar(grammar), text);
    }

    @Test
    void utf8SequencesOfARangeEncodeExactlyItsCodePoints() {
        SplittableRandom random = new SplittableRandom(3);
        int[][] ranges = {{0, 0x10FFFF}, {0x7F, 0x80}, {0x7FF, 0x800}, {0xFFFF, 0x10000}, {0xD000, 0xE100}, {0x41, 0x5A}};
        for (int i = 0; i < 40; i++) {
            int[] range = i < ranges.length ? ranges[i] : randomRange(random);
            List<int[][]> sequences = Utf8Ranges.of(range[0], range[1]);
            for (int probe = 0; probe < 3000; probe++) {
                int cp = probe < 64 ? Math.clamp(range[0] - 32 + probe, 0, 0x10FFFF) : random.nextInt(0x110000);
                if (cp >= 0xD800 && cp <= 0xDFFF) {
                    continue;
                }
                byte[] bytes = new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8);
                assertArrayEquals(bytes, Utf8Ranges.encode(cp));
                long matching = sequences.stream().filter(s -> matches(s, bytes)).count();
                boolean inside = cp >= range[0] && cp <= range[1];
                assertEquals(inside ? 1 : 0, matching, "U+" + Integer.toHexString(cp) + " against " + range[0] + "-" + range[1]);
            }
        }
    }

    private static int[] randomRange(SplittableRandom random) {
        int a = random.nextInt(random.nextBoolean() ? 0x800 : 0x110000), b = random.nextInt(random.nextBoolean() ? 0x800 : 0x110000);
        return new int[] {Math.min(a, b), Math.max(a, b)};
    }

    private static boolean matches(int[][] sequence, byte[] bytes) {
        if (sequence.length != bytes.length) {
            return false;
        }
        for (int i = 0; i < bytes.length; i++) {
            int x = bytes[i] & 0xff;
            if (x < sequence[i][0] || x > sequence[i][1]) {
                return false;
            }
        }
        return true;
    }

    /** A random regular expression, written as GBNF and as java.util.regex, and an alphabet its strings come from. */
    private record Both(String gbnf, String regex) {
    }

    private static final String[] ATOMS = {"a", "b", "é", "漢", "🙂", "\n", "\""};

    private static Both randomExpression(SplittableRandom random, int depth) {
        int kind = random.nextInt(depth > 2 ? 3 : 7);
        return switch (kind) {
            case 0 -> {
                String atom = ATOMS[random.nextInt(ATOMS.length)];
                yield new Both(gbnfString(atom), Pattern.quote(atom));
            }
            case 1 -> switch (random.nextInt(4)) {
                case 0 -> new Both("[a-c]", "[a-c]");
                case 1 -> new Both("[^a\\n]", "[^a\\n]");
                case 2 -> new Both("[é-漢]", "[é-漢]");
                default -> new Both("[^\"\\\\\\x00-\\x1F]", "[^\"\\\\\\x00-\\x1F]");
            };
            case 2 -> new Both(".", "(?s:.)");
            case 3 -> {
                Both a = randomExpression(random, depth + 1), b = randomExpression(random, depth + 1);
                yield new Both("(" + a.gbnf + " " + b.gbnf + ")", "(?:" + a.regex + b.regex + ")");
            }
            case 4 -> {
                Both a = randomExpression(random, depth + 1), b = randomExpression(random, depth + 1);
                yield new Both("(" + a.gbnf + " | " + b.gbnf + ")", "(?:" + a.regex + "|" + b.regex + ")");
            }
            default -> {
                Both a = randomExpression(random, depth + 1);
                String[] quantifiers = {"*", "+", "?", "{2}", "{1,3}", "{0,2}", "{2,}"};
                String q = quantifiers[random.nextInt(quantifiers.length)];
                yield new Both("(" + a.gbnf + ")" + q, "(?:" + a.regex + ")" + q);
            }
        };
    }

    private static String gbnfString(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\"";
    }

    @Test
    void regularGrammarsMatchWhatJavasRegexMatches() {
        SplittableRandom random = new SplittableRandom(11);
        String alphabet = "abé漢🙂\n\"c\u0001z";
        int checked = 0, matched = 0;
        for (int i = 0; i < 300; i++) {
            Both both = randomExpression(random, 0);
            Gbnf grammar;
            try {
                grammar = Gbnf.parse("root ::= " + both.gbnf + "\n");
            } catch (EmberException e) {  // a repetition of what may be empty: refused, and only that
                assertTrue(e.getMessage().contains("can reach itself before reading"), both.gbnf + ": " + e.getMessage());
                continue;
            }
            Pattern pattern = Pattern.compile(both.regex);
            for (int s = 0; s < 40; s++) {
                String text = JsonMachineTest.randomText(random, alphabet, 6);
                String t = s == 0 ? "" : text;
                boolean expected = pattern.matcher(t).matches();
                assertEquals(expected, accepts(grammar, t), both.gbnf + " on \"" + t + "\"");
                checked++;
                matched += expected ? 1 : 0;
            }
        }
        assertTrue(matched > checked / 50, matched + " of " + checked + " strings matched: both answers are checked");
    }

    private static final String JSON_GRAMMAR = """
            # JSON as RFC 8259 has it, whitespace included
            root   ::= ws value ws
            value  ::= object | array | string | number | ("true" | "false" | "null")
            object ::= "{" ws ( member ( ws "," ws member )* ws )? "}"
            member ::= string ws ":" ws value
            array  ::= "[" ws ( value ( ws "," ws value )* ws )? "]"
            string ::= "\\"" ( [^"\\\\\\x00-\\x1F] | "\\\\" ( ["\\\\/bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\\""
            number ::= "-"? ("0" | [1-9] [0-9]*) ("." [0-9]+)? ([eE] [-+]? [0-9]+)?
            ws     ::= [ \\t\\n\\r]*
            """;

    @Test
    void aJsonGrammarAcceptsExactlyWhatJacksonReads() throws Exception {
        Gbnf grammar = Gbnf.parse(JSON_GRAMMAR);
        SplittableRandom random = new SplittableRandom(5);
        String inserted = "{}[]:,\"\\0123456789.eE+-tfnulrax \n";
        int mutants = 0, valid = 0;
        for (int i = 0; i < 200; i++) {
            String text = new ObjectMapper().writeValueAsString(JsonMachineTest.randomValue(random, 0));
            assertTrue(accepts(grammar, text), text);
            for (int m = 0; m < 10; m++) {
                String t = JsonMachineTest.mutate(random, text, inserted);
                boolean expected = JsonMachineTest.jacksonReads(t);
                assertEquals(expected, accepts(grammar, t), "\"" + t + "\"");
                mutants++;
                valid += expected ? 1 : 0;
            }
        }
        assertTrue(valid > mutants / 20 && valid < mutants * 9 / 10, valid + " of " + mutants + " mutants valid");
    }

    @Test
    void aLanguageNoRegularExpressionHoldsIsRead() {
        Gbnf balanced = Gbnf.parse("root ::= item*\nitem ::= \"(\" root \")\" | \"x\"\n");
        SplittableRandom random = new SplittableRandom(2);
        for (int i = 0; i < 2000; i++) {
            StringBuilder t = new StringBuilder();
            for (int n = random.nextInt(12); n > 0; n--) {
                t.append("()x".charAt(random.nextInt(3)));
            }
            int depth = 0;
            boolean balancedText = true;
            for (char c : t.toString().toCharArray()) {
                depth += c == '(' ? 1 : c == ')' ? -1 : 0;
                balancedText &= depth >= 0;
            }
            assertEquals(balancedText && depth == 0, accepts(balanced, t.toString()), t.toString());
        }
    }

    @Test
    void rulesMayRunOverLinesInsideGroupsAndAfterBars() {
        Gbnf grammar = Gbnf.parse("""
                root ::=
                  greeting |
                  ( "bye"   # a comment
                    " now" )
                greeting ::= "hi" [!?]{0,3}
                """);
        for (String yes : List.of("hi", "hi!?!", "bye now")) {
            assertTrue(accepts(grammar, yes), yes);
        }
        for (String no : List.of("hi!!!!", "bye", "", "hibye now")) {
            assertFalse(accepts(grammar, no), no);
        }
    }

    @ParameterizedTest
    @CsvSource(delimiterString = " => ", textBlock = """
            value ::= "a"                => no rule named root
            root ::= thing               => the rule thing is used but never defined
            root ::= root "a" | "b"      => the rule root can reach itself before reading
            root ::= ("a"?)*             => can reach itself before reading
            root ::= "a\\q"              => line 1, column 14: the escape \\q
            root ::= "abc                => a string that never ends
            root ::= [abc                => a class that never ends
            root ::= ("a" | "b"          => expected ) to close the group
            root ::= "a"{3,2}            => no fewer than the least
            root ::= "a"{5000}           => at most 1000 copies
            root = "a"                   => expected ::= after the rule name root
            root ::= * "a"               => with nothing before it to repeat
            root ::= [z-a]               => a class range that runs backwards
            root ::= "a" "b" ::=         => expected the end of the line after the rule root""")
    void whatIsNotAGrammarIsRefusedSayingWhereAndWhy(String text, String said) {
        EmberException e = assertThrows(EmberException.class, () -> Gbnf.parse(text));
        assertTrue(e.getMessage().startsWith("GBNF") && e.getMessage().contains(said), e.getMessage());
    }

    /** Grammars built to exhaust the recognizer: deep groups, long chains of rules, huge repetitions. */
    @Test
    void grammarsTooDeepOrTooLargeAreRefusedNotOverflowed() {
        String deep = "root ::= " + "(".repeat(65) + "\"a\"" + ")".repeat(65) + "\n";
        assertTrue(assertThrows(EmberException.class, () -> Gbnf.parse(deep)).getMessage().contains("nested more than 64"));
        assertTrue(accepts(Gbnf.parse("root ::= " + "(".repeat(64) + "\"a\"" + ")".repeat(64) + "\n"), "a"));
        Gbnf chain = Gbnf.parse(chain(900));
        assertTrue(accepts(chain, "y") && accepts(chain, "x") && !accepts(chain, "z"));
        assertTrue(assertThrows(EmberException.class, () -> Gbnf.parse(chain(9_000))).getMessage()
                .contains("begins with a chain of more than 1000 rules"));
        String many = chain(900) + "s ::= " + "\"a\"? ".repeat(9_500) + "\n";
        assertTrue(assertThrows(EmberException.class, () -> Gbnf.parse(many)).getMessage().contains("more than 10000 rules"));
        String huge = "root ::= " + "\"abcdefghij\"{1000} ".repeat(21) + "\n";  // 210,000 bytes written out
        assertTrue(assertThrows(EmberException.class, () -> Gbnf.parse(huge)).getMessage().contains("larger than 200000 symbols"));
    }

    /** root, then {@code length} rules each beginning with the next, the last a character. */
    private static String chain(int length) {
        StringBuilder text = new StringBuilder("root ::= r0\n");
        for (int i = 0; i < length; i++) {
            text.append("r").append(i).append(" ::= r").append(i + 1).append(" | \"x\"\n");
        }
        return text.append("r").append(length).append(" ::= \"y\"\n").toString();
    }

    @Test
    void aRuleDefinedTwiceIsRefused() {
        EmberException e = assertThrows(EmberException.class, () -> Gbnf.parse("root ::= a\na ::= \"x\"\na ::= \"y\"\n"));
        assertTrue(e.getMessage().contains("line 3") && e.getMessage().contains("defined twice"), e.getMessage());
    }
}
