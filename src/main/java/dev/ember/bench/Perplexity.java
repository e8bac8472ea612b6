package dev.ember.bench;

import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.kvcache.BlockTable;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A model's negative log-likelihood of a token sequence, scored in sliding windows as llama.cpp's perplexity tool and
 * HF's perplexity guide do: windows of at most {@code context} tokens start every {@code stride} tokens, and each
 * window scores only the tokens no earlier window scored, so every token after the first is scored exactly once, with
 * at least {@code context - stride} tokens before it (all of them, near the start).
 */
public final class Perplexity {
    /**
     * Most tokens of a window one forward step takes; a window runs as consecutive pieces through the KV cache, so that
     * the logits buffer (a row of the vocabulary for each scored position) stays small for models of large vocabularies.
     */
    static final int PIECE_TOKENS = 256;

    private Perplexity() {
    }

    /**
     * One forward pass over the tokens {@code [start, end)} of the sequence, which scores the tokens {@code
     * [firstScored, end)}: token {@code t} is predicted by the logits at position {@code t - 1}.
     */
    public record Window(int start, int end, int firstScored) {
    }

    /**
     * The sum of the scored tokens' negative log-likelihoods, in nats.
     *
     * @param scoredTokens tokens scored: all but the first of the sequence
     */
    public record Score(int scoredTokens, double totalNats) {
        public double meanNats() {
            return totalNats / scoredTokens;
        }

        public double perplexity() {
            return Math.exp(meanNats());
        }

        /** Bits per byte of the scored text, which unlike perplexity per token compares models with different tokenizers. */
        public double bitsPerByte(long bytes) {
            return totalNats / Math.log(2) / bytes;
        }
    }

    /**
     * The windows that score tokens {@code 1 .. tokens - 1} of a sequence of {@code tokens} once each.
     *
     * @param stride at most {@code context - 1}: a window that started where the last one ended could not score its own
     *               first token, which has no context inside it
     */
    public static List<Window> windows(int tokens, int context, int stride) {
        if (context < 2 || stride < 1 || stride >= context) {
            throw new IllegalArgumentException("context " + context + ", stride " + stride + ": need 1 <= stride < context");
        }
        List<Window> windows = new ArrayList<>();
        int scoredUpTo = 1;  // the first token has nothing before it
        for (int start = 0; scoredUpTo < tokens; start += stride) {
            int end = Math.min(start + context, tokens);
            windows.add(new Window(start, end, scoredUpTo));
            scoredUpTo = end;
        }
        return windows;
    }

    /**
     * Scores {@code tokens} on {@code runner} in the windows {@link #windows} plans, reporting the tokens scored so far
     * to {@code progress}. The runner's cache must hold {@code context} tokens: every window reuses the same slots.
     */
    public static Score score(ModelRunner runner, int[] tokens, int context, int stride, Progress progress) {
        return score(runner, tokens, context, stride, PIECE_TOKENS, progress);
    }

    /** {@link #score}, feeding each window in pieces of at most {@code pieceTokens} tokens. */
    static Score score(ModelRunner runner, int[] tokens, int context, int stride, int pieceTokens, Progress progress) {
        int vocab = runner.config().vocabSize();
        if (tokens.length < 2) {
            throw new IllegalArgumentException(tokens.length + " token(s): the first has no context, so nothing is scored");
        }
        BlockTable table = runner.blockAllocator().newTable();
        if (!table.reserve(context, runner.blockAllocator())) {
            throw new IllegalStateException("the runner's KV cache holds fewer than " + context + " tokens");
        }
        try {
            float[] logits = new float[pieceTokens * vocab];
            double totalNats = 0;
            int scored = 0;
            int toScore = tokens.length - 1;
            for (Window w : windows(tokens.length, context, stride)) {
                // Positions start..end-2 are fed: the last token of the window is only a target.
                for (int from = w.start(); from < w.end() - 1; from += pieceTokens) {
                    int to = Math.min(from + pieceTokens, w.end() - 1);
                    int firstOutput = Math.max(from, w.firstScored() - 1);
                    // A chunk produces at least one output; a piece before the scored part makes one and ignores it.
                    int outputs = Math.max(1, to - firstOutput);
                    runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(Arrays.copyOfRange(tokens, from, to),
                            from - w.start(), table, -1, outputs)), logits);
                    for (int position = firstOutput, row = 0; position < to; position++, row++) {
                        totalNats += negativeLogLikelihood(logits, row * vocab, vocab, tokens[position + 1]);
                    }
                    scored += Math.max(0, to - firstOutput);
                    progress.update("scoring tokens", scored, toScore);
                }
            }
            return new Score(scored, totalNats);
        } finally {
            table.release(runner.blockAllocator());
        }
    }

    /** {@code -log softmax(logits)[target]} of the row at {@code offset}, in double precision. */
    static double negativeLogLikelihood(float[] logits, int offset, int vocab, int target) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            max = Math.max(max, logits[offset + i]);
        }
        double sum = 0;
        for (int i = 0; i < vocab; i++) {
            sum += Math.exp(logits[offset + i] - max);
        }
        return max + Math.log(sum) - logits[offset + target];
    }
}
