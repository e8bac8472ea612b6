package dev.ember.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Vector API kernels over f32 arrays: the per-row arithmetic of the forward pass. */
final class VectorOps {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    private VectorOps() {
    }

    static float dot(float[] a, int aOffset, float[] b, int bOffset, int n) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int i = 0;
        int step = 2 * F.length();
        for (int upper = n - n % step; i < upper; i += step) {
            acc0 = FloatVector.fromArray(F, a, aOffset + i).fma(FloatVector.fromArray(F, b, bOffset + i), acc0);
            acc1 = FloatVector.fromArray(F, a, aOffset + i + F.length())
                    .fma(FloatVector.fromArray(F, b, bOffset + i + F.length()), acc1);
        }
        float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            sum += a[aOffset + i] * b[bOffset + i];
        }
        return sum;
    }

    /**
     * {@code out[t * outStride + outOffset] = dot(w, x[t * n ..])} for {@code rows} rows of x, two at a time: each load
     * of w serves two rows' products (four at a time measured no faster), each row's accumulated as {@link #dot}
     * accumulates it.
     */
    static void dotRows(float[] w, float[] x, int rows, int n, float[] out, int outStride, int outOffset) {
        int t = 0;
        int step = 2 * F.length(), upper = n - n % step;
        for (; t + 2 <= rows; t += 2) {
            int x0 = t * n, x1 = x0 + n;
            FloatVector a00 = FloatVector.zero(F), a01 = FloatVector.zero(F), a10 = FloatVector.zero(F), a11 = FloatVector.zero(F);
            for (int i = 0; i < upper; i += step) {
                FloatVector w0 = FloatVector.fromArray(F, w, i), w1 = FloatVector.fromArray(F, w, i + F.length());
                a00 = w0.fma(FloatVector.fromArray(F, x, x0 + i), a00);
                a01 = w1.fma(FloatVector.fromArray(F, x, x0 + i + F.length()), a01);
                a10 = w0.fma(FloatVector.fromArray(F, x, x1 + i), a10);
                a11 = w1.fma(FloatVector.fromArray(F, x, x1 + i + F.length()), a11);
            }
            out[t * outStride + outOffset] = finish(a00, a01, w, 0, x, x0, upper, n);
            out[(t + 1) * outStride + outOffset] = finish(a10, a11, w, 0, x, x1, upper, n);
        }
        if (t < rows) {
            out[t * outStride + outOffset] = dot(w, 0, x, t * n, n);
        }
    }

    /**
     * {@link #dotRows} for two weight rows at once, {@code w[0, n)} and {@code w[n, 2n)}, into output columns
     * {@code outOffset} and {@code outOffset + 1}: each load of x serves both weight rows and each load of w two input
     * rows, eight products for eight loads where one weight row makes four for six. Each product accumulated as
     * {@link #dot} accumulates it.
     */
    static void dotRowsPair(float[] w, float[] x, int rows, int n, float[] out, int outStride, int outOffset) {
        int t = 0;
        int step = 2 * F.length(), upper = n - n % step, half = F.length();
        for (; t + 2 <= rows; t += 2) {
            int x0 = t * n, x1 = x0 + n;
            FloatVector p00 = FloatVector.zero(F), p01 = FloatVector.zero(F), p10 = FloatVector.zero(F), p11 = FloatVector.zero(F);
            FloatVector q00 = FloatVector.zero(F), q01 = FloatVector.zero(F), q10 = FloatVector.zero(F), q11 = FloatVector.zero(F);
            for (int i = 0; i < upper; i += step) {
                FloatVector v0 = FloatVector.fromArray(F, w, i), v1 = FloatVector.fromArray(F, w, i + half);
                FloatVector u0 = FloatVector.fromArray(F, w, n + i), u1 = FloatVector.fromArray(F, w, n + i + half);
                FloatVector y0 = FloatVector.fromArray(F, x, x0 + i), y1 = FloatVector.fromArray(F, x, x0 + i + half);
                FloatVector z0 = FloatVector.fromArray(F, x, x1 + i), z1 = FloatVector.fromArray(F, x, x1 + i + half);
                p00 = v0.fma(y0, p00);
                p01 = v1.fma(y1, p01);
                p10 = v0.fma(z0, p10);
                p11 = v1.fma(z1, p11);
                q00 = u0.fma(y0, q00);
                q01 = u1.fma(y1, q01);
                q10 = u0.fma(z0, q10);
                q11 = u1.fma(z1, q11);
            }
            out[t * outStride + outOffset] = finish(p00, p01, w, 0, x, x0, upper, n);
            out[(t + 1) * outStride + outOffset] = finish(p10, p11, w, 0, x, x1, upper, n);
            out[t * outStride + outOffset + 1] = finish(q00, q01, w, n, x, x0, upper, n);
            out[(t + 1) * outStride + outOffset + 1] = finish(q10, q11, w, n, x, x1, upper, n);
        }
        if (t < rows) {
            out[t * outStride + outOffset] = dot(w, 0, x, t * n, n);
            out[t * outStride + outOffset + 1] = dot(w, n, x, t * n, n);
        }
    }

    /** {@link #dot}'s last steps: its two accumulators added and reduced, then the elements past the vectors. */
    private static float finish(FloatVector acc0, FloatVector acc1, float[] w, int wOffset, float[] x, int xOffset, int from,
                                int n) {
        float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (int i = from; i < n; i++) {
            sum += w[wOffset + i] * x[xOffset + i];
        }
        return sum;
    }

    /** {@code a[aOffset ..] += b[bOffset ..]} over n elements. */
    static void add(float[] a, int aOffset, float[] b, int bOffset, int n) {
        int i = 0;
        for (int upper = F.loopBound(n); i < upper; i += F.length()) {
            FloatVector.fromArray(F, a, aOffset + i).add(FloatVector.fromArray(F, b, bOffset + i)).intoArray(a, aOffset + i);
        }
        for (; i < n; i++) {
            a[aOffset + i] += b[bOffset + i];
        }
    }

    /**
     * RMSNorm as HF computes it: {@code out = weight * x / sqrt(mean(x^2) + eps)}, the mean in f32 over n elements.
     * {@code weight} holds n elements starting at 0.
     */
    static void rmsNorm(float[] x, int xOffset, float[] weight, float eps, float[] out, int outOffset, int n) {
        FloatVector ss = FloatVector.zero(F);
        int i = 0;
        for (int upper = F.loopBound(n); i < upper; i += F.length()) {
            FloatVector v = FloatVector.fromArray(F, x, xOffset + i);
            ss = v.fma(v, ss);
        }
        float sumSquares = ss.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            sumSquares += x[xOffset + i] * x[xOffset + i];
        }
        float inv = (float) (1.0 / Math.sqrt(sumSquares / n + eps));
        FloatVector scale = FloatVector.broadcast(F, inv);
        i = 0;
        for (int upper = F.loopBound(n); i < upper; i += F.length()) {
            FloatVector.fromArray(F, x, xOffset + i).mul(scale).mul(FloatVector.fromArray(F, weight, i)).intoArray(out, outOffset + i);
        }
        for (; i < n; i++) {
            out[outOffset + i] = weight[i] * (x[xOffset + i] * inv);
        }
    }

    /** SwiGLU's gate: {@code gate[i] = silu(gate[i]) * up[i]}, with silu(x) = x / (1 + e^-x). */
    static void siluMul(float[] gate, float[] up, int offset, int n) {
        for (int i = offset; i < offset + n; i++) {
            float g = gate[i];
            gate[i] = g / (1f + (float) Math.exp(-g)) * up[i];
        }
    }
}
