package dev.ember.sampling;

import java.util.BitSet;
import java.util.Set;

/**
 * An output that may think before it answers, between a model's thinking tags (Qwen3's and DeepSeek-R1's
 * {@code <think>} ... {@code </think>}, each one token): the answer is held to a grammar from the token after the closing
 * tag, as vLLM applies structured output once its reasoning parser sees the reasoning end, and the thinking to a budget of
 * tokens, after which the closing tag is the only token that may come (vLLM's {@code thinking_token_budget}, Anthropic's
 * {@code budget_tokens}). While the output thinks, any token may come but an end of sequence where an answer held to a
 * grammar is still to be written; an output that may open its thinking may begin with the opening tag or with its answer.
 */
public final class ThinkingFirst implements OutputGrammar {
    /** Where the output begins: inside its thinking (the prompt opened it), free to open it, or in its answer. */
    public enum Start { THINKING, MAY_THINK, ANSWERING }

    /** No budget: the thinking ends where the model ends it. */
    public static final int UNLIMITED = Integer.MAX_VALUE;

    private final OutputGrammar answer;
    private final int open, close, budget, vocabSize;
    private final Set<Integer> endOfSequence;
    private final Start start;

    /**
     * @param answer        the grammar of the answer; null for any answer
     * @param open          the opening tag's token
     * @param close         the closing tag's token
     * @param budget        the most tokens of thinking before the closing tag, or {@link #UNLIMITED}
     * @param start         where the output begins
     * @param vocabSize     the sampler's vocabulary
     * @param endOfSequence the tokens that end an output
     */
    public ThinkingFirst(OutputGrammar answer, int open, int close, int budget, Start start, int vocabSize,
                         Set<Integer> endOfSequence) {
        if (budget < 0 || open == close || open < 0 || close < 0 || open >= vocabSize || close >= vocabSize) {
            throw new IllegalArgumentException("thinking: tags " + open + " and " + close + " of a vocabulary of "
                    + vocabSize + " with a budget of " + budget);
        }
        this.answer = answer;
        this.open = open;
        this.close = close;
        this.budget = budget;
        this.start = start;
        this.vocabSize = vocabSize;
        this.endOfSequence = Set.copyOf(endOfSequence);
    }

    @Override
    public Matcher start() {
        Matcher answering = answer == null ? null : answer.start();
        return new Matcher() {
            private Start phase = start;
            private int thought;

            @Override
            public void allowedTokens(BitSet allowed) {
                switch (phase) {
                    case THINKING -> {
                        allowed.clear();
                        if (thought >= budget) {
                            allowed.set(close);
                        } else {
                            allowed.set(0, vocabSize);
                            if (answering != null) {
                                endOfSequence.forEach(allowed::clear);
                            }
                        }
                    }
                    case MAY_THINK -> {
                        answerTokens(allowed);
                        allowed.set(open);
                    }
                    case ANSWERING -> answerTokens(allowed);
                }
            }

            private void answerTokens(BitSet allowed) {
                if (answering == null) {
                    allowed.clear();
                    allowed.set(0, vocabSize);
                } else {
                    answering.allowedTokens(allowed);
                }
            }

            @Override
            public void accept(int token) {
                switch (phase) {
                    case THINKING -> {
                        if (token == close) {
                            phase = Start.ANSWERING;
                        } else {
                            thought++;
                        }
                    }
                    case MAY_THINK -> {
                        if (token == open) {
                            phase = Start.THINKING;
                        } else {
                            phase = Start.ANSWERING;
                            answered(token);
                        }
                    }
                    case ANSWERING -> answered(token);
                }
            }

            private void answered(int token) {
                if (answering != null) {
                    answering.accept(token);
                }
            }
        };
    }

    @Override
    public String describe() {
        String thinking = budget == UNLIMITED ? "after thinking" : "after at most " + budget + " tokens of thinking";
        return answer == null ? "an answer " + thinking : answer.describe() + " " + thinking;
    }
}
