package dev.ember.cli;

import java.util.Arrays;

/**
 * Summary of repeated measurements: benchmarks quote the median, with the min and max as the spread.
 *
 * @param count how many samples
 */
public record Stats(int count, double median, double min, double max, double mean) {

    public static Stats of(double... samples) {
        if (samples.length == 0) {
            return new Stats(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
        }
        double[] s = samples.clone();
        Arrays.sort(s);
        int n = s.length;
        double median = n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
        return new Stats(n, median, s[0], s[n - 1], Arrays.stream(s).sum() / n);
    }

    /** The q-quantile (0..1) of {@code samples}, interpolated linearly between order statistics. */
    public static double quantile(double[] samples, double q) {
        if (samples.length == 0) {
            return Double.NaN;
        }
        double[] s = samples.clone();
        Arrays.sort(s);
        double position = q * (s.length - 1);
        int below = (int) Math.floor(position);
        int above = Math.min(below + 1, s.length - 1);
        return s[below] + (position - below) * (s[above] - s[below]);
    }
}
