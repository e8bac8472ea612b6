package dev.ember.backend.cpu;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

class VectorOpsTest {
    private final Random random = new Random();

    /**
     * Rows taken two at a time give each row its own dot product (the same accumulation, so within the few ulps by
     * which the Vector API's lane reduction may differ), at depths that fill the vectors, that leave a tail and that
     * are shorter than one step, for odd and even row counts.
     */
    @Test
    void dotRowsGivesEachRowItsOwnDotProduct() {
        for (int n : new int[] {1, 7, 64, 100, 1027, 4096}) {
            for (int rows : new int[] {1, 2, 3, 4, 5, 8, 11}) {
                float[] w = randoms(n), x = randoms(rows * n);
                int stride = 3, offset = 2;
                float[] out = new float[rows * stride + offset];
                VectorOps.dotRows(w, x, rows, n, out, stride, offset);
                for (int t = 0; t < rows; t++) {
                    float expected = VectorOps.dot(w, 0, x, t * n, n);
                    assertEquals(expected, out[t * stride + offset], 4 * Math.ulp(Math.abs(expected) + (float) Math.sqrt(n)),
                            "n=" + n + " rows=" + rows + " row " + t);
                }
            }
        }
    }

    private float[] randoms(int n) {
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = (float) random.nextGaussian();
        }
        return values;
    }
}
