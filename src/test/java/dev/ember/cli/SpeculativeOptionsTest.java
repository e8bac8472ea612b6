package dev.ember.cli;

import dev.ember.engine.Speculation;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The batch limit of speculation: the measured default, a given limit, and none for a benchmark told none. */
class SpeculativeOptionsTest {
    private static SpeculativeOptions ngram(Integer disableAbove) {
        SpeculativeOptions o = new SpeculativeOptions();
        o.method = "ngram";
        o.gamma = 3;
        o.lookupMin = 1;
        o.lookupMax = 4;
        o.disableAbove = disableAbove;
        return o;
    }

    private static int limit(SpeculativeOptions o) {
        // n-gram lookup loads no draft, so nothing of the target is needed to open it.
        try (Speculation s = o.open(null, null, null, null).orElseThrow()) {
            assertEquals(3, s.gamma());
            return s.disableAboveBatch();
        }
    }

    @Test
    void withoutTheOptionSpeculationStopsAboveTheMeasuredCrossover() {
        assertEquals(SpeculativeOptions.DEFAULT_DISABLE_ABOVE, limit(ngram(null)));
    }

    @Test
    void aGivenLimitIsKeptEverywhere() {
        assertEquals(8, limit(ngram(8)));
        assertEquals(8, limit(ngram(8).unlimitedUnlessGiven()));
        assertEquals(8, limit(ngram(8).orDefault("self:2")));
    }

    @Test
    void aBenchmarkToldNoLimitSpeculatesAtEveryBatch() {
        assertEquals(Integer.MAX_VALUE, limit(ngram(null).unlimitedUnlessGiven()));
    }
}
