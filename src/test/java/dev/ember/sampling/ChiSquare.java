package dev.ember.sampling;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Pearson's chi-square test of draws against the distribution they should follow, at a fixed significance. */
public final class ChiSquare {
    private ChiSquare() {
    }

    /** Chi-square quantiles at p = 0.001 for 1..9 degrees of freedom. */
    private static final double[] CRITICAL = {10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88};

    /**
     * Pearson's test over groups of tokens of about a tenth of the mass each (most likely tokens first, each group
     * closed once it reaches a tenth; a last group expecting fewer than 5 draws joins the one before): returns the
     * statistic over its 0.001 critical value, so a pass is below 1.
     */
    public static double overCritical(double[] p, int[] counts, int n) {
        Integer[] order = new Integer[p.length];
        for (int i = 0; i < p.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Double.compare(p[b], p[a]));
        List<double[]> bins = new java.util.ArrayList<>();  // {expected, observed}
        double[] open = {0, 0};
        for (int i : order) {
            open[0] += p[i] * n;
            open[1] += counts[i];
            if (open[0] >= 0.1 * n) {
                bins.add(open);
                open = new double[] {0, 0};
            }
        }
        if (open[0] >= 5 || bins.isEmpty()) {
            bins.add(open);
        } else {
            bins.getLast()[0] += open[0];
            bins.getLast()[1] += open[1];
        }
        assertTrue(bins.size() >= 3, "the distribution is too peaked to test: " + bins.size() + " groups");
        double chi = 0;
        for (double[] b : bins) {
            chi += (b[1] - b[0]) * (b[1] - b[0]) / b[0];
        }
        return chi / CRITICAL[Math.min(bins.size() - 1, CRITICAL.length) - 1];
    }
}
