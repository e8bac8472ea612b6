package dev.ember;

/** Error measures shared by the numerical tests. */
public final class Numerics {
    private Numerics() {
    }

    /** ‖out − ref‖₂ / ‖ref‖₂ over {@code n} elements from the offsets; NaN or infinity in {@code out} gives +∞. */
    public static double relativeError(float[] out, int outOffset, double[] ref, int refOffset, int n) {
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < n; i++) {
            double o = out[outOffset + i];
            if (!Double.isFinite(o)) {
                return Double.POSITIVE_INFINITY;
            }
            double r = ref[refOffset + i];
            diff += (o - r) * (o - r);
            norm += r * r;
        }
        return Math.sqrt(diff / norm);
    }

    public static double relativeError(float[] out, double[] ref) {
        return relativeError(out, 0, ref, 0, ref.length);
    }

    public static int argmax(float[] x, int offset, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (x[offset + i] > x[offset + best]) {
                best = i;
            }
        }
        return best;
    }

    public static int argmax(double[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }
}
