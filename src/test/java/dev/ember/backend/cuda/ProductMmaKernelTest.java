package dev.ember.backend.cuda;

import dev.ember.model.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.util.Locale;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The tensor-core product (product.cu) against float64 products on fresh random operands, in both 16-bit types, both
 * output types and every width of a block, with k whole in each block and split, at row counts that fill its chunks
 * of 64 rows and that leave them partly empty, column counts that leave a block's last columns idle and depths that
 * end inside a tile; outputs poisoned before each run.
 */
class ProductMmaKernelTest {
    private final Random random = new Random();

    /** Where nvcc built the kernels: every build MatrixProducts may choose is an entry point of product.fatbin. */
    @Test
    void everyBuildIsInTheFatbin() throws IOException {
        String fatbin = DecodeAttentionLaunchTest.fatbinText("product.fatbin", "product_mma_c1_n64_bf16");
        for (MatrixProducts.Implementation i : MatrixProducts.Implementation.TENSOR_CORE) {
            for (int m : new int[] {1, 64, 65, 128, 129, EmberKernels.PRODUCT_MMA_MAX_ROWS}) {
                for (DType type : new DType[] {DType.BF16, DType.F16}) {
                    for (DType outType : new DType[] {DType.F32, type}) {
                        String entry = EmberKernels.productMmaKernel(m, outType, i.columns) + "_" + type.name().toLowerCase(Locale.ROOT);
                        assertTrue(fatbin.contains(entry + "\0"), i + " m=" + m + " " + type + "->" + outType + ": no " + entry);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F16"})
    void matchesAFloat64Product(DType type) {
        Gpu.context();
        assumeTrue(Gpu.kernels().productMmaSupports(type, 64, 64, 32), "product_mma runs on sm_80 and later");
        // m, n, k: one row; a chunk and a part of the next; full chunks of 64 and 256 rows; 8B and Qwen3-0.6B depths;
        // a depth that ends inside a tile of 64; column counts not a multiple of a block's.
        int[][] shapes = {{1, 17, 8}, {9, 1000, 1024}, {16, 4096, 1024}, {33, 64, 72}, {64, 333, 2056}, {65, 130, 512},
                {128, 64, 4096}, {200, 1027, 264}, {256, 96, 3072}, {256, 1024, 2048}, {64, 1024, 3072}};
        for (int[] s : shapes) {
            int m = s[0], n = s[1], k = s[2];
            float[] x = Gpu.random(random, type, m * k, 1.0);
            float[] w = Gpu.random(random, type, n * k, 1.0 / Math.sqrt(k));
            double[] ref = Gpu.product(x, w, m, n, k);
            for (DType outType : new DType[] {DType.F32, type}) {
                for (MatrixProducts.Implementation i : MatrixProducts.Implementation.TENSOR_CORE) {
                    // k whole in each block, and split where the columns leave multiprocessors idle (the sums added by
                    // product_reduce).
                    for (long room : new long[] {0, MatrixProducts.PARTIAL_BYTES}) {
                        try (DeviceBuffer dx = Gpu.upload(type, x); DeviceBuffer dw = Gpu.upload(type, w);
                             DeviceBuffer out = Gpu.poisoned(outType, (long) m * n);
                             DeviceBuffer partial = DeviceBuffer.allocate(Math.max(room, 16))) {
                            Gpu.kernels().productMma(Gpu.stream(), type, dx.address(), dw.address(), out.address(), outType, m,
                                    n, k, i.columns, partial.address(), room);
                            Gpu.stream().synchronize();
                            int splits = Gpu.kernels().productMmaSplits(m, n, k, i.columns, room);
                            Gpu.assertClose("product_mma " + i + " " + type + "->" + outType + " m=" + m + " n=" + n + " k=" + k
                                    + " in " + splits + " splits of k", Gpu.download(out, outType, m * n), ref,
                                    outType == DType.F32 ? 1e-5 : Gpu.tolerance(outType));
                        }
                    }
                }
            }
        }
        System.out.println("[gpu-check] product_mma matches float64 products (bf16 and f16, 1-256 rows, 128, 64 and 32 columns a block)");
    }
}
