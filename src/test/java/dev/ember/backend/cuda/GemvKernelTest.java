package dev.ember.backend.cuda;

import dev.ember.model.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.util.Locale;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The matrix-vector kernel (gemv.cu) against float64 products on fresh random operands, in every storage type, for
 * each row count it takes, each build the runner may choose (slices in flight, warps a column) and depths that do and
 * do not fill its unrolled steps; outputs poisoned before each run.
 */
class GemvKernelTest {
    private final Random random = new Random();

    /** Where nvcc built the kernels: every build the runner may choose is an entry point of gemv.fatbin, in every type. */
    @Test
    void everyCandidateIsInTheFatbin() throws IOException {
        String fatbin = DecodeAttentionLaunchTest.fatbinText("gemv.fatbin", "gemv_m1_bf16");
        for (MatrixProducts.Implementation i : MatrixProducts.Implementation.MATRIX_VECTOR) {
            for (int m = 1; m <= EmberKernels.GEMV_MAX_ROWS; m++) {
                for (DType type : DType.values()) {
                    for (DType outType : new DType[] {DType.F32, type}) {
                        String entry = EmberKernels.gemvKernel(m, outType, i.inFlight, i.warps) + "_" + type.name().toLowerCase(Locale.ROOT);
                        assertTrue(fatbin.contains(entry + "\0"), i + " m=" + m + " " + type + "->" + outType + ": no " + entry);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void matchesAFloat64Product(DType type) {
        Gpu.context();
        // Depths of fewer steps than warps a column (k = 8: one), and column counts that leave a block's last warps idle.
        int[][] shapes = {{1, 1000, 4096}, {2, 333, 1024}, {3, 517, 1000}, {5, 64, 2056}, {8, 2048, 512}, {8, 129, 8},
                {1, 77, 8200}, {4, 3, 14336}, {1, 1, 264}};
        for (int[] s : shapes) {
            int m = s[0], n = s[1], k = s[2];
            float[] x = Gpu.random(random, type, m * k, 1.0);
            float[] w = Gpu.random(random, type, n * k, 1.0 / Math.sqrt(k));
            double[] ref = Gpu.product(x, w, m, n, k);
            for (DType outType : type == DType.F32 ? new DType[] {DType.F32} : new DType[] {DType.F32, type}) {
                for (MatrixProducts.Implementation i : MatrixProducts.Implementation.MATRIX_VECTOR) {
                    try (DeviceBuffer dx = Gpu.upload(type, x); DeviceBuffer dw = Gpu.upload(type, w);
                         DeviceBuffer out = Gpu.poisoned(outType, (long) m * n)) {
                        Gpu.kernels().gemv(Gpu.stream(), type, dx.address(), dw.address(), out.address(), outType, m, n, k,
                                i.inFlight, i.warps);
                        Gpu.stream().synchronize();
                        Gpu.assertClose("gemv " + i + " " + type + "->" + outType + " m=" + m + " n=" + n + " k=" + k,
                                Gpu.download(out, outType, m * n), ref, outType == DType.F32 ? 1e-5 : Gpu.tolerance(outType));
                    }
                }
            }
        }
    }
}
