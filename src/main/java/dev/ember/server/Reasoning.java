package dev.ember.server;

import dev.ember.EmberException;

import java.util.Locale;

/**
 * vLLM's reasoning parsers for models that think before they answer: the text between {@code <think>} and
 * {@code </think>} goes to the message's {@code reasoning_content}, the rest to its {@code content}. {@link #QWEN3}:
 * thinking only where the output opens with {@code <think>} (Qwen3 writes the tag itself, and with thinking turned off
 * writes none); {@link #DEEPSEEK_R1}: the output starts inside the thinking, whose opening tag the template wrote into
 * the prompt, so text with no {@code </think>} is all thinking.
 */
enum Reasoning {
    QWEN3, DEEPSEEK_R1;

    static final String OPEN = "<think>", CLOSE = "</think>";

    /** The parser of vLLM's {@code --reasoning-parser} name. */
    static Reasoning named(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "qwen3" -> QWEN3;
            case "deepseek_r1", "deepseek-r1" -> DEEPSEEK_R1;
            default -> throw new EmberException("--reasoning-parser " + name + " is not one of qwen3, deepseek_r1");
        };
    }

    /**
     * How many of {@code text}'s last characters begin {@code tag}: a tag that may be completing, which a streamed text
     * holds back until the next piece shows whether it is one.
     */
    static int partialTag(String text, String tag) {
        for (int n = Math.min(tag.length() - 1, text.length()); n > 0; n--) {
            if (text.endsWith(tag.substring(0, n))) {
                return n;
            }
        }
        return 0;
    }

    /** A text as its thinking (null where there is none) and its answer (null where there is none). */
    record Split(String reasoning, String content) {
        /** This split of a text, followed by {@code next}'s of the text after it. */
        Split followedBy(Split next) {
            return new Split(join(reasoning, next.reasoning), join(content, next.content));
        }

        private static String join(String a, String b) {
            return a == null ? b : b == null ? a : a + b;
        }
    }

    /** Splits a whole output. */
    Split split(String text) {
        Splitter splitter = new Splitter(this);
        return splitter.push(text).followedBy(splitter.finish());
    }

    /**
     * Splits an output as it streams: each piece becomes its thinking part and its answer part, a piece that might be
     * the start of a tag held back until the next shows whether it is.
     */
    static final class Splitter {
        private enum Phase { UNDECIDED, THINKING, ANSWERING }

        private final StringBuilder held = new StringBuilder();
        /** Where an output that does not open with {@code <think>} is: thinking for DeepSeek-R1, answering for Qwen3. */
        private final Phase untagged;
        private Phase phase = Phase.UNDECIDED;
        /** Whether the answer has begun to show: the newlines after {@code </think>} are dropped until it has. */
        private boolean answerStarted;

        Splitter(Reasoning parser) {
            this.untagged = parser == DEEPSEEK_R1 ? Phase.THINKING : Phase.ANSWERING;
        }

        Split push(String piece) {
            held.append(piece);
            StringBuilder thinking = new StringBuilder(), answer = new StringBuilder();
            while (true) {
                String text = held.toString();
                if (phase == Phase.UNDECIDED) {
                    String start = text.stripLeading();
                    if (start.startsWith(OPEN)) {
                        held.setLength(0);
                        held.append(start.substring(OPEN.length()));
                        phase = Phase.THINKING;
                        continue;
                    }
                    if (OPEN.startsWith(start)) {
                        break;  // "<thi": wait for the rest
                    }
                    phase = untagged;
                    answerStarted = untagged == Phase.ANSWERING;  // an answer with no thinking before it is shown whole
                    continue;
                }
                if (phase == Phase.THINKING) {
                    int close = text.indexOf(CLOSE);
                    if (close >= 0) {
                        thinking.append(text, 0, close);
                        held.delete(0, close + CLOSE.length());
                        phase = Phase.ANSWERING;
                        continue;
                    }
                    int keep = partialTag(text, CLOSE);
                    thinking.append(text, 0, text.length() - keep);
                    held.delete(0, text.length() - keep);
                    break;
                }
                String shown = answerStarted ? text : text.replaceFirst("^\n+", "");
                answerStarted |= !shown.isEmpty();
                answer.append(shown);
                held.setLength(0);
                break;
            }
            return new Split(thinking.isEmpty() ? null : thinking.toString(), answer.isEmpty() ? null : answer.toString());
        }

        /** What was held back, once the output has ended: a tag never completed is text of the phase it was in. */
        Split finish() {
            String rest = held.toString();
            held.setLength(0);
            if (rest.isEmpty()) {
                return new Split(null, null);
            }
            Phase at = phase == Phase.UNDECIDED ? untagged : phase;
            return at == Phase.THINKING ? new Split(rest, null) : new Split(null, rest);
        }
    }
}
