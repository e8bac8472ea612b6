package dev.ember.sampling;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Thinking before a held answer: random outputs drawn from what the matcher allows, checked step by step against the
 * rules written out plainly (the answer's grammar sees exactly the tokens after the closing tag; the budget closes the
 * thinking; no end while an answer held to a grammar is still to come).
 */
class ThinkingFirstTest {
    private static final int VOCAB = 40, OPEN = 30, CLOSE = 31, END = 39;

    /** The answer's grammar: after an even number of its tokens, 1 to 9 or the end; after an odd number, 10 to 19. */
    private static ScriptedGrammar answerGrammar() {
        return new ScriptedGrammar(seen -> {
            BitSet allowed = new BitSet();
            if (seen.size() % 2 == 0) {
                allowed.set(1, 10);
                allowed.set(END);
            } else {
                allowed.set(10, 20);
            }
            return allowed;
        });
    }

    @Test
    void randomOutputsFollowTheRules() {
        SplittableRandom random = new SplittableRandom(11);
        for (int trial = 0; trial < 600; trial++) {
            ThinkingFirst.Start start = ThinkingFirst.Start.values()[random.nextInt(3)];
            int budget = random.nextInt(4) == 0 ? ThinkingFirst.UNLIMITED : random.nextInt(0, 6);
            ScriptedGrammar answer = random.nextBoolean() ? answerGrammar() : null;
            OutputGrammar.Matcher matcher = new ThinkingFirst(answer, OPEN, CLOSE, budget, start, VOCAB, Set.of(END)).start();

            boolean thinking = start == ThinkingFirst.Start.THINKING, mayOpen = start == ThinkingFirst.Start.MAY_THINK;
            int thought = 0;
            List<Integer> answered = new ArrayList<>();
            BitSet allowed = new BitSet();
            for (int step = 0; step < 30; step++) {
                matcher.allowedTokens(allowed);
                BitSet expected = new BitSet();
                if (thinking && thought >= budget) {
                    expected.set(CLOSE);
                } else if (thinking) {
                    expected.set(0, VOCAB);
                    if (answer != null) {
                        expected.clear(END);
                    }
                } else {
                    if (answer == null) {
                        expected.set(0, VOCAB);
                    } else {
                        expected.or(answer.allowedNow());
                    }
                    if (mayOpen) {
                        expected.set(OPEN);
                    }
                }
                assertEquals(expected, allowed, "trial " + trial + " step " + step + " (" + start + ", budget " + budget + ")");
                // Draw the closing tag more often than its share, so that thinking ends before its budget too.
                int token = thinking && random.nextInt(6) == 0 ? CLOSE : pick(allowed, random);
                if (!thinking && token == END) {
                    break;
                }
                matcher.accept(token);
                if (thinking) {
                    if (token == CLOSE) {
                        thinking = false;
                    } else {
                        thought++;
                    }
                } else if (mayOpen && token == OPEN) {
                    thinking = true;
                } else {
                    answered.add(token);
                }
                mayOpen = false;
            }
            if (answer != null) {
                assertEquals(answered, answer.accepted, "the answer's grammar sees the answer alone, trial " + trial);
            }
        }
    }

    @Test
    void aBudgetOfNoTokensClosesTheThinkingAtOnce() {
        OutputGrammar.Matcher matcher = new ThinkingFirst(null, OPEN, CLOSE, 0, ThinkingFirst.Start.MAY_THINK, VOCAB,
                Set.of(END)).start();
        BitSet allowed = new BitSet();
        matcher.allowedTokens(allowed);
        assertEquals(VOCAB, allowed.cardinality(), "free to open its thinking or to answer");
        matcher.accept(OPEN);
        matcher.allowedTokens(allowed);
        assertEquals(BitSet.valueOf(new long[] {1L << CLOSE}), allowed);
        matcher.accept(CLOSE);
        matcher.allowedTokens(allowed);
        assertEquals(VOCAB, allowed.cardinality(), "the answer is free");
        assertThrows(IllegalArgumentException.class,
                () -> new ThinkingFirst(null, OPEN, OPEN, 1, ThinkingFirst.Start.THINKING, VOCAB, Set.of(END)));
        assertThrows(IllegalArgumentException.class,
                () -> new ThinkingFirst(null, OPEN, CLOSE, -1, ThinkingFirst.Start.THINKING, VOCAB, Set.of(END)));
    }

    private static int pick(BitSet allowed, SplittableRandom random) {
        int skip = random.nextInt(allowed.cardinality());
        int token = allowed.nextSetBit(0);
        for (int i = 0; i < skip; i++) {
            token = allowed.nextSetBit(token + 1);
        }
        return token;
    }
}
