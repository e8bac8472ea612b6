package dev.ember.backend.cuda;

import dev.ember.model.DType;
import dev.ember.sampling.SamplingParams;
import dev.ember.sampling.TokenLogprobs;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Greedy and top-k/top-p choice, a grammar's mask, and the logprobs of a chosen token, on the GPU against the host's
 * references.
 */
class SamplingKernelsTest {
    private final Random random = new Random();


    private float[] logits(int rows, int vocab) {
        float[] x = new float[rows * vocab];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (3 * random.nextGaussian());
        }
        return x;
    }

    /**
     * mask_logits: in the rows whose parameters name a mask, exactly the tokens the mask leaves out become -inf (masks
     * packed in whole 64-bit words of random bits, those past the vocabulary too); other rows untouched.
     */
    @ParameterizedTest
    @ValueSource(ints = {151_936, 1_027, 64, 63, 5})
    void maskLogitsSetsTheTokensAMaskLeavesOutToMinusInfinity(int vocab) {
        Gpu.context();
        int rows = 5, words = StepLayout.maskInts(vocab);
        float[] x = logits(rows, vocab);
        int[] params = new int[StepLayout.SAMPLE_PARAMS * rows];
        int[] named = {1, -1, 0, -1, 2};  // rows 0, 2 and 4 masked, by masks 1, 0 and 2
        int[] masks = new int[3 * words];
        for (int i = 0; i < masks.length; i++) {
            masks[i] = random.nextInt();
        }
        for (int r = 0; r < rows; r++) {
            params[StepLayout.SAMPLE_PARAMS * r + 6] = named[r];
        }
        try (DeviceBuffer dx = Gpu.upload(DType.F32, x); DeviceBuffer dp = Gpu.uploadInts(params);
             DeviceBuffer dm = Gpu.uploadInts(masks)) {
            Gpu.kernels().maskLogits(Gpu.stream(), dx.address(), dp.address(), dm.address(), rows, vocab);
            Gpu.stream().synchronize();
            float[] got = Gpu.download(dx, DType.F32, rows * vocab);
            int out = 0;
            for (int r = 0; r < rows; r++) {
                for (int t = 0; t < vocab; t++) {
                    boolean kept = named[r] < 0 || (masks[named[r] * words + t / 32] >>> (t % 32) & 1) == 1;
                    float expected = kept ? x[r * vocab + t] : Float.NEGATIVE_INFINITY;
                    assertEquals(expected, got[r * vocab + t], "vocab " + vocab + " row " + r + " token " + t);
                    out += kept ? 0 : 1;
                }
            }
            assertTrue(out > 0, "some tokens were masked out");
        }
    }

    /**
     * Vocabularies whose rows start off 16 bytes (not a multiple of 4: a head and a tail of single floats around the
     * 16-byte loads), tiny ones (all head), and ties placed in the head, the body and the tail of a row.
     */
    @ParameterizedTest
    @ValueSource(ints = {151_936, 128_256, 32_003, 6_145, 1_027, 5, 2})
    void argmaxPicksTheLargestLogitAndTheLowestIndexOnTies(int vocab) {
        Gpu.context();
        int rows = 6;
        float[] x = logits(rows, vocab);
        // Rows 3-5: the maximum appears twice; the lower index must win, wherever the two fall in the row.
        int[][] ties = {{vocab - 1, 0}, {vocab / 2, vocab - 1}, {1, vocab / 3 + 1}};
        for (int t = 0; t < ties.length; t++) {
            x[(3 + t) * vocab + ties[t][0]] = 100f;
            x[(3 + t) * vocab + ties[t][1]] = 100f;
        }
        int[] expected = new int[rows];
        for (int r = 0; r < rows; r++) {
            expected[r] = dev.ember.Numerics.argmax(x, r * vocab, vocab);
        }
        try (DeviceBuffer dx = Gpu.upload(DType.F32, x); DeviceBuffer out = Gpu.uploadInts(new int[rows])) {
            Gpu.kernels().argmax(Gpu.stream(), dx.address(), out.address(), rows, vocab);
            Gpu.stream().synchronize();
            int[] got = Gpu.downloadInts(out, rows);
            System.out.println("[gpu-check] argmax_f32 vocab=" + vocab + ": " + Arrays.toString(got));
            for (int t = 0; t < ties.length; t++) {
                assertEquals(Math.min(ties[t][0], ties[t][1]), got[3 + t], "the lower of two tied indices");
            }
            assertTrue(Arrays.equals(expected, got), "argmax " + Arrays.toString(got) + " != " + Arrays.toString(expected));
        }
    }

    /**
     * token_logprobs against {@link TokenLogprobs#of} (what the host sampler records) on random rows: K of 0, 1, 5 and 20,
     * a row with K = -1 the kernel must leave alone, ties among the top (the lower id first, as the host orders them; one
     * row has more tied values than K), a vocabulary smaller than K (its missing ids -1) and rows that start off 16 bytes.
     * The ids match exactly (both read one total order); the logprobs within 1e-5 of their size (at least 1): fp32 sums
     * on the device, a float64 sum on the host.
     */
    @ParameterizedTest
    @ValueSource(ints = {151_936, 128_256, 32_003, 1_027, 5})
    void tokenLogprobsMatchTheHostsReading(int vocab) {
        Gpu.context();
        int stride = SamplingParams.MAX_LOGPROBS, unwritten = 0x7f7f7f7f;
        int[] ks = {0, 1, 5, 20, -1, 20, 5};
        int rows = ks.length;
        float[] x = logits(rows, vocab);
        // Row 2: two equal maxima at the row's ends and three equal seconds; row 3: a three-way tie at the top;
        // row 5: 30 equal values above the rest, more than its K.
        int[][] tied = {{2, vocab - 1, 20}, {2, 0, 20}, {2, vocab / 2, 19}, {2, 3, 19}, {2, vocab / 3, 19},
                {3, 7 % vocab, 15}, {3, vocab - 2, 15}, {3, 1, 15}};  // {row, id, value}: distinct ids even for vocab 5
        for (int[] t : tied) {
            x[t[0] * vocab + t[1]] = t[2];
        }
        for (int i = 0; i < 30; i++) {
            x[5 * vocab + (int) ((long) i * 7919 % vocab)] = 12f;
        }
        int[] params = new int[StepLayout.SAMPLE_PARAMS * rows];
        int[] sampled = new int[rows];
        for (int r = 0; r < rows; r++) {
            params[StepLayout.SAMPLE_PARAMS * r + 5] = ks[r];
            sampled[r] = random.nextInt(vocab);  // any chosen token: its own logprob is read whatever its rank
        }
        int[] marks = new int[rows * stride];
        Arrays.fill(marks, unwritten);
        try (DeviceBuffer dx = Gpu.upload(DType.F32, x); DeviceBuffer dp = Gpu.uploadInts(params);
             DeviceBuffer ds = Gpu.uploadInts(sampled); DeviceBuffer logprob = Gpu.uploadInts(Arrays.copyOf(marks, rows));
             DeviceBuffer ids = Gpu.uploadInts(marks); DeviceBuffer logprobs = Gpu.uploadInts(marks)) {
            Gpu.kernels().tokenLogprobs(Gpu.stream(), dx.address(), dp.address(), ds.address(), logprob.address(), ids.address(),
                    logprobs.address(), rows, vocab, stride);
            Gpu.stream().synchronize();
            float[] gotLogprob = Gpu.download(logprob, DType.F32, rows);
            int[] gotIds = Gpu.downloadInts(ids, rows * stride);
            float[] gotLogprobs = Gpu.download(logprobs, DType.F32, rows * stride);
            double worst = 0;
            for (int r = 0; r < rows; r++) {
                String where = "vocab " + vocab + " row " + r + " K " + ks[r];
                if (ks[r] < 0) {
                    assertEquals(unwritten, Float.floatToRawIntBits(gotLogprob[r]), where + ": not asked, not written");
                    for (int j = 0; j < stride; j++) {
                        assertEquals(unwritten, gotIds[r * stride + j], where);
                    }
                    continue;
                }
                TokenLogprobs expected = TokenLogprobs.of(x, r * vocab, vocab, sampled[r], ks[r]);
                worst = Math.max(worst, assertLogprob(expected.logprob(), gotLogprob[r], where + " token " + sampled[r]));
                int[] topIds = expected.topTokens();
                float[] topLogprobs = expected.topLogprobs();
                for (int j = 0; j < stride; j++) {
                    int id = gotIds[r * stride + j];
                    if (j < topIds.length) {
                        assertEquals(topIds[j], id, where + " pick " + j);
                        worst = Math.max(worst, assertLogprob(topLogprobs[j], gotLogprobs[r * stride + j], where + " pick " + j));
                    } else {
                        assertEquals(j < ks[r] ? -1 : unwritten, id, where + " slot " + j + ": -1 past the vocabulary, untouched past K");
                    }
                }
            }
            System.out.printf("[gpu-check] token_logprobs vocab=%d K 0-20: ids equal TokenLogprobs.of's, logprobs within %.2e%n",
                    vocab, worst);
        }
    }

    /** Asserts |got - expected| <= 1e-5 * max(1, |expected|); returns that relative error. */
    private static double assertLogprob(float expected, float got, String where) {
        double error = Math.abs((double) got - expected) / Math.max(1, Math.abs(expected));
        assertTrue(error <= 1e-5, where + ": logprob " + got + ", the host reads " + expected);
        return error;
    }

    /**
     * Rows of every kind: temperature alone (one pass over the row; at vocabularies whose rows start on 16 bytes it
     * reads them in 16-byte loads, otherwise in single floats; one row begins with masked logits, -inf, one ends with
     * them; draws at 0 and at the last float below 1), with top-k, with top-p, with both; the last two rows must reduce
     * to greedy.
     */
    @ParameterizedTest
    @ValueSource(ints = {151_936, 32_000, 32_003, 1_000, 7})
    void topKTopPSamplesFromTheTruncatedDistribution(int vocab) {
        Gpu.context();
        // temperature, top-k, top-p per row; the last rows must reduce to greedy.
        float[] temperature = {1.0f, 0.7f, 1.3f, 1.0f, 0.5f, 1.0f, 2.0f, 1.0f, 1.0f, 0.8f, 0.6f, 1.7f, 0.6f, 1.0f, 0.6f, 1.0f, 1.0f, 1.0f};
        int[] topK = {0, 50, 0, 20, 0, 1000, 5, 0, 40, 0, 0, 0, 0, 0, 0, 0, 1, 0};
        float[] topP = {1.0f, 1.0f, 0.9f, 0.5f, 0.95f, 0.8f, 1.0f, 0.3f, 0.7f, 0.99f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1e-6f};
        int rows = temperature.length, masked = 12;
        float[] x = logits(rows, vocab);
        Arrays.fill(x, masked * vocab, masked * vocab + vocab / 2, Float.NEGATIVE_INFINITY);
        float[] uniform = new float[rows];
        for (int r = 0; r < rows; r++) {
            uniform[r] = random.nextFloat();
        }
        // Temperature alone at the ends of the draw: the first token with weight, and the mass's last ulp.
        uniform[13] = 0f;
        uniform[14] = Math.nextDown(1f);
        uniform[15] = Math.nextDown(1f);
        Arrays.fill(x, 15 * vocab + vocab / 3, 16 * vocab, Float.NEGATIVE_INFINITY);  // its last tokens masked
        try (DeviceBuffer dx = Gpu.upload(DType.F32, x); DeviceBuffer t = Gpu.upload(DType.F32, temperature);
             DeviceBuffer k = Gpu.uploadInts(topK); DeviceBuffer p = Gpu.upload(DType.F32, topP);
             DeviceBuffer u = Gpu.upload(DType.F32, uniform); DeviceBuffer out = Gpu.uploadInts(new int[rows])) {
            Gpu.kernels().sampleTopKTopP(Gpu.stream(), dx.address(), t.address(), k.address(), p.address(), u.address(), out.address(), rows, vocab);
            Gpu.stream().synchronize();
            int[] got = Gpu.downloadInts(out, rows);
            for (int r = 0; r < rows; r++) {
                checkDraw(Arrays.copyOfRange(x, r * vocab, (r + 1) * vocab), temperature[r], topK[r], topP[r], uniform[r], got[r]);
            }
            System.out.println("[gpu-check] sample_top_k_top_p vocab=" + vocab + " " + rows + " rows: every draw matches the "
                    + "float64 inverse CDF");
            assertTrue(got[masked] >= vocab / 2, "a masked token was drawn: " + got[masked]);
            assertEquals(dev.ember.Numerics.argmax(x, (rows - 2) * vocab, vocab), got[rows - 2], "top-k 1 is greedy");
            assertEquals(dev.ember.Numerics.argmax(x, (rows - 1) * vocab, vocab), got[rows - 1], "a tiny top-p is greedy");
        }
    }

    /**
     * The reference applies temperature, then top-k (ties at the k-th value kept), then top-p (smallest prefix
     * of the sorted kept tokens reaching p of their mass), then inverts the kept mass's CDF in vocabulary order
     * at {@code u}. The GPU's choice must be kept and sit where the CDF crosses u (within fp32 rounding).
     */
    private static void checkDraw(float[] x, float temperature, int k, float p, float u, int token) {
        int vocab = x.length;
        double max = Double.NEGATIVE_INFINITY;
        for (float v : x) {
            max = Math.max(max, v);
        }
        boolean[] kept = new boolean[vocab];
        float[] sorted = x.clone();
        Arrays.sort(sorted);
        float kth = k > 0 && k < vocab ? sorted[vocab - k] : Float.NEGATIVE_INFINITY;
        double[] w = new double[vocab];
        double total = 0;
        for (int i = 0; i < vocab; i++) {
            kept[i] = x[i] >= kth;
            w[i] = kept[i] ? Math.exp((x[i] - max) / temperature) : 0;
            total += w[i];
        }
        if (p < 1) {
            Integer[] byWeight = new Integer[vocab];
            for (int i = 0; i < vocab; i++) {
                byWeight[i] = i;
            }
            Arrays.sort(byWeight, (a, b) -> Double.compare(w[b], w[a]));
            double before = 0;
            for (int i : byWeight) {
                if (before >= p * total) {
                    kept[i] = false;
                }
                before += w[i];
            }
        }
        double keptTotal = 0;
        for (int i = 0; i < vocab; i++) {
            keptTotal += kept[i] ? w[i] : 0;
        }
        assertTrue(token >= 0 && token < vocab && kept[token], "token " + token + " is outside the kept set");
        double before = 0;
        for (int i = 0; i < token; i++) {
            before += kept[i] ? w[i] : 0;
        }
        double target = u * keptTotal, slack = 1e-5 * keptTotal;
        assertTrue(before <= target + slack && before + w[token] >= target - slack,
                "token " + token + " covers mass [" + before + ", " + (before + w[token]) + ") but the draw is at " + target);
    }
}
