package dev.ember.sampling;

import org.junit.jupiter.api.Test;

import java.util.BitSet;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** bad_words: a sequence's last token is masked exactly where the output's last tokens are the ones before it. */
class BadWordsTest {

    @Test
    void aSequencesLastTokenIsMaskedWhereItsStartWasJustWritten() {
        OutputGrammar.Matcher matcher = new BadWords(List.of(new int[] {5, 6, 7}, new int[] {9}), 12).start();
        BitSet allowed = new BitSet();
        matcher.allowedTokens(allowed);
        assertFalse(allowed.get(9), "a one-token word is always masked");
        assertTrue(allowed.get(7) && allowed.get(5));
        assertEquals(11, allowed.cardinality());
        matcher.accept(5);
        matcher.accept(6);
        matcher.allowedTokens(allowed);
        assertFalse(allowed.get(7), "5 6 then 7 would complete the word");
        matcher.accept(8);
        matcher.allowedTokens(allowed);
        assertTrue(allowed.get(7), "5 6 8: no longer");
        matcher.accept(5);
        matcher.accept(6);
        matcher.accept(6);
        matcher.allowedTokens(allowed);
        assertTrue(allowed.get(7), "6 6 is not 5 6");
        assertThrows(IllegalArgumentException.class, () -> new BadWords(List.of(new int[0]), 12));
    }
}
