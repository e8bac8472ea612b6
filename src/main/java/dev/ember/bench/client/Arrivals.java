package dev.ember.bench.client;

import java.util.SplittableRandom;

/**
 * When each request arrives, in seconds from the start: all at once for an infinite rate, otherwise the first at
 * once and then gaps drawn
 * from a gamma distribution of mean {@code 1 / rate} and shape {@code burstiness} (vLLM's arrival process):
 * burstiness 1 is a Poisson process (exponential gaps), below 1 burstier, above 1 more regular.
 */
public final class Arrivals {
    private Arrivals() {
    }

    /** Arrival times of {@code count} requests, seconds from the start, the same for the same seed. */
    public static double[] times(int count, double requestRate, double burstiness, long seed) {
        if (!(requestRate > 0) || !(burstiness > 0) || Double.isInfinite(burstiness)) {
            throw new IllegalArgumentException("request rate " + requestRate + " and burstiness " + burstiness + " must be positive");
        }
        double[] times = new double[count];
        if (Double.isInfinite(requestRate)) {
            return times;
        }
        SplittableRandom random = new SplittableRandom(seed);
        double scale = 1.0 / (requestRate * burstiness);
        double t = 0;
        for (int i = 0; i < count; i++) {
            times[i] = t;
            t += gamma(random, burstiness) * scale;
        }
        return times;
    }

    /**
     * A gamma variate of shape {@code k} and scale 1: Marsaglia and Tsang's method, with the boost
     * {@code U^(1/k)} for shapes below 1.
     */
    static double gamma(SplittableRandom random, double k) {
        if (k < 1) {
            return gamma(random, k + 1) * Math.pow(random.nextDouble(), 1 / k);
        }
        double d = k - 1.0 / 3;
        double c = 1 / Math.sqrt(9 * d);
        while (true) {
            double x;
            double v;
            do {
                x = random.nextGaussian();
                v = 1 + c * x;
            } while (v <= 0);
            v = v * v * v;
            double u = random.nextDouble();
            if (u < 1 - 0.0331 * x * x * x * x || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) {
                return d * v;
            }
        }
    }
}
