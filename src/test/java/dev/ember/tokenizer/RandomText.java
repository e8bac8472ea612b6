package dev.ember.tokenizer;

import java.util.List;
import java.util.random.RandomGenerator;

/** Random multilingual text: words, runs of spaces, tabs and newlines, CJK, emoji, accented Latin, Cyrillic. */
final class RandomText {

    private static final List<String> WORDS = List.of("the", "Hello", "world", "tokenizer", "don't", "3.14159", "x=y+1",
            "(parenthesis)", "URL:https://example.org/a?b=c", "naïve", "Ärger", "Straße");

    private RandomText() {
    }

    static String next(RandomGenerator random, int pieces) {
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < pieces; i++) {
            switch (random.nextInt(9)) {
                case 0, 1, 2 -> text.append(WORDS.get(random.nextInt(WORDS.size())));
                case 3 -> text.append(" ".repeat(1 + random.nextInt(3)));
                case 4 -> text.append(random.nextBoolean() ? "\n" : random.nextBoolean() ? "\t" : "\n\n");
                case 5 -> codePoints(text, random, 0x4E00, 0x9FFF, 1 + random.nextInt(4));   // CJK ideographs
                case 6 -> codePoints(text, random, 0x1F300, 0x1F64F, 1 + random.nextInt(2)); // emoji, 4 UTF-8 bytes each
                case 7 -> codePoints(text, random, 0x0430, 0x044F, 2 + random.nextInt(5));  // Cyrillic
                default -> codePoints(text, random, 0x00C0, 0x00FF, 1 + random.nextInt(3));  // accented Latin
            }
            if (random.nextInt(3) == 0) {
                text.append(' ');
            }
        }
        return text.toString();
    }

    private static void codePoints(StringBuilder text, RandomGenerator random, int from, int to, int count) {
        for (int i = 0; i < count; i++) {
            text.appendCodePoint(from + random.nextInt(to - from + 1));
        }
    }
}
