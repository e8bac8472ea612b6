package dev.ember.backend.cuda;

import dev.ember.model.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * mlp.cu, a layer's MLP in one cooperative launch, against the matrix-vector kernel's two builds it is made of, on fresh
 * random operands. Its kernel runs only with EMBER_MLP_KERNEL=1 until it has been measured on a GPU: a grid-wide
 * barrier that did not hold would trap and end the test JVM's context.
 */
class MlpKernelTest {
    private final Random random = new Random();

    /**
     * mlp.cu (a layer's MLP in one cooperative launch, a grid-wide barrier between its two products) bit for bit
     * against the NORM build into the rounded gate/up rows and then the GATE build adding into the residual, with the
     * same build, on either grid; with {@code projection}, the attention's output projection first (a barrier after it:
     * every column of the residual added to before any block normalises it) against the plain build adding into the
     * residual before the two. Twice in a row on one barrier word, as a step's layers use it. The 8B shape's widths at
     * one row; column counts past what the GPU holds make blocks loop in every phase; projection depths equal to the
     * hidden size and not (Qwen3's q heads are wider than its hidden size). Only the 16-bit types have mlp builds.
     */
    @ParameterizedTest
    @CsvSource({"BF16, false", "F16, false", "BF16, true", "F16, true"})
    void mlpMatchesTheBuildsItIsMadeOf(DType type, boolean projection) {
        Gpu.context();
        assumeTrue(MatrixProducts.MLP_KERNEL, "EMBER_MLP_KERNEL=1 runs the mlp kernel (off until measured)");
        EmberKernels kernels = Gpu.kernels();
        // m, h, the projection's depth, ff
        int[][] shapes = {{1, 256, 256, 768}, {3, 1024, 2048, 3072}, {5, 512, 256, 768}, {8, 128, 384, 384}, {2, 520, 520, 1000},
                {1, 4096, 4096, 14336}};
        float eps = 1e-5f;
        try (DeviceBuffer barrier = DeviceBuffer.allocate(16)) {
            barrier.fill32Async(0, 4, 0, Gpu.stream());
            for (int[] s : shapes) {
                int m = s[0], h = s[1], qDim = s[2], ff = s[3];
                assertTrue(kernels.mlpFits(type, m, projection ? qDim : 0, h, ff), "mlp takes " + type + " m=" + m + " h=" + h + " ff=" + ff);
                float[] residual = Gpu.random(random, DType.F32, m * h, 3.0);
                float[] attention = Gpu.random(random, type, m * qDim, 1.0);
                float[] norm = Gpu.random(random, DType.F32, h, 1.0);
                float[] wO = Gpu.random(random, type, h * qDim, 1.0 / Math.sqrt(qDim));
                float[] wGateUp = Gpu.random(random, type, 2 * ff * h, 1.0 / Math.sqrt(h));
                float[] wDown = Gpu.random(random, type, h * ff, 1.0 / Math.sqrt(ff));
                for (MatrixProducts.MlpBuild build : MatrixProducts.MlpBuild.all()) {
                    MatrixProducts.Implementation i = build.implementation();
                    String what = build + (projection ? " with o" : "") + " " + type + " m=" + m + " h=" + h
                            + (projection ? " qDim=" + qDim : "") + " ff=" + ff;
                    try (DeviceBuffer fusedX = Gpu.upload(DType.F32, residual); DeviceBuffer apartX = Gpu.upload(DType.F32, residual);
                         DeviceBuffer da = Gpu.upload(type, attention); DeviceBuffer dwo = Gpu.upload(type, wO);
                         DeviceBuffer dn = Gpu.upload(DType.F32, norm); DeviceBuffer dgu = Gpu.upload(type, wGateUp);
                         DeviceBuffer dd = Gpu.upload(type, wDown); DeviceBuffer fusedGateUp = Gpu.poisoned(type, 2L * m * ff);
                         DeviceBuffer apartGateUp = Gpu.poisoned(type, 2L * m * ff)) {
                        for (int layer = 0; layer < 2; layer++) {
                            kernels.mlp(Gpu.stream(), type, da.address(), projection ? dwo.address() : 0, qDim, fusedX.address(),
                                    dn.address(), eps, dgu.address(), fusedGateUp.address(), dd.address(), barrier.address(), m, h,
                                    ff, i.inFlight, i.warps, build.narrowGrid());
                            if (projection) {
                                kernels.gemv(Gpu.stream(), type, da.address(), dwo.address(), apartX.address(), DType.F32, m, h,
                                        qDim, i.inFlight, i.warps, true);
                            }
                            kernels.gemvNormed(Gpu.stream(), type, apartX.address(), dn.address(), eps, dgu.address(),
                                    apartGateUp.address(), type, m, 2 * ff, h, i.inFlight, i.warps);
                            kernels.gemvGated(Gpu.stream(), type, apartGateUp.address(), dd.address(), apartX.address(), m, h, ff,
                                    i.inFlight, i.warps, true);
                        }
                        Gpu.stream().synchronize();
                        float[] fused = Gpu.download(fusedX, DType.F32, m * h);
                        assertArrayEquals(Gpu.download(apartGateUp, type, 2 * m * ff), Gpu.download(fusedGateUp, type, 2 * m * ff),
                                what + ": gate/up rows not the NORM build's");
                        assertArrayEquals(Gpu.download(apartX, DType.F32, m * h), fused, what + ": residual not the builds'");
                        boolean changed = false;
                        for (int j = 0; j < fused.length; j++) {
                            changed |= fused[j] != residual[j];
                        }
                        assertTrue(changed, what + ": the residual was not added to");
                    }
                }
            }
        }
    }

    @Test
    void shapesItDoesNotBuildAreRefused() {
        Gpu.context();
        EmberKernels kernels = Gpu.kernels();
        assertFalse(kernels.mlpFits(DType.BF16, 8, 0, 4096, 16384), "eight rows of 16384 (256 KiB): wider than shared memory");
        assertFalse(kernels.mlpFits(DType.BF16, 16, 0, 256, 768), "sixteen rows: no build");
        assertFalse(kernels.mlpFits(DType.F32, 1, 0, 256, 768), "fp32: no build");
        assertTrue(kernels.mlpFits(DType.BF16, 1, 0, 4096, 14336));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> kernels.mlp(Gpu.stream(), DType.BF16,
                0, 0, 0, 256, 256, 1e-5f, 256, 256, 256, 256, 8, 4096, 16384, 4, 1, false));
        assertTrue(e.getMessage().contains("mlp") && e.getMessage().contains("shared memory"), e.getMessage());
    }
}
