package dev.ember.sampling;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** A prompt token's score ({@link ScoredToken}) and the sampler that records it ({@link Sampler#scoring}). */
class ScoredTokenTest {
    private static final int VOCAB = 50;

    private static float[] randomRow(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] row = new float[VOCAB];
        for (int i = 0; i < VOCAB; i++) {
            row[i] = (float) random.nextGaussian() * 3;
        }
        return row;
    }

    @Test
    void theRankCountsTheLogitsAboveTheTokenAndEqualOnesOfLowerIds() {
        float[] row = randomRow(1);
        int best = dev.ember.Numerics.argmax(row, 0, VOCAB);
        assertEquals(1, ScoredToken.of(row, 0, VOCAB, best, 0).rank());
        for (int token = 0; token < VOCAB; token++) {
            int above = 0;
            for (float logit : row) {
                above += logit > row[token] ? 1 : 0;
            }
            assertEquals(above + 1, ScoredToken.of(row, 0, VOCAB, token, 2).rank(), "token " + token);
        }
        float[] tied = new float[VOCAB];
        tied[7] = 2;
        tied[3] = 2;
        assertEquals(1, ScoredToken.of(tied, 0, VOCAB, 3, 1).rank(), "the lower id of a tie counts first, as in the top list");
        assertEquals(2, ScoredToken.of(tied, 0, VOCAB, 7, 1).rank());
        assertEquals(3, ScoredToken.of(tied, 0, VOCAB, 0, 1).rank());
    }

    @Test
    void aScoringSamplerRecordsTheRowsScoreOfItsTokenAndDrawsNothing() {
        // Sampled, with a bias, min_tokens and a stop token masked: none of it touches a prompt score, read off the raw row.
        SamplingParams params = new SamplingParams(0.7f, 5, 0.9f, 0f, 1f, 11, 8, java.util.List.of(), false, 0f, 0f,
                java.util.Map.of(4, 30f), 2, java.util.Set.of(9), false, 1, 3, null, true);
        Sampler sampler = new Sampler(params, VOCAB);
        float[] logits = new float[3 * VOCAB];
        for (int r = 0; r < 3; r++) {
            System.arraycopy(randomRow(20 + r), 0, logits, r * VOCAB, VOCAB);
        }
        float[] raw = logits.clone();
        int[] prompt = {5, 9, 31};
        for (int p = 1; p < prompt.length; p++) {
            Sampler scoring = sampler.scoring(p, prompt[p]);
            assertFalse(scoring.isPlainTopKTopP(), "a score is read on the host, from the row copied back");
            assertEquals(prompt[p], scoring.sample(logits, (p - 1) * VOCAB));
        }
        assertArrayEquals(raw, logits, "scoring leaves the rows as they were");
        for (int p = 1; p < prompt.length; p++) {
            ScoredToken expected = ScoredToken.of(raw, (p - 1) * VOCAB, VOCAB, prompt[p], 3);
            ScoredToken got = sampler.promptLogprobs(p);
            assertEquals(expected.rank(), got.rank());
            assertEquals(expected.logprobs().logprob(), got.logprobs().logprob());
            assertArrayEquals(expected.logprobs().topTokens(), got.logprobs().topTokens());
        }
        assertNull(sampler.promptLogprobs(0));
        // The first draw is still the sequence's first: the stop token 9 stays masked until min_tokens, and no logprobs of
        // the prompt were taken for the output's.
        for (int i = 0; i < 200; i++) {
            Sampler fresh = new Sampler(params.withSeed(i), VOCAB);
            fresh.scoring(1, 9).sample(logits.clone(), 0);
            assertNotEquals(9, fresh.sample(logits.clone(), 2 * VOCAB), "min_tokens counts no scored row as a draw");
            assertEquals(1, fresh.logprobs(0).topTokens().length);
        }
    }

    @Test
    void onlyASamplerAskedForPromptLogprobsScores() {
        Sampler plain = new Sampler(SamplingParams.greedy(4), VOCAB);
        assertThrows(IllegalStateException.class, () -> plain.scoring(1, 3));
        Sampler asked = new Sampler(SamplingParams.greedy(4).withPromptLogprobs(0), VOCAB);
        assertThrows(IllegalArgumentException.class, () -> asked.scoring(0, 3), "the first prompt token has no row before it");
        assertThrows(IllegalArgumentException.class, () -> asked.scoring(1, VOCAB));
        assertNull(plain.promptLogprobs(1));
    }
}
