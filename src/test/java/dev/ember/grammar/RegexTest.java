package dev.ember.grammar;

import dev.ember.EmberException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.util.BitSet;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** The byte automaton of a regular expression against java.util.regex, on random patterns and random strings. */
class RegexTest {

    static boolean matches(Regex regex, String text) {
        BitSet state = regex.initial();
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            state = regex.read(state, b & 0xff);
            if (state == null) {
                return false;
            }
        }
        return regex.accepts(state);
    }

    private static String randomPattern(SplittableRandom random, int depth) {
        int parts = random.nextInt(1, 4);
        StringBuilder p = new StringBuilder();
        for (int i = 0; i < parts; i++) {
            String atom = switch (random.nextInt(depth > 2 ? 6 : 8)) {
                case 0 -> "a";
                case 1 -> "b";
                case 2 -> ".";
                case 3 -> "[ab]";
                case 4 -> "[^a]";
                case 5 -> "\\d";
                case 6 -> "(" + randomPattern(random, depth + 1) + "|" + randomPattern(random, depth + 1) + ")";
                default -> "(?:" + randomPattern(random, depth + 1) + ")";
            };
            String quantifier = switch (random.nextInt(9)) {
                case 0 -> "*";
                case 1 -> "+";
                case 2 -> "?";
                case 3 -> "{2}";
                case 4 -> "{1,3}";
                case 5 -> "{0,2}";
                case 6 -> "{2,}";
                default -> "";
            };
            p.append(atom).append(quantifier);
        }
        return p.toString();
    }

    @Test
    void randomPatternsMatchWhatJavasRegexMatches() {
        SplittableRandom random = new SplittableRandom(11);
        String alphabet = "ab1x-";
        int matched = 0, checked = 0;
        for (int i = 0; i < 300; i++) {
            String pattern = randomPattern(random, 0);
            Regex regex = Regex.fullMatch(pattern);
            Pattern java = Pattern.compile(pattern);
            for (int s = 0; s < 60; s++) {
                StringBuilder text = new StringBuilder();
                for (int k = random.nextInt(7); k > 0; k--) {
                    text.append(alphabet.charAt(random.nextInt(alphabet.length())));
                }
                boolean expected = java.matcher(text).matches();
                assertEquals(expected, matches(regex, text.toString()), "/" + pattern + "/ on \"" + text + "\"");
                matched += expected ? 1 : 0;
                checked++;
            }
        }
        assertTrue(matched > checked / 20 && matched < checked * 19 / 20, matched + " of " + checked + " matched: both kinds checked");
    }

    @Test
    void aSchemaPatternSearchesUnlessAnchored() {
        assertTrue(matches(Regex.schemaPattern("b+"), "abba"));
        assertFalse(matches(Regex.schemaPattern("^b+$"), "abba"));
        assertTrue(matches(Regex.schemaPattern("^b+$"), "bb"));
        assertTrue(matches(Regex.fullMatch("é+"), "éé"), "a non-ASCII literal is its UTF-8 bytes");
        assertTrue(matches(Regex.fullMatch("^ab$"), "ab"), "anchors around a full match say nothing more");
        assertFalse(matches(Regex.fullMatch("."), "é"), ". stands for printable ASCII");
        assertTrue(matches(Regex.fullMatch("[\\w.-]+@[a-z]+\\.(com|org)"), "j.doe-1@mail.org"));
        assertTrue(matches(Regex.fullMatch("\\(\\d{3}\\) \\d{3}-\\d{4}"), "(555) 123-4567"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"(a", "a)", "(?=a)b", "(a)\\1", "[é-ü]", "a{3,2}", "*a", "a{1000}", "[a-", "a^b"})
    void whatItCannotHoldIsRefusedNamingThePattern(String pattern) {
        EmberException e = assertThrows(EmberException.class, () -> Regex.fullMatch(pattern));
        assertTrue(e.getMessage().contains(pattern), e.getMessage());
    }
}
