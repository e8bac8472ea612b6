package dev.ember.sampling;

import dev.ember.EmberException;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.*;

class SamplerTest {
    /** Standard-normal quantile for a one-sided 1e-6 tail: a correct sampler fails a chi-square check once in a million seeds. */
    private static final double Z_ONE_IN_A_MILLION = 4.7534;

    private static final SamplingParams SAMPLE = SamplingParams.greedy(16).withTemperature(1f).withSeed(42);

    /** Logit-like values: normal with a spread of {@code scale}, never exactly zero. */
    private static float[] randomLogits(SplittableRandom random, int vocab, double scale) {
        float[] logits = new float[vocab];
        for (int i = 0; i < vocab; i++) {
            logits[i] = (float) (random.nextGaussian() * scale + 0.25);
        }
        return logits;
    }

    private static int argmaxLowestId(float[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] > values[best]) {
                best = i;
            }
        }
        return best;
    }

    @Test
    void greedyTakesTheArgmaxAndTheLowestIdOnATie() {
        SplittableRandom random = new SplittableRandom(1);
        int vocab = 5000;
        for (int trial = 0; trial < 20; trial++) {
            float[] logits = randomLogits(random, vocab, 4);
            float top = logits[argmaxLowestId(logits)] + 1.5f;
            int[] tied = random.ints(3, 0, vocab).sorted().toArray();
            for (int id : tied) {
                logits[id] = top;
            }
            assertEquals(tied[0], new Sampler(SamplingParams.greedy(1), vocab).sample(logits, 0));
        }
    }

    @Test
    void samplesOneRowOfABatchWithoutTouchingTheOthers() {
        SplittableRandom random = new SplittableRandom(2);
        int vocab = 3000;
        float[] batch = randomLogits(random, 3 * vocab, 3);
        float[] before = batch.clone();
        float[] middle = Arrays.copyOfRange(batch, vocab, 2 * vocab);
        int[] history = random.ints(40, 0, vocab).toArray();
        Sampler sampler = new Sampler(SamplingParams.greedy(1).withRepetitionPenalty(1.7f), vocab);
        sampler.observe(history);

        int token = sampler.sample(batch, vocab);

        float[] expected = HfReference.penalise(middle, history, 1.7f);
        assertEquals(argmaxLowestId(expected), token);
        assertArrayEquals(expected, Arrays.copyOfRange(batch, vocab, 2 * vocab), "the penalised row, in place");
        assertArrayEquals(Arrays.copyOfRange(before, 0, vocab), Arrays.copyOfRange(batch, 0, vocab));
        assertArrayEquals(Arrays.copyOfRange(before, 2 * vocab, 3 * vocab), Arrays.copyOfRange(batch, 2 * vocab, 3 * vocab));
    }

    @Test
    void repetitionPenaltyMatchesHfFormulaForPositiveAndNegativeLogitsAndRepeats() {
        SplittableRandom random = new SplittableRandom(3);
        int vocab = 2000;
        for (float penalty : new float[]{1.3f, 0.6f, 2.5f}) {
            float[] logits = randomLogits(random, vocab, 2);
            // Repeats on purpose: HF penalises a token once however often it was seen.
            int[] history = random.ints(300, 0, 150).toArray();
            Sampler sampler = new Sampler(SamplingParams.greedy(1).withRepetitionPenalty(penalty), vocab);
            for (int id : history) {
                sampler.observe(id);
            }
            float[] row = logits.clone();
            int token = sampler.sample(row, 0);
            float[] expected = HfReference.penalise(logits, history, penalty);
            assertArrayEquals(expected, row);
            assertEquals(argmaxLowestId(expected), token);
            assertTrue(IntStream.of(history).anyMatch(id -> row[id] != logits[id]), "the penalty changed something");
        }
    }

    @Test
    void greedyPenaltyTurnsTheArgmaxAway() {
        float[] logits = {0.5f, 3.0f, 2.9f, -1.0f};
        Sampler sampler = new Sampler(SamplingParams.greedy(1).withRepetitionPenalty(1.2f), logits.length);
        assertEquals(1, sampler.sample(logits.clone(), 0));
        sampler.observe(1); // 3.0 / 1.2 = 2.5 < 2.9
        assertEquals(2, sampler.sample(logits.clone(), 0));
    }

    /** The filters' exact output on real vocabulary sizes, against the plain transcription of HF. */
    @Test
    void distributionMatchesHfProcessorsOnALargeVocabulary() {
        SplittableRandom random = new SplittableRandom(4);
        int vocab = 32_000;
        float[] logits = randomLogits(random, vocab, 3);
        int[] history = random.ints(200, 0, vocab).toArray();
        SamplingParams[] settings = {
                SAMPLE.withTemperature(0.7f),
                SAMPLE.withTopK(1),
                SAMPLE.withTopK(50).withTemperature(0.8f),
                SAMPLE.withTopK(5000).withTopP(0.8f),
                SAMPLE.withTopP(0.9f),
                SAMPLE.withTopP(0.37f).withTemperature(1.6f),
                SAMPLE.withTopP(0.999f).withTemperature(0.5f),
                SAMPLE.withMinP(0.05f),
                SAMPLE.withTopK(200).withTopP(0.95f).withMinP(0.1f).withRepetitionPenalty(1.15f),
                SAMPLE.withTopP(0.6f).withMinP(0.3f).withTemperature(2f).withRepetitionPenalty(0.9f),
        };
        for (SamplingParams params : settings) {
            assertMatchesReference(logits, history, params);
        }
    }

    @Test
    void distributionMatchesHfAtFullQwenVocabularyWithManyTiedLogits() {
        SplittableRandom random = new SplittableRandom(5);
        int vocab = 151_936;
        float[] logits = randomLogits(random, vocab, 3);
        for (int i = 0; i < vocab; i++) {
            logits[i] = Math.round(logits[i] * 4) / 4f + 0.125f; // bf16-like coarse values: ties everywhere, no zeros
        }
        assertMatchesReference(logits, new int[0], SAMPLE.withTopP(0.9f));
        assertMatchesReference(logits, new int[0], SAMPLE.withTopK(40).withTopP(0.7f).withTemperature(0.6f));
    }

    private static void assertMatchesReference(float[] logits, int[] history, SamplingParams params) {
        Sampler sampler = new Sampler(params, logits.length);
        sampler.observe(history);
        double[] actual = sampler.probabilities(logits.clone(), 0);
        double[] expected = HfReference.probabilities(logits, history, params);
        for (int id = 0; id < logits.length; id++) {
            int token = id;
            assertEquals(expected[id] > 0, actual[id] > 0, () -> params + ": support differs at token " + token);
            // The sampler's weights are floats (like HF's float32 softmax), the reference's doubles.
            assertEquals(expected[id], actual[id], 1e-5 * expected[id], () -> params + ": probability of token " + token);
        }
    }

    @Test
    void topKKeepsEveryTokenTiedWithTheKthLargest() {
        // Sorted: 4, 3, 2, 2, 2, 1, ...; k = 3 ends inside the run of 2s, and HF keeps the whole run.
        float[] logits = {2f, 1f, 4f, 2f, -3f, 3f, 2f, 1f};
        assertSupport(logits, SAMPLE.withTopK(3), 0, 2, 3, 5, 6);
    }

    @Test
    void topPBreaksTiesTowardTheLowerId() {
        // Four equal tokens of mass 0.25 (near enough) each: top_p = 0.6 needs three, the three lowest ids.
        float[] logits = {-20f, 1.5f, 1.5f, -20f, 1.5f, 1.5f};
        assertSupport(logits, SAMPLE.withTopP(0.6f), 1, 2, 4);
    }

    @Test
    void topPAndMinPBoundariesFollowHfComparisons() {
        // Probabilities 0.5, 0.3, 0.2 (in a shuffled id order). HF's top-p keeps a token while the mass above
        // it is below top_p; min-p drops a token whose probability is below min_p times the top one's.
        float[] logits = {(float) Math.log(0.3), (float) Math.log(0.2), (float) Math.log(0.5)};
        assertSupport(logits, SAMPLE.withTopP(0.45f), 2);
        assertSupport(logits, SAMPLE.withTopP(0.55f), 0, 2);
        assertSupport(logits, SAMPLE.withTopP(0.79f), 0, 2);
        assertSupport(logits, SAMPLE.withTopP(0.81f), 0, 1, 2);
        assertSupport(logits, SAMPLE.withMinP(0.399f), 0, 1, 2); // 0.2 / 0.5 = 0.4
        assertSupport(logits, SAMPLE.withMinP(0.401f), 0, 2);
        assertSupport(logits, SAMPLE.withMinP(0.601f), 2);
    }

    private static void assertSupport(float[] logits, SamplingParams params, int... expected) {
        double[] probabilities = new Sampler(params, logits.length).probabilities(logits.clone(), 0);
        int[] support = IntStream.range(0, logits.length).filter(id -> probabilities[id] > 0).toArray();
        assertArrayEquals(expected, support, params::toString);
        double[] reference = HfReference.probabilities(logits, new int[0], params);
        assertArrayEquals(expected, IntStream.range(0, logits.length).filter(id -> reference[id] > 0).toArray());
    }

    /** Draws many tokens on a small vocabulary: nothing outside the expected support, frequencies as expected. */
    @Test
    void drawsFollowTheFilteredDistribution() {
        SplittableRandom random = new SplittableRandom(6);
        float[] logits = randomLogits(random, 12, 1.2);
        SamplingParams[] settings = {
                SAMPLE,
                SAMPLE.withTopK(4),
                SAMPLE.withTopP(0.7f),
                SAMPLE.withMinP(0.25f),
                SAMPLE.withTopK(8).withTopP(0.85f).withMinP(0.1f).withRepetitionPenalty(1.4f),
        };
        int[] history = {0, 3, 3, 7};
        for (SamplingParams params : settings) {
            double[] expected = HfReference.probabilities(logits, history, params);
            long support = Arrays.stream(expected).filter(p -> p > 0).count();
            assertTrue(support >= 2 && support < logits.length || params == SAMPLE, params + " filters something");
            assertDrawsFollow(expected, logits, history, params.withSeed(params.hashCode()));
        }
    }

    @Test
    void temperatureSharpensOrFlattensTheDistribution() {
        SplittableRandom random = new SplittableRandom(7);
        float[] logits = randomLogits(random, 10, 1.0);
        int top = argmaxLowestId(logits);
        double previousTopProbability = 1;
        for (float temperature : new float[]{0.5f, 1f, 2f}) {
            double[] scaled = new double[logits.length];
            for (int id = 0; id < logits.length; id++) {
                scaled[id] = logits[id] / (double) temperature;
            }
            double[] expected = HfReference.softmax(scaled);
            assertDrawsFollow(expected, logits, new int[0], SAMPLE.withTemperature(temperature));
            assertTrue(expected[top] < previousTopProbability, "a hotter temperature gives the top token less mass");
            previousTopProbability = expected[top];
        }
    }

    private static void assertDrawsFollow(double[] expected, float[] logits, int[] history, SamplingParams params) {
        int draws = 60_000;
        Sampler sampler = new Sampler(params, logits.length);
        sampler.observe(history);
        long[] counts = new long[logits.length];
        for (int i = 0; i < draws; i++) {
            counts[sampler.sample(logits.clone(), 0)]++;
        }
        double chiSquare = 0;
        int degrees = -1;
        for (int id = 0; id < logits.length; id++) {
            if (expected[id] == 0) {
                assertEquals(0, counts[id], params + ": drew filtered token " + id);
            } else {
                double mean = expected[id] * draws;
                chiSquare += (counts[id] - mean) * (counts[id] - mean) / mean;
                degrees++;
            }
        }
        assertTrue(chiSquare <= chiSquareCritical(degrees),
                params + ": chi-square " + chiSquare + " with " + degrees + " degrees of freedom");
    }

    /** Wilson-Hilferty's approximation to the chi-square quantile at the one-in-a-million tail. */
    private static double chiSquareCritical(int degrees) {
        if (degrees == 0) {
            return 0; // one token left: every draw must be it, which the support check already asserts
        }
        double h = 2.0 / (9 * degrees);
        return degrees * Math.pow(1 - h + Z_ONE_IN_A_MILLION * Math.sqrt(h), 3);
    }

    @Test
    void theSameSeedRepeatsAndAnotherSeedDiffers() {
        SplittableRandom random = new SplittableRandom(8);
        int vocab = 1000;
        float[][] steps = new float[300][];
        for (int i = 0; i < steps.length; i++) {
            steps[i] = randomLogits(random, vocab, 1);
        }
        SamplingParams params = SAMPLE.withTopP(0.95f);
        int[] first = run(new Sampler(params.withSeed(1234), vocab), steps);
        int[] again = run(new Sampler(params.withSeed(1234), vocab), steps);
        int[] other = run(new Sampler(params.withSeed(1235), vocab), steps);
        assertArrayEquals(first, again);
        long differing = IntStream.range(0, steps.length).filter(i -> first[i] != other[i]).count();
        assertTrue(differing > steps.length / 2, "another seed differs in " + differing + " of " + steps.length + " steps");
    }

    private static int[] run(Sampler sampler, float[][] steps) {
        return Arrays.stream(steps).mapToInt(row -> sampler.sample(row.clone(), 0)).toArray();
    }

    @Test
    void samplersSharingScratchDrawWhatSamplersWithTheirOwnDraw() {
        SplittableRandom random = new SplittableRandom(9);
        int vocab = 4000;
        SamplingParams a = SAMPLE.withTopK(100).withSeed(1);
        SamplingParams b = SAMPLE.withTopP(0.8f).withMinP(0.02f).withSeed(2);
        SamplingScratch shared = new SamplingScratch();
        Sampler sharedA = new Sampler(a, vocab, shared);
        Sampler sharedB = new Sampler(b, vocab, shared);
        Sampler ownA = new Sampler(a, vocab);
        Sampler ownB = new Sampler(b, vocab);
        for (int step = 0; step < 50; step++) {
            float[] logits = randomLogits(random, vocab, 2);
            assertEquals(ownA.sample(logits.clone(), 0), sharedA.sample(logits.clone(), 0));
            assertEquals(ownB.sample(logits.clone(), 0), sharedB.sample(logits.clone(), 0));
        }
    }

    @Test
    void steadyStateSamplingAllocatesNothing() {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        SplittableRandom random = new SplittableRandom(10);
        int vocab = 20_000;
        float[] logits = randomLogits(random, vocab, 3);
        float[] row = new float[vocab];
        SamplingScratch scratch = new SamplingScratch();
        Sampler[] samplers = {
                new Sampler(SAMPLE.withTopK(50).withTopP(0.9f).withMinP(0.05f).withRepetitionPenalty(1.1f), vocab, scratch),
                new Sampler(SAMPLE.withTopP(0.95f).withTemperature(0.7f), vocab, scratch),
                new Sampler(SAMPLE.withMinP(0.1f), vocab, scratch),
                new Sampler(SamplingParams.greedy(1).withRepetitionPenalty(1.3f), vocab, scratch),
        };
        for (Sampler sampler : samplers) {
            sampler.observe(random.ints(100, 0, vocab).toArray());
            sampler.sample(logits.clone(), 0); // grows the shared scratch arrays
        }
        long before = threads.getCurrentThreadAllocatedBytes();
        for (int round = 0; round < 10; round++) {
            for (Sampler sampler : samplers) {
                System.arraycopy(logits, 0, row, 0, vocab);
                sampler.sample(row, 0);
            }
        }
        assertEquals(0, threads.getCurrentThreadAllocatedBytes() - before, "bytes allocated by 40 samples after the first");
    }

    @Test
    void badRowsAreReportedWithTheirCause() {
        Sampler sampler = new Sampler(SAMPLE, 8);
        float[] logits = {0.3f, 1.2f, -0.4f, 2.2f, 0.9f, -1.1f, 0.6f, 1.7f};
        EmberException outside = assertThrows(EmberException.class, () -> sampler.sample(logits, 1));
        assertTrue(outside.getMessage().contains("offset 1") && outside.getMessage().contains("array of 8"), outside.getMessage());

        int vocab = 10_000;
        SamplingParams[] everyPath = {
                SAMPLE, SAMPLE.withTopP(0.5f), SAMPLE.withMinP(0.1f), SAMPLE.withTopK(9), SamplingParams.greedy(1)};
        for (int nanAt : new int[]{3, 6543}) { // inside and after top-k's initial heap
            float[] row = randomLogits(new SplittableRandom(13), vocab, 1);
            row[nanAt] = Float.NaN;
            for (SamplingParams params : everyPath) {
                Sampler nanSampler = new Sampler(params, vocab);
                EmberException nan = assertThrows(EmberException.class, () -> nanSampler.sample(row.clone(), 0));
                assertTrue(nan.getMessage().contains("token " + nanAt + " is NaN"), nan.getMessage());
            }
        }

        float[] masked = new float[8];
        Arrays.fill(masked, Float.NEGATIVE_INFINITY);
        EmberException none = assertThrows(EmberException.class, () -> sampler.sample(masked, 0));
        assertTrue(none.getMessage().contains("largest logit is -Infinity"), none.getMessage());

        EmberException token = assertThrows(EmberException.class, () -> sampler.observe(8));
        assertTrue(token.getMessage().contains("token id 8"), token.getMessage());
        EmberException empty = assertThrows(EmberException.class, () -> new Sampler(SAMPLE, 0));
        assertTrue(empty.getMessage().contains("vocabulary size"), empty.getMessage());
    }

    @Test
    void maskedTokensAreNeverDrawn() {
        SplittableRandom random = new SplittableRandom(11);
        float[] logits = randomLogits(random, 64, 0.5);
        for (int id = 0; id < logits.length; id += 2) {
            logits[id] = Float.NEGATIVE_INFINITY;
        }
        Sampler sampler = new Sampler(SAMPLE.withTemperature(3f), logits.length);
        for (int i = 0; i < 5000; i++) {
            assertEquals(1, sampler.sample(logits.clone(), 0) % 2);
        }
    }
    @Test
    void logprobsAreTheRawRowsLogSoftmaxWithTheTopTokensInOrder() {
        float[] logits = {1f, 3f, 2f, 3f, -1f};
        Sampler sampler = new Sampler(SamplingParams.greedy(4).withLogprobs(3).withRepetitionPenalty(2f), 5);
        assertFalse(sampler.isPlainTopKTopP(), "a repetition penalty is applied on the host");
        int token = sampler.sample(logits.clone(), 0);
        assertEquals(1, token, "the lowest id of the tie");
        double logSumExp = Math.log(IntStream.range(0, 5).mapToDouble(i -> Math.exp(logits[i])).sum());
        TokenLogprobs lp = sampler.logprobs(0);
        assertEquals(1, lp.token());
        assertEquals(3 - logSumExp, lp.logprob(), 1e-6);
        assertArrayEquals(new int[] {1, 3, 2}, lp.topTokens(), "most likely first, ties by lower id");
        assertEquals(2 - logSumExp, lp.topLogprobs()[2], 1e-6);
        sampler.observe(1);  // the token reaches its sequence
        assertEquals(3, sampler.sample(logits.clone(), 0), "the repetition penalty moved the argmax");
        assertEquals(3 - logSumExp, sampler.logprobs(1).logprob(), 1e-6, "raw: before any penalty");
    }

    /** NaN log-probabilities exist nowhere: JSON cannot carry them, whichever side of the bus computed them. */
    @Test
    void logprobsAreNeverNaN() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new TokenLogprobs(2, Float.NaN, new int[] {2}, new float[] {-0.5f}));
        assertTrue(e.getMessage().contains("NaN"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new TokenLogprobs(2, -0.5f, new int[] {2, 0}, new float[] {-0.5f, Float.NaN}));
        assertEquals(-1f, new TokenLogprobs(2, -1f, new int[] {2}, new float[] {Float.NEGATIVE_INFINITY}).logprob(),
                "minus infinity (a token whose logit is -inf) is a log-probability");
    }

    @Test
    void frequencyAndPresencePenaltiesCountTheOutputOnly() {
        float[] logits = {0f, 5f, 4.5f, 0f};
        Sampler sampler = new Sampler(SamplingParams.greedy(8).withPenalties(0f, 0.3f), 4);
        sampler.observe(new int[] {1, 1, 1});  // the prompt: not penalised by frequency
        assertEquals(1, sampler.sample(logits.clone(), 0));
        assertEquals(1, sampler.sample(logits.clone(), 0), "5 - 0.3 = 4.7 still beats 4.5");
        assertEquals(2, sampler.sample(logits.clone(), 0), "5 - 0.6 = 4.4 does not");
        Sampler presence = new Sampler(SamplingParams.greedy(8).withPenalties(1f, 0f), 4);
        assertArrayEquals(new int[] {1, 2, 1, 1}, IntStream.range(0, 4).map(i -> presence.sample(logits.clone(), 0)).toArray(),
                "once per token, however often it came");
    }

    @Test
    void logitBiasAndMinTokensMaskShapeTheRow() {
        float[] logits = {0f, 5f, 1f, 2f};
        SamplingParams params = SamplingParams.greedy(8).withLogitBias(java.util.Map.of(0, 10f))
                .withStopTokenIds(java.util.Set.of(0)).withMinTokens(2);
        Sampler sampler = new Sampler(params, 4);
        assertEquals(1, sampler.sample(logits.clone(), 0), "the stop token is masked before min_tokens");
        assertEquals(1, sampler.sample(logits.clone(), 0));
        assertEquals(0, sampler.sample(logits.clone(), 0), "then the bias makes it the most likely");
    }

    /**
     * A verification's rows are drawn by the samplers that judge the drafts, then by the sequence's own, each counting
     * on from the one before: min_tokens masks by a row's place in the output (greedy and sampled alike), the logprobs
     * are each row's, and {@link Sampler#resumeAt} drops what the rows the verification rejected drew.
     */
    @Test
    void aVerificationsRowsCountOnFromEachOtherAndResumeAtDropsTheRejected() {
        float[] stopMostLikely = {5f, 1f, 2f, 0f};  // token 0, the stop token, wins wherever it is not masked
        for (SamplingParams params : List.of(SamplingParams.greedy(8), SamplingParams.greedy(8).withTemperature(1f).withSeed(3))) {
            params = params.withStopTokenIds(java.util.Set.of(0)).withMinTokens(2).withLogprobs(1);
            Sampler sampler = new Sampler(params, 4);
            double[] draft = {0, 0.5, 0.5, 0};  // a draft that never proposes the stop token
            int[] rows = {
                    sampler.verifying(2, draft).sample(stopMostLikely.clone(), 0),  // output 0: masked
                    sampler.verifying(1, draft).sample(stopMostLikely.clone(), 0),  // output 1: masked
                    sampler.sample(stopMostLikely.clone(), 0)};                     // output 2: free
            String what = params.isGreedy() ? "greedy" : "sampled";
            assertNotEquals(0, rows[0], what);
            assertNotEquals(0, rows[1], what);
            if (params.isGreedy()) {
                assertEquals(0, rows[2], "from min_tokens on, the stop token is drawn again");
            }
            assertEquals(rows[1], sampler.logprobs(1).token(), what + ": each row's logprobs, in order");
            assertEquals(rows[2], sampler.logprobs(2).token(), what);

            sampler.resumeAt(1);  // the verification kept output 0 only
            assertNotEquals(0, sampler.sample(stopMostLikely.clone(), 0), what + ": output 1 again, masked again");
            assertFalse(sampler.mayDraw(0, 1), what);
            assertTrue(sampler.mayDraw(0, 2), what);
            assertThrows(IndexOutOfBoundsException.class, () -> sampler.logprobs(2), what + ": the rejected rows' logprobs are gone");
        }
    }

    /**
     * Logprobs alone leave a sampler plain, so that a device draws its rows and reads their logprobs itself; what it
     * records takes the place {@link Sampler#sample} would have given it, among the host's draws of the same sequence,
     * and {@link Sampler#resumeAt} drops it as it drops theirs.
     */
    @Test
    void logprobsRecordedFromADeviceTakeTheirRowsPlaceAmongTheHostsDraws() {
        SplittableRandom random = new SplittableRandom(12);
        int vocab = 300;
        SamplingParams params = SamplingParams.greedy(8).withLogprobs(4);
        Sampler sampler = new Sampler(params, vocab);
        assertTrue(sampler.isPlainTopKTopP(), "logprobs alone stay plain");
        assertTrue(new Sampler(params.withTemperature(0.8f).withTopK(20), vocab).isPlainTopKTopP());
        assertFalse(new Sampler(params.withMinP(0.1f), vocab).isPlainTopKTopP(), "min-p still goes to the host");
        assertEquals(4, sampler.topLogprobs());
        assertEquals(-1, new Sampler(SamplingParams.greedy(8), vocab).topLogprobs(), "none asked");
        assertEquals(-1, sampler.drafting().topLogprobs(), "a draft reports none");

        // Rows 0 and 2 drawn on the host, 1 and 3 on a device that read their logprobs off the row (as TokenLogprobs.of).
        float[][] rows = new float[4][];
        TokenLogprobs[] expected = new TokenLogprobs[4];
        for (int r = 0; r < 4; r++) {
            rows[r] = randomLogits(random, vocab, 3);
            int token = argmaxLowestId(rows[r]);
            expected[r] = TokenLogprobs.of(rows[r], 0, vocab, token, 4);
            if (r % 2 == 0) {
                assertEquals(token, sampler.sample(rows[r].clone(), 0));
            } else {
                sampler.recordLogprobs(expected[r]);
            }
        }
        for (int r = 0; r < 4; r++) {
            assertEquals(expected[r].token(), sampler.logprobs(r).token(), "row " + r);
            assertEquals(expected[r].logprob(), sampler.logprobs(r).logprob(), "row " + r);
            assertArrayEquals(expected[r].topTokens(), sampler.logprobs(r).topTokens(), "row " + r);
            assertArrayEquals(expected[r].topLogprobs(), sampler.logprobs(r).topLogprobs(), "row " + r);
        }

        // A greedy verification judges its drafts with the sequence's own sampler: its rows record in row order.
        Sampler verifying = sampler.verifying(7, null);
        assertSame(sampler, verifying);
        float[] row = randomLogits(random, vocab, 3);
        TokenLogprobs judged = TokenLogprobs.of(row, 0, vocab, argmaxLowestId(row), 4);
        verifying.recordLogprobs(judged);
        verifying.recordLogprobs(expected[0]);
        sampler.resumeAt(5);  // the verification kept its first row only
        assertSame(judged, sampler.logprobs(4));
        assertThrows(IndexOutOfBoundsException.class, () -> sampler.logprobs(5), "the rejected row's logprobs are gone");
        sampler.recordLogprobs(expected[1]);
        assertSame(expected[1], sampler.logprobs(5), "the next draw takes the rejected one's place");

        Sampler without = new Sampler(SamplingParams.greedy(8), vocab);
        assertThrows(IllegalStateException.class, () -> without.recordLogprobs(judged), "no logprobs asked");
    }

    /**
     * A sampled sequence's verification: the rows that judge drafts are drawn on the host (they need the draft's
     * distribution), its last row on a device; recorded in row order, each row's logprobs are where {@code sample} would
     * have put them.
     */
    @Test
    void aSampledVerificationMixesHostRowsAndADeviceRowInRowOrder() {
        SplittableRandom random = new SplittableRandom(13);
        int vocab = 50;
        Sampler sampler = new Sampler(SamplingParams.greedy(8).withTemperature(1f).withSeed(5).withLogprobs(2), vocab);
        double[] draft = new double[vocab];
        Arrays.fill(draft, 1.0 / vocab);
        Sampler judge = sampler.verifying(3, draft);
        assertFalse(judge.isPlainTopKTopP(), "judging a sampled draft stays on the host");
        assertTrue(sampler.isPlainTopKTopP());
        float[] first = randomLogits(random, vocab, 2), last = randomLogits(random, vocab, 2);
        int drawn = judge.sample(first.clone(), 0);
        TokenLogprobs device = TokenLogprobs.of(last, 0, vocab, 11, 2);
        sampler.recordLogprobs(device);
        assertEquals(drawn, sampler.logprobs(0).token());
        assertArrayEquals(TokenLogprobs.of(first, 0, vocab, drawn, 2).topTokens(), sampler.logprobs(0).topTokens());
        assertSame(device, sampler.logprobs(1));
    }
}
