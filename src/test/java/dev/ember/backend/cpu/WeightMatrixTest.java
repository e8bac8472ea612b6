package dev.ember.backend.cpu;

import dev.ember.model.DType;
import dev.ember.model.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

class WeightMatrixTest {
    private final Random random = new Random();

    /**
     * The matrix product of any row count (the weights widened in registers for one row, one or two weight rows a pass,
     * into a scratch row and two rows at a time for more) gives each row its one-row product: the same accumulation, so within the few ulps by
     * which the Vector API's lane reduction may differ (its order is the implementation's, interpreted or compiled);
     * depths that fill the vectors, leave a tail, or are shorter than one step.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F32"})
    void everyRowCountGivesTheBitsOfTheOneRowProduct(DType type) {
        try (Arena arena = Arena.ofConfined(); Parallel team = new Parallel()) {
            for (int k : new int[] {3, 64, 100, 1027}) {
                int n = 5;
                WeightMatrix w = WeightMatrix.of(matrix(arena, type, n, k), arena);
                for (int rows : new int[] {1, 2, 3, 4, 5, 9, 12}) {
                    float[] x = new float[rows * k];
                    for (int i = 0; i < x.length; i++) {
                        x[i] = (float) random.nextGaussian();
                    }
                    for (boolean rowPairs : new boolean[] {true, false}) {
                        float[] product = new float[rows * n];
                        CpuModelRunner.matmul(team, w, x, rows, product, rowPairs);
                        for (int t = 0; t < rows; t++) {
                            for (int j = 0; j < n; j++) {
                                float one = w.dotRow(j, x, t * k), ulps = 4 * Math.ulp(Math.abs(one) + (float) Math.sqrt(k));
                                String where = type + " k=" + k + " rows=" + rows + " row " + t + " column " + j + " pairs " + rowPairs;
                                assertEquals(one, product[t * n + j], ulps, where);
                            }
                        }
                    }
                }
            }
        }
    }

    private Tensor matrix(Arena arena, DType type, int rows, int cols) {
        MemorySegment data = arena.allocate((long) rows * cols * type.bytes(), 64);
        for (long i = 0; i < (long) rows * cols; i++) {
            float v = (float) random.nextGaussian();
            if (type == DType.BF16) {
                data.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) (Float.floatToRawIntBits(v) >>> 16));
            } else {
                data.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, v);
            }
        }
        return new Tensor("w", type, new long[] {rows, cols}, data);
    }
}
