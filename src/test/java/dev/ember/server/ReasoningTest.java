package dev.ember.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** vLLM's qwen3 and deepseek_r1 reasoning parsers: whole outputs, and the same outputs streamed in random pieces. */
class ReasoningTest {

    @ParameterizedTest
    @CsvSource(delimiter = '|', nullValues = "NULL", textBlock = """
            QWEN3       | <think>\\nLet me see.\\n</think>\\n\\nIt is 42. | \\nLet me see.\\n | It is 42.
            QWEN3       | It is 42.                                     | NULL              | It is 42.
            QWEN3       | <think>\\nStill thinking                      | \\nStill thinking | NULL
            QWEN3       | <think></think>Yes                            | NULL              | Yes
            QWEN3       | I like <think> tags                           | NULL              | I like <think> tags
            DEEPSEEK_R1 | Let me see.\\n</think>\\n\\nIt is 42.         | Let me see.\\n    | It is 42.
            DEEPSEEK_R1 | <think>Hm</think>Yes                          | Hm                | Yes
            DEEPSEEK_R1 | Thinking without end                          | Thinking without end | NULL""")
    void anOutputSplitsIntoItsThinkingAndItsAnswer(Reasoning parser, String text, String reasoning, String content) {
        String unescaped = text.replace("\\n", "\n");
        Reasoning.Split split = parser.split(unescaped);
        assertEquals(reasoning == null ? null : reasoning.replace("\\n", "\n"), split.reasoning());
        assertEquals(content == null ? null : content.replace("\\n", "\n"), split.content());
        for (long seed = 0; seed < 50; seed++) {
            assertEquals(split, streamed(parser, unescaped, new SplittableRandom(seed)), "streamed in pieces, seed " + seed);
        }
    }

    private static Reasoning.Split streamed(Reasoning parser, String text, SplittableRandom random) {
        Reasoning.Splitter splitter = new Reasoning.Splitter(parser);
        Reasoning.Split whole = new Reasoning.Split(null, null);
        for (int at = 0; at < text.length(); ) {
            int end = Math.min(text.length(), at + random.nextInt(1, 5));
            whole = whole.followedBy(splitter.push(text.substring(at, end)));
            at = end;
        }
        return whole.followedBy(splitter.finish());
    }

    @Test
    void onlyTheParsersVllmNamesAreTaken() {
        assertEquals(Reasoning.QWEN3, Reasoning.named("qwen3"));
        assertEquals(Reasoning.DEEPSEEK_R1, Reasoning.named("deepseek_r1"));
        assertThrows(dev.ember.EmberException.class, () -> Reasoning.named("granite"));
    }
}
