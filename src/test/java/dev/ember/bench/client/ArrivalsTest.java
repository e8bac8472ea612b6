package dev.ember.bench.client;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Arrival times: the configured mean rate, Poisson or gamma spread, all at once for inf, repeatable by seed. */
class ArrivalsTest {
    private static final int N = 40_000;

    /** Mean and coefficient of variation of the gaps between consecutive arrivals. */
    private static double[] gapMoments(double[] t) {
        double sum = 0;
        double sumSq = 0;
        for (int i = 1; i < t.length; i++) {
            double gap = t[i] - t[i - 1];
            assertTrue(gap >= 0);
            sum += gap;
            sumSq += gap * gap;
        }
        int n = t.length - 1;
        double mean = sum / n;
        double variance = sumSq / n - mean * mean;
        return new double[] {mean, Math.sqrt(variance) / mean};
    }

    @Test
    void poissonArrivalsWithAFixedSeedHaveTheRequestedRateAndExponentialGaps() {
        double[] t = Arrivals.times(N, 20, 1, 0);
        assertEquals(0, t[0]);
        double[] m = gapMoments(t);
        assertEquals(1 / 20.0, m[0], 0.02 / 20.0, "mean gap of a 20 req/s process");
        assertEquals(1.0, m[1], 0.03, "exponential gaps have a coefficient of variation of 1");
        assertEquals(20, (N - 1) / t[N - 1], 0.4, "arrivals per second over the run");
    }

    @Test
    void gammaArrivalsKeepTheRateAndSpreadAsTheirShapeSays() {
        for (double burstiness : new double[] {0.25, 4}) {
            double[] m = gapMoments(Arrivals.times(N, 5, burstiness, 7));
            assertEquals(0.2, m[0], 0.2 * 0.03, "mean gap at burstiness " + burstiness);
            assertEquals(1 / Math.sqrt(burstiness), m[1], 0.05 / Math.sqrt(burstiness), "CV at burstiness " + burstiness);
        }
    }

    @Test
    void anInfiniteRateSendsEverythingAtOnceAndASeedRepeats() {
        assertArrayEquals(new double[5], Arrivals.times(5, Double.POSITIVE_INFINITY, 1, 0));
        assertArrayEquals(Arrivals.times(100, 3, 0.5, 42), Arrivals.times(100, 3, 0.5, 42));
        assertFalse(java.util.Arrays.equals(Arrivals.times(100, 3, 0.5, 42), Arrivals.times(100, 3, 0.5, 43)));
    }
}
