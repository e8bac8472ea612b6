package dev.ember.backend.cuda;

import dev.ember.model.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** cuBLASLt products {@code out = x · wᵀ} against float64, at decode-like and prefill-like shapes. */
class CublasLtTest {
    private final Random random = new Random();

    @ParameterizedTest
    @EnumSource(DType.class)
    void matmulMatchesFloat64(DType type) {
        Gpu.context();
        int[][] shapes = {{1, 384, 256}, {7, 1000, 320}, {64, 512, 1024}, {130, 96, 2048}};
        try (CublasLt blas = new CublasLt(); CudaStream stream = CudaStream.create()) {
            for (int[] s : shapes) {
                int m = s[0], n = s[1], k = s[2];
                float[] x = Gpu.random(random, type, m * k, 1.0);
                float[] w = Gpu.random(random, type, n * k, 1.0);
                double[] ref = Gpu.product(x, w, m, n, k);
                try (DeviceBuffer dx = Gpu.upload(type, x); DeviceBuffer dw = Gpu.upload(type, w);
                     DeviceBuffer out = Gpu.poisoned(DType.F32, (long) m * n)) {
                    blas.matmul(stream, type, dx.address(), dw.address(), out.address(), m, n, k);
                    blas.matmul(stream, type, dx.address(), dw.address(), out.address(), m, n, k);  // the cached plan
                    stream.synchronize();
                    // Operands are exact in their type and products accumulate in fp32: fp32 accuracy throughout.
                    Gpu.assertClose("cublasLt " + type + " m=" + m + " n=" + n + " k=" + k,
                            Gpu.download(out, DType.F32, m * n), ref, 1e-5);
                }
                try (DeviceBuffer dx = Gpu.upload(type, x); DeviceBuffer dw = Gpu.upload(type, w);
                     DeviceBuffer out = Gpu.poisoned(type, (long) m * n)) {
                    blas.matmul(stream, type, dx.address(), dw.address(), out.address(), type, m, n, k);
                    stream.synchronize();
                    Gpu.assertClose("cublasLt " + type + " m=" + m + " n=" + n + " k=" + k + " out " + type,
                            Gpu.download(out, type, m * n), ref, Gpu.tolerance(type));
                }
            }
            assertEquals(shapes.length * (type == DType.F32 ? 1 : 2), blas.cachedShapes());
        }
    }
}
