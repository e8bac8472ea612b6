package dev.ember.bench;

import dev.ember.sampling.SamplingParams;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Requests of random token ids, as mini-sglang's offline bench.py makes them: each prompt's length and each
 * request's output length drawn uniformly from their ranges, token ids uniform in [0, min(vocabulary, 10001))
 * (bench.py's {@code randint(0, 10000)}). The lengths come from the seed alone, so a benchmark can size its
 * KV cache before it knows the model's vocabulary; the token ids from the seed and the vocabulary.
 */
record RandomWorkload(int[] inputLengths, int[] outputLengths, long seed) {
    private static final int BENCH_PY_TOKEN_RANGE = 10_001;

    static RandomWorkload draw(int requests, LengthRange input, LengthRange output, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        int[] inputs = new int[requests];
        int[] outputs = new int[requests];
        for (int i = 0; i < requests; i++) {
            inputs[i] = input.draw(random);
        }
        for (int i = 0; i < requests; i++) {
            outputs[i] = output.draw(random);
        }
        return new RandomWorkload(inputs, outputs, seed);
    }

    /** The prompts' token ids: the same for the same seed and vocabulary size. */
    int[][] prompts(int vocabSize) {
        SplittableRandom random = new SplittableRandom(seed).split();
        int tokenRange = Math.min(vocabSize, BENCH_PY_TOKEN_RANGE);
        int[][] prompts = new int[size()][];
        for (int i = 0; i < prompts.length; i++) {
            prompts[i] = random.ints(inputLengths[i], 0, tokenRange).toArray();
        }
        return prompts;
    }

    /**
     * Each request {@code n} times in a row, as {@code n} choices of one request (OpenAI's n): sequence {@code i * n + j}
     * has request i's lengths, and with {@link #repeated(int[][], int)} its prompt; each its own sampling seed.
     */
    RandomWorkload choices(int n) {
        int[] inputs = new int[size() * n];
        int[] outputs = new int[size() * n];
        for (int k = 0; k < inputs.length; k++) {
            inputs[k] = inputLengths[k / n];
            outputs[k] = outputLengths[k / n];
        }
        return new RandomWorkload(inputs, outputs, seed);
    }

    /**
     * The prompt tokens each sequence of {@link #choices(int) choices(n)} takes from the prefix cache: none for a
     * request's first choice, and for the others every full block of {@code blockSize} tokens but the one holding the
     * last prompt token, which the scheduler always computes (none at all when {@code blockSize} is 0: no prefix cache).
     */
    int[] cachedLengths(int n, int blockSize) {
        int[] cached = new int[size()];
        for (int k = 0; k < cached.length; k++) {
            cached[k] = k % n == 0 || blockSize == 0 ? 0 : (inputLengths[k] - 1) / blockSize * blockSize;
        }
        return cached;
    }

    /** Each prompt {@code n} times in a row: the prompts of {@link #choices(int)}. */
    static int[][] repeated(int[][] prompts, int n) {
        int[][] all = new int[prompts.length * n][];
        for (int k = 0; k < all.length; k++) {
            all[k] = prompts[k / n];
        }
        return all;
    }

    /** Request {@code i}'s sampling: {@code temperature}, exactly its output length (EOS ignored), a seed of its own. */
    SamplingParams samplingParams(int i, float temperature) {
        return new SamplingParams(temperature, 0, 1f, 0f, 1f, seed + i, outputLengths[i], List.of(), true);
    }

    int size() {
        return inputLengths.length;
    }

    long inputTokens() {
        return Arrays.stream(inputLengths).asLongStream().sum();
    }

    long outputTokens() {
        return Arrays.stream(outputLengths).asLongStream().sum();
    }

    /** The most tokens, prompt plus output, of one request. */
    int longest() {
        int longest = 0;
        for (int i = 0; i < size(); i++) {
            longest = Math.max(longest, inputLengths[i] + outputLengths[i]);
        }
        return longest;
    }

    /**
     * KV-cache tokens enough for the {@code slots} longest requests at once at full length, each rounded up to
     * whole blocks: with it, no request is ever preempted.
     */
    long peakTokens(int slots, int blockSize) {
        long[] sizes = new long[size()];
        for (int i = 0; i < sizes.length; i++) {
            sizes[i] = (inputLengths[i] + outputLengths[i] + blockSize - 1L) / blockSize * blockSize;
        }
        Arrays.sort(sizes);
        long sum = 0;
        for (int i = sizes.length - 1; i >= Math.max(0, sizes.length - slots); i--) {
            sum += sizes[i];
        }
        return sum;
    }
}
