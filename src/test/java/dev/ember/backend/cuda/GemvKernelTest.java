package dev.ember.backend.cuda;

import dev.ember.model.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.util.Locale;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
                        for (EmberKernels.GemvInput input : EmberKernels.GemvInput.values()) {
                            if (input == EmberKernels.GemvInput.GATE && outType != DType.F32) {
                                continue;  // the down projection adds into the fp32 residual: no rounded GATE build
                            }
                            String entry = EmberKernels.gemvKernel(m, outType, i.inFlight, i.warps, input) + "_"
                                    + type.name().toLowerCase(Locale.ROOT);
                            assertTrue(fatbin.contains(entry + "\0"), i + " m=" + m + " " + type + "->" + outType + ": no " + entry);
                        }
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
                                i.inFlight, i.warps, false);
                        Gpu.stream().synchronize();
                        Gpu.assertClose("gemv " + i + " " + type + "->" + outType + " m=" + m + " n=" + n + " k=" + k,
                                Gpu.download(out, outType, m * n), ref, outType == DType.F32 ? 1e-5 : Gpu.tolerance(outType));
                    }
                }
            }
            // Accumulating into fp32 values already there, as an output projection adds into the residual stream.
            float[] residual = Gpu.random(random, DType.F32, m * n, 1.0);
            double[] sum = new double[m * n];
            for (int j = 0; j < sum.length; j++) {
                sum[j] = residual[j] + ref[j];
            }
            for (MatrixProducts.Implementation i : MatrixProducts.Implementation.MATRIX_VECTOR) {
                try (DeviceBuffer dx = Gpu.upload(type, x); DeviceBuffer dw = Gpu.upload(type, w);
                     DeviceBuffer out = Gpu.upload(DType.F32, residual)) {
                    Gpu.kernels().gemv(Gpu.stream(), type, dx.address(), dw.address(), out.address(), DType.F32, m, n, k,
                            i.inFlight, i.warps, true);
                    Gpu.stream().synchronize();
                    Gpu.assertClose("gemv accumulating " + i + " " + type + " m=" + m + " n=" + n + " k=" + k,
                            Gpu.download(out, DType.F32, m * n), sum, 1e-5);
                }
            }
        }
    }

    /**
     * The NORM builds: the product of rmsnorm(residual) * weight, normalised by each block, against the norm in float64
     * (rounded to the storage type, as the kernel rounds it) times w; and bit for bit against rmsnorm followed by the
     * plain build where both sum the squares in one order (k = 4096, rmsnorm's block of 256 threads). Column counts
     * past what the GPU holds at once make each block loop over several groups.
     */
    @ParameterizedTest
    @EnumSource(DType.class)
    void normedProductMatchesTheNormThenTheProduct(DType type) {
        Gpu.context();
        int[][] shapes = {{1, 1000, 4096}, {3, 517, 1000}, {8, 129, 4096}, {5, 64, 2056}, {2, 40000, 4096}, {1, 7, 8}};
        float eps = 1e-5f;
        for (int[] s : shapes) {
            int m = s[0], n = s[1], k = s[2];
            float[] residual = Gpu.random(random, DType.F32, m * k, 3.0);
            float[] weight = Gpu.random(random, DType.F32, k, 1.0);
            double[] exact = Gpu.rmsNorm(residual, weight, m, k, eps);
            float[] normed = new float[m * k];
            for (int j = 0; j < normed.length; j++) {
                normed[j] = Gpu.round(type, (float) exact[j]);
            }
            float[] w = Gpu.random(random, type, n * k, 1.0 / Math.sqrt(k));
            double[] ref = Gpu.product(normed, w, m, n, k);
            for (DType outType : type == DType.F32 ? new DType[] {DType.F32} : new DType[] {DType.F32, type}) {
                for (MatrixProducts.Implementation i : MatrixProducts.Implementation.MATRIX_VECTOR) {
                    String what = "normed gemv " + i + " " + type + "->" + outType + " m=" + m + " n=" + n + " k=" + k;
                    try (DeviceBuffer dr = Gpu.upload(DType.F32, residual); DeviceBuffer dn = Gpu.upload(DType.F32, weight);
                         DeviceBuffer dw = Gpu.upload(type, w); DeviceBuffer out = Gpu.poisoned(outType, (long) m * n);
                         DeviceBuffer twoKernels = Gpu.poisoned(outType, (long) m * n);
                         DeviceBuffer normedRows = Gpu.poisoned(type, (long) m * k)) {
                        Gpu.kernels().gemvNormed(Gpu.stream(), type, dr.address(), dn.address(), eps, dw.address(), out.address(),
                                outType, m, n, k, i.inFlight, i.warps);
                        Gpu.kernels().rmsNorm(Gpu.stream(), type, dr.address(), dn.address(), normedRows.address(), 0, m, k, eps);
                        Gpu.kernels().gemv(Gpu.stream(), type, normedRows.address(), dw.address(), twoKernels.address(), outType,
                                m, n, k, i.inFlight, i.warps, false);
                        Gpu.stream().synchronize();
                        float[] fused = Gpu.download(out, outType, m * n);
                        // A sum of squares one ulp apart may round an element of the norm the other way: bf16's tolerance.
                        Gpu.assertClose(what, fused, ref, outType == DType.F32 && type == DType.F32 ? 1e-5 : Gpu.tolerance(DType.BF16));
                        if (k == 4096) {
                            assertArrayEquals(Gpu.download(twoKernels, outType, m * n), fused, what + ": not rmsnorm's bits");
                        }
                    }
                }
            }
        }
    }

    /**
     * The GATE builds: the down projection of silu(gate) * up, gated by each block, against the gate in float64 (rounded
     * to the storage type, as the kernel rounds it) times w; and bit for bit against silu_mul followed by the plain build,
     * whose arithmetic they share, plain and adding into a residual. Depths include the 8B shape's 14336 at four rows
     * (where its 16-bit rows fit one block's shared memory) and column counts that make each block loop over groups.
     */
    @ParameterizedTest
    @EnumSource(DType.class)
    void gatedProductMatchesSiluMulThenTheProduct(DType type) {
        Gpu.context();
        EmberKernels kernels = Gpu.kernels();
        int[][] shapes = {{1, 1000, 4096}, {3, 517, 1000}, {8, 129, 3072}, {5, 64, 2056}, {2, 40000, 1024}, {4, 300, 14336},
                {1, 7, 8}};
        for (int[] s : shapes) {
            int m = s[0], n = s[1], k = s[2];
            if (!kernels.gemvStagedFits(type, m, k)) {
                continue;
            }
            float[] gateUp = Gpu.random(random, type, m * 2 * k, 4.0);
            float[] gated = new float[m * k];
            for (int r = 0; r < m; r++) {
                for (int c = 0; c < k; c++) {
                    double g = gateUp[r * 2 * k + c], u = gateUp[r * 2 * k + k + c];
                    gated[r * k + c] = Gpu.round(type, (float) (g / (1 + Math.exp(-g)) * u));
                }
            }
            float[] w = Gpu.random(random, type, n * k, 1.0 / Math.sqrt(k));
            double[] ref = Gpu.product(gated, w, m, n, k);
            float[] residual = Gpu.random(random, DType.F32, m * n, 1.0);
            for (MatrixProducts.Implementation i : MatrixProducts.Implementation.MATRIX_VECTOR) {
                String what = "gated gemv " + i + " " + type + " m=" + m + " n=" + n + " k=" + k;
                try (DeviceBuffer dg = Gpu.upload(type, gateUp); DeviceBuffer dw = Gpu.upload(type, w);
                     DeviceBuffer out = Gpu.poisoned(DType.F32, (long) m * n);
                     DeviceBuffer twoKernels = Gpu.poisoned(DType.F32, (long) m * n);
                     DeviceBuffer gatedRows = Gpu.poisoned(type, (long) m * k);
                     DeviceBuffer added = Gpu.upload(DType.F32, residual); DeviceBuffer addedTwoKernels = Gpu.upload(DType.F32, residual)) {
                    kernels.gemvGated(Gpu.stream(), type, dg.address(), dw.address(), out.address(), m, n, k, i.inFlight, i.warps,
                            false);
                    kernels.gemvGated(Gpu.stream(), type, dg.address(), dw.address(), added.address(), m, n, k, i.inFlight,
                            i.warps, true);
                    kernels.siluMul(Gpu.stream(), type, dg.address(), gatedRows.address(), m, k);
                    kernels.gemv(Gpu.stream(), type, gatedRows.address(), dw.address(), twoKernels.address(), DType.F32, m, n, k,
                            i.inFlight, i.warps, false);
                    kernels.gemv(Gpu.stream(), type, gatedRows.address(), dw.address(), addedTwoKernels.address(), DType.F32, m, n,
                            k, i.inFlight, i.warps, true);
                    Gpu.stream().synchronize();
                    float[] fused = Gpu.download(out, DType.F32, m * n);
                    // Java's exp and the GPU's expf may round a gated element the other way: the storage type's tolerance.
                    Gpu.assertClose(what, fused, ref, type == DType.F32 ? 1e-5 : Gpu.tolerance(type));
                    assertArrayEquals(Gpu.download(twoKernels, DType.F32, m * n), fused, what + ": not silu_mul's bits");
                    assertArrayEquals(Gpu.download(addedTwoKernels, DType.F32, m * n), Gpu.download(added, DType.F32, m * n),
                            what + " accumulating: not silu_mul's bits");
                }
            }
        }
    }

    @Test
    void rowsTooLargeForSharedMemoryAreRefused() {
        Gpu.context();
        EmberKernels kernels = Gpu.kernels();
        assertFalse(kernels.gemvStagedFits(DType.F32, 8, 16384));
        assertTrue(kernels.gemvStagedFits(DType.BF16, 8, 4096));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> kernels.gemvNormed(Gpu.stream(), DType.F32,
                256, 256, 1e-5f, 256, 256, DType.F32, 8, 16, 16384, 4, 1));
        assertTrue(e.getMessage().contains("shared memory"), e.getMessage());
        // 8 rows of 16384 in bf16 are 256 KiB; 8 rows of 14336 (224 KiB) fit sm_90's 227 KiB
        e = assertThrows(IllegalArgumentException.class, () -> kernels.gemvGated(Gpu.stream(), DType.BF16, 256, 256, 256, 8, 16,
                16384, 4, 1, true));
        assertTrue(e.getMessage().contains("gated rows") && e.getMessage().contains("shared memory"), e.getMessage());
    }
}
