package dev.ember.backend.cuda;

import dev.ember.model.DType;
import dev.ember.model.RopeScaling;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The per-token kernels against float64 references, in every storage type. */
class ElementwiseKernelsTest {
    private final Random random = new Random();


    @ParameterizedTest
    @EnumSource(DType.class)
    void embeddingGatherCopiesTheTokensRows(DType type) {
        Gpu.context();
        int vocab = 1000, hidden = 96, rows = 13;
        float[] table = Gpu.random(random, type, vocab * hidden, 1.0);
        int[] tokens = random.ints(rows, 0, vocab).toArray();
        double[] ref = new double[rows * hidden];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < hidden; i++) {
                ref[r * hidden + i] = table[tokens[r] * hidden + i];
            }
        }
        try (DeviceBuffer t = Gpu.upload(type, table); DeviceBuffer tok = Gpu.uploadInts(tokens);
             DeviceBuffer out = Gpu.poisoned(DType.F32, (long) rows * hidden)) {
            Gpu.kernels().embeddingGather(Gpu.stream(), type, t.address(), tok.address(), out.address(), rows, hidden);
            Gpu.stream().synchronize();
            Gpu.assertClose("embedding_gather " + type, Gpu.download(out, DType.F32, rows * hidden), ref, 1e-7);
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void rmsNormNormalisesEachRow(DType type) {
        checkRmsNorm(type, 5, 1000);    // float4s, the last warp partly idle
        checkRmsNorm(type, 37, 4096);   // the 8B shape: 256 threads of 4 float4s each
        checkRmsNorm(type, 3, 1002);    // not a multiple of 4: element by element
        checkRmsNorm(type, 2, 20000);   // wider than the 16 * 1024 elements a block keeps in registers
        checkRmsNorm(type, 2, 16999);   // the same element by element
    }

    private void checkRmsNorm(DType type, int rows, int hidden) {
        Gpu.context();
        float eps = 1e-5f;
        float[] x = Gpu.random(random, DType.F32, rows * hidden, 2.0);
        float[] weight = new float[hidden];
        for (int i = 0; i < hidden; i++) {
            weight[i] = (float) (1 + 0.4 * (random.nextDouble() - 0.5));
        }
        double[] normed = Gpu.rmsNorm(x, weight, rows, hidden, eps);
        try (DeviceBuffer dx = Gpu.upload(DType.F32, x); DeviceBuffer dw = Gpu.upload(DType.F32, weight);
             DeviceBuffer out = Gpu.poisoned(type, (long) rows * hidden)) {
            Gpu.kernels().rmsNorm(Gpu.stream(), type, dx.address(), dw.address(), out.address(), 0, rows, hidden, eps);
            Gpu.stream().synchronize();
            Gpu.assertClose("rmsnorm " + type + " hidden=" + hidden, Gpu.download(out, type, rows * hidden), normed,
                    Gpu.tolerance(type));
        }
        // The final norm: only some rows, gathered, with the residual left as it was.
        int[] pick = {rows - 1, 0, rows / 2};
        double[] picked = new double[pick.length * hidden];
        for (int r = 0; r < pick.length; r++) {
            System.arraycopy(normed, pick[r] * hidden, picked, r * hidden, hidden);
        }
        try (DeviceBuffer dx = Gpu.upload(DType.F32, x); DeviceBuffer dw = Gpu.upload(DType.F32, weight);
             DeviceBuffer index = Gpu.uploadInts(pick); DeviceBuffer out = Gpu.poisoned(type, (long) pick.length * hidden)) {
            Gpu.kernels().rmsNorm(Gpu.stream(), type, dx.address(), dw.address(), out.address(), index.address(), pick.length,
                    hidden, eps);
            Gpu.stream().synchronize();
            Gpu.assertClose("rmsnorm " + type + " hidden=" + hidden + " gathered rows", Gpu.download(out, type, pick.length * hidden),
                    picked, Gpu.tolerance(type));
            float[] after = Gpu.download(dx, DType.F32, rows * hidden);
            for (int i = 0; i < x.length; i++) {
                assertTrue(after[i] == x[i], "residual changed at " + i);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void fillUniformIsUniformAndReproducible(DType type) {
        Gpu.context();
        int n = 1 << 20;
        float center = 1f, halfWidth = 0.25f;
        long seed = random.nextLong();
        try (DeviceBuffer a = Gpu.poisoned(type, n); DeviceBuffer b = Gpu.poisoned(type, n); DeviceBuffer c = Gpu.poisoned(type, n)) {
            Gpu.kernels().fillUniform(Gpu.stream(), type, a.address(), n, center, halfWidth, seed);
            Gpu.kernels().fillUniform(Gpu.stream(), type, b.address(), n, center, halfWidth, seed);
            Gpu.kernels().fillUniform(Gpu.stream(), type, c.address(), n, center, halfWidth, seed + 1);
            Gpu.stream().synchronize();
            float[] x = Gpu.download(a, type, n), same = Gpu.download(b, type, n), other = Gpu.download(c, type, n);
            double sum = 0, squares = 0;
            int equalToOther = 0;
            for (int i = 0; i < n; i++) {
                assertTrue(x[i] >= center - halfWidth && x[i] <= center + halfWidth, "value " + x[i] + " at " + i);
                assertTrue(x[i] == same[i], "the same seed gave another value at " + i);
                equalToOther += x[i] == other[i] ? 1 : 0;
                sum += x[i] - center;
                squares += (x[i] - center) * (x[i] - center);
            }
            double mean = sum / n, variance = squares / n - mean * mean, expected = halfWidth * halfWidth / 3;
            System.out.printf("[gpu-check] fill_uniform %-4s mean %+.2e, variance %.4e (uniform: %.4e), %d of %d equal for another seed%n",
                    type, mean, variance, expected, equalToOther, n);
            // Five standard errors: sd of the mean is halfWidth/sqrt(3n); of the variance about 0.9*expected/sqrt(n).
            assertTrue(Math.abs(mean) < 5 * halfWidth / Math.sqrt(3.0 * n), "mean " + mean);
            assertTrue(Math.abs(variance - expected) < 5 * 0.9 * expected / Math.sqrt(n) + 2e-4 * expected, "variance " + variance);
            assertTrue(equalToOther < n / 50, equalToOther + " values equal for different seeds");
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void addBiasAddsEachColumnsBiasToEveryRow(DType type) {
        checkAddBias(type, 1, 256);      // one block, every thread a column
        checkAddBias(type, 7, 1000);     // the last block partly idle
        checkAddBias(type, 70_000, 3);   // more rows than the grid's y holds: rows past it loop
    }

    private void checkAddBias(DType type, int rows, int cols) {
        Gpu.context();
        float[] x = Gpu.random(random, type, rows * cols, 2.0);
        float[] bias = Gpu.random(random, DType.F32, cols, 0.5);
        double[] ref = new double[rows * cols];
        for (int i = 0; i < ref.length; i++) {
            ref[i] = (double) x[i] + bias[i % cols];
        }
        try (DeviceBuffer xs = Gpu.upload(type, x); DeviceBuffer b = Gpu.upload(DType.F32, bias)) {
            Gpu.kernels().addBias(Gpu.stream(), type, xs.address(), b.address(), rows, cols);
            Gpu.stream().synchronize();
            Gpu.assertClose("add_bias " + type + " " + rows + "x" + cols, Gpu.download(xs, type, rows * cols), ref,
                    Gpu.tolerance(type));
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void siluMulGatesTheUpProjection(DType type) {
        checkSiluMul(type, 3, 1000);    // rows of 16-byte vectors, one block per row partly idle
        checkSiluMul(type, 3, 1001);    // element by element, two blocks per row
        checkSiluMul(type, 37, 14336);  // the 8B shape: several blocks per row, the last half idle
        checkSiluMul(type, 5, 4104);    // a row ending inside a block's second vector per thread
    }

    private void checkSiluMul(DType type, int rows, int ff) {
        Gpu.context();
        float[] gateUp = Gpu.random(random, type, rows * 2 * ff, 4.0);
        double[] ref = new double[rows * ff];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < ff; c++) {
                double g = gateUp[r * 2 * ff + c], u = gateUp[r * 2 * ff + ff + c];
                ref[r * ff + c] = g / (1 + Math.exp(-g)) * u;
            }
        }
        try (DeviceBuffer in = Gpu.upload(type, gateUp); DeviceBuffer out = Gpu.poisoned(type, (long) rows * ff)) {
            Gpu.kernels().siluMul(Gpu.stream(), type, in.address(), out.address(), rows, ff);
            Gpu.stream().synchronize();
            Gpu.assertClose("silu_mul " + type + " ff=" + ff, Gpu.download(out, type, rows * ff), ref, Gpu.tolerance(type));
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void qkvRopeRotatesAndFillsTheCacheSlots(DType type) {
        for (DType qkvType : type == DType.F32 ? List.of(DType.F32) : List.of(DType.F32, type)) {
            for (boolean qwen : new boolean[] {false, true}) {
                // Head dimensions 64, 128 and 256 take the vectorised way (4 to 32 threads a head), 96 the one of a
                // block per head; 12/3 heads span several blocks of a row, the last one partly idle.
                checkQkvRope(type, qkvType, 64, 4, 2, qwen, !qwen);
                checkQkvRope(type, qkvType, 128, 4, 2, qwen, !qwen);
                checkQkvRope(type, qkvType, 128, 12, 3, qwen, !qwen);
                checkQkvRope(type, qkvType, 256, 12, 3, qwen, !qwen);
                checkQkvRope(type, qkvType, 96, 4, 2, qwen, !qwen);
            }
        }
    }

    /**
     * Qwen3 style: q/k norms, no bias; or Qwen2 style: bias, no norms; always llama3-scaled frequencies. The product
     * comes in {@code qkvType}: fp32 (decode steps) or the storage type (prefill steps, qkv_rope_rounded).
     */
    private void checkQkvRope(DType type, DType qkvType, int hd, int heads, int kvHeads, boolean qkNorm, boolean bias) {
        Gpu.context();
        int rows = 6, slots = 64, half = hd / 2;
        int qd = heads * hd, kvd = kvHeads * hd, width = qd + 2 * kvd;
        float eps = 1e-6f;
        AttentionShape shape = new AttentionShape(heads, kvHeads, hd, 16, 0);
        float[] qkv = Gpu.random(random, qkvType, rows * width, 2.0);
        float[] b = bias ? Gpu.random(random, DType.F32, width, 0.3) : null;
        float[] qn = qkNorm ? Gpu.random(random, DType.F32, hd, 1.5) : null;
        float[] kn = qkNorm ? Gpu.random(random, DType.F32, hd, 1.5) : null;
        double[] inv = new RopeScaling.Llama3(8, 1, 4, 8192).inverseFrequencies(hd, 500000);
        float[] invF = new float[half];
        for (int i = 0; i < half; i++) {
            invF[i] = (float) inv[i];
        }
        int[] positions = random.ints(rows, 0, 10000).toArray();
        List<Integer> all = new ArrayList<>();
        for (int s = 0; s < slots; s++) {
            all.add(s);
        }
        Collections.shuffle(all, random);
        int[] slotOf = all.subList(0, rows).stream().mapToInt(Integer::intValue).toArray();

        double[] qRef = new double[rows * qd];
        double[] kRef = new double[slots * kvd];
        double[] vRef = new double[slots * kvd];
        for (int r = 0; r < rows; r++) {
            for (int h = 0; h < heads + kvHeads; h++) {
                boolean isQ = h < heads;
                int col = isQ ? h * hd : qd + (h - heads) * hd;
                double[] x = new double[hd];
                double squares = 0;
                for (int d = 0; d < hd; d++) {
                    x[d] = (double) qkv[r * width + col + d] + (bias ? b[col + d] : 0);
                    squares += x[d] * x[d];
                }
                float[] norm = isQ ? qn : kn;
                if (norm != null) {
                    double s = 1 / Math.sqrt(squares / hd + eps);
                    for (int d = 0; d < hd; d++) {
                        x[d] = x[d] * s * norm[d];
                    }
                }
                for (int i = 0; i < half; i++) {
                    double angle = invF[i] * (float) positions[r];  // formed in fp32, as HF and the kernel do
                    double c = Math.cos(angle), s = Math.sin(angle);
                    double y0 = x[i] * c - x[i + half] * s, y1 = x[i + half] * c + x[i] * s;
                    if (isQ) {
                        qRef[r * qd + h * hd + i] = y0;
                        qRef[r * qd + h * hd + i + half] = y1;
                    } else {
                        int at = slotOf[r] * kvd + (h - heads) * hd;
                        kRef[at + i] = y0;
                        kRef[at + i + half] = y1;
                    }
                }
                if (!isQ) {
                    int vCol = qd + kvd + (h - heads) * hd;
                    for (int d = 0; d < hd; d++) {
                        vRef[slotOf[r] * kvd + (h - heads) * hd + d] = (double) qkv[r * width + vCol + d] + (bias ? b[vCol + d] : 0);
                    }
                }
            }
        }
        try (DeviceBuffer dq = Gpu.upload(qkvType, qkv); DeviceBuffer db = bias ? Gpu.upload(DType.F32, b) : null;
             DeviceBuffer dqn = qkNorm ? Gpu.upload(DType.F32, qn) : null; DeviceBuffer dkn = qkNorm ? Gpu.upload(DType.F32, kn) : null;
             DeviceBuffer di = Gpu.upload(DType.F32, invF); DeviceBuffer dp = Gpu.uploadInts(positions);
             DeviceBuffer ds = Gpu.uploadInts(slotOf); DeviceBuffer q = Gpu.poisoned(type, (long) rows * qd);
             DeviceBuffer k = Gpu.poisoned(type, (long) slots * kvd); DeviceBuffer v = Gpu.poisoned(type, (long) slots * kvd)) {
            Gpu.kernels().qkvRope(Gpu.stream(), type, dq.address(), qkvType, bias ? db.address() : 0, qkNorm ? dqn.address() : 0,
                    qkNorm ? dkn.address() : 0, di.address(), dp.address(), ds.address(), q.address(), k.address(), v.address(),
                    rows, shape, eps);
            Gpu.stream().synchronize();
            String what = "qkv_rope " + type + " (q/k/v in " + qkvType + ") hd=" + hd + " " + heads + "/" + kvHeads + " heads" + (qkNorm ? " q/k norm" : "") + (bias ? " bias" : "");
            Gpu.assertClose(what + " q", Gpu.download(q, type, rows * qd), qRef, Gpu.tolerance(type));
            float[] kOut = Gpu.download(k, type, slots * kvd);
            float[] vOut = Gpu.download(v, type, slots * kvd);
            List<Integer> written = all.subList(0, rows);
            float[] kWritten = new float[rows * kvd], vWritten = new float[rows * kvd];
            double[] kExpected = new double[rows * kvd], vExpected = new double[rows * kvd];
            for (int s = 0; s < slots; s++) {
                int r = written.indexOf(s);
                for (int e = 0; e < kvd; e++) {
                    int at = (int) PagedKv.offset(s, shape.blockSize(), kvHeads, e / hd, hd, type.bytes(), e % hd);
                    if (r < 0) {
                        assertTrue(Float.isNaN(kOut[at]) && Float.isNaN(vOut[at]), "slot " + s + " was not this step's, yet was written");
                    } else {
                        kWritten[r * kvd + e] = kOut[at];
                        vWritten[r * kvd + e] = vOut[at];
                        kExpected[r * kvd + e] = kRef[s * kvd + e];
                        vExpected[r * kvd + e] = vRef[s * kvd + e];
                    }
                }
            }
            Gpu.assertClose(what + " k cache", kWritten, kExpected, Gpu.tolerance(type));
            Gpu.assertClose(what + " v cache", vWritten, vExpected, Gpu.tolerance(type));
        }
    }
}
