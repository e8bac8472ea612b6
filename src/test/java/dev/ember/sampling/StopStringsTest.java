package dev.ember.sampling;

import dev.ember.EmberException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class StopStringsTest {

    @Test
    void stopSplitAcrossPiecesIsHeldBackThenDropped() {
        StopStrings stops = new StopStrings(List.of("</answer>"));
        assertEquals("The result is 4", stops.feed("The result is 4"));
        assertEquals(".", stops.feed(".</"));          // "</" might start the stop: held
        assertEquals("", stops.feed("ans"));           // "</ans" still might
        assertFalse(stops.stopped());
        assertEquals("", stops.feed("wer> and then more"));
        assertTrue(stops.stopped());
        assertEquals(Optional.of("</answer>"), stops.matchedStop());
        assertEquals("", stops.feed("text after the stop"));
        assertEquals("", stops.finish());
    }

    @Test
    void heldPrefixIsReleasedWhenItStopsMatching() {
        StopStrings stops = new StopStrings(List.of("\n\nUser:"));
        assertEquals("Hi", stops.feed("Hi\n"));
        assertEquals("", stops.feed("\nUs"));
        assertEquals("\n\nUse it.", stops.feed("e it."));
        assertFalse(stops.stopped());
        assertEquals("", stops.feed("\n"));
        assertEquals("\n", stops.finish()); // the generation ended otherwise: the held tail is safe now
    }

    @Test
    void textBeforeAStopInTheSamePieceIsEmitted() {
        StopStrings stops = new StopStrings(List.of("STOP"));
        assertEquals("abc", stops.feed("abcSTOPdef"));
        assertTrue(stops.stopped());
    }

    @Test
    void theStopThatWouldCompleteFirstWins() {
        // "b" completes at the second character, before "abc" does.
        StopStrings shorter = new StopStrings(List.of("abc", "b"));
        assertEquals("xa", shorter.feed("xabcd"));
        assertEquals(Optional.of("b"), shorter.matchedStop());
        // Both end at the same character: the longer one, so none of it is emitted.
        StopStrings longer = new StopStrings(List.of("c", "abc"));
        assertEquals("x", longer.feed("xabc"));
        assertEquals(Optional.of("abc"), longer.matchedStop());
        // A stop that is a prefix of another fires as soon as it is complete.
        StopStrings prefix = new StopStrings(List.of("<|im_end|>", "<|im"));
        assertEquals("ok", prefix.feed("ok<|i"));
        assertEquals("", prefix.feed("m_end|>"));
        assertEquals(Optional.of("<|im"), prefix.matchedStop());
    }

    @Test
    void withoutStopStringsEverythingPassesAtOnce() {
        StopStrings none = new StopStrings(List.of());
        assertEquals("any text </s>", none.feed("any text </s>"));
        assertEquals("", none.finish());
        assertFalse(none.stopped());
    }

    @Test
    void emptyStopStringsAreRejected() {
        EmberException e = assertThrows(EmberException.class, () -> new StopStrings(List.of("a", "")));
        assertTrue(e.getMessage().contains("non-empty"), e.getMessage());
    }

    /**
     * Random texts over a tiny alphabet, cut at random, against a plain character-by-character reference:
     * the emitted text is always a prefix of the final output (nothing emitted is ever taken back), what is
     * held back is exactly the longest tail that could start a stop, and the end result is the reference's.
     */
    @Test
    void streamingAgreesWithCharacterByCharacterMatchingForAnyCut() {
        SplittableRandom random = new SplittableRandom(12);
        for (int trial = 0; trial < 3000; trial++) {
            List<String> stopList = new ArrayList<>();
            for (int i = 1 + random.nextInt(3); i > 0; i--) {
                stopList.add(randomText(random, 1 + random.nextInt(4)));
            }
            String text = randomText(random, random.nextInt(40));
            Reference expected = Reference.of(text, stopList);

            StopStrings stops = new StopStrings(stopList);
            StringBuilder emitted = new StringBuilder();
            int consumed = 0;
            while (consumed < text.length() && !stops.stopped()) {
                int cut = Math.min(text.length(), consumed + 1 + random.nextInt(6));
                emitted.append(stops.feed(text.substring(consumed, cut)));
                consumed = cut;
                assertTrue(expected.output.startsWith(emitted.toString()), () -> stopList + " on " + text);
                if (!stops.stopped()) {
                    int held = consumed - emitted.length();
                    assertEquals(Reference.longestTailStartingAStop(text.substring(0, consumed), stopList), held,
                            () -> stopList + " holding back from " + text);
                }
            }
            emitted.append(stops.finish());
            assertEquals(expected.output, emitted.toString(), () -> stopList + " on " + text);
            assertEquals(Optional.ofNullable(expected.stop), stops.matchedStop(), () -> stopList + " on " + text);
        }
    }

    private static String randomText(SplittableRandom random, int length) {
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < length; i++) {
            text.append("abc".charAt(random.nextInt(3)));
        }
        return text.toString();
    }

    /** Grows the text one character at a time and stops at the first position where some stop ends. */
    private record Reference(String output, String stop) {
        static Reference of(String text, List<String> stops) {
            for (int end = 1; end <= text.length(); end++) {
                String prefix = text.substring(0, end);
                String longest = null;
                for (String stop : stops) {
                    if (prefix.endsWith(stop) && (longest == null || stop.length() > longest.length())) {
                        longest = stop;
                    }
                }
                if (longest != null) {
                    return new Reference(text.substring(0, end - longest.length()), longest);
                }
            }
            return new Reference(text, null);
        }

        static int longestTailStartingAStop(String text, List<String> stops) {
            int best = 0;
            for (String stop : stops) {
                for (int length = 1; length < stop.length() && length <= text.length(); length++) {
                    if (text.endsWith(stop.substring(0, length))) {
                        best = Math.max(best, length);
                    }
                }
            }
            return best;
        }
    }
}
