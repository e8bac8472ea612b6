package dev.ember.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class StatsTest {
    @Test
    void statsGiveTheMedianAndSpread() {
        Stats s = Stats.of(5, 1, 3, 2, 4);
        assertEquals(3, s.median());
        assertEquals(1, s.min());
        assertEquals(5, s.max());
        assertEquals(2.5, Stats.of(1, 2, 3, 4).median());
        assertEquals(4.6, Stats.quantile(new double[]{1, 2, 3, 4, 5}, 0.9), 1e-12);
    }
}
