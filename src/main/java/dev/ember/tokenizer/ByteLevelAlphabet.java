package dev.ember.tokenizer;

/**
 * GPT-2's byte-level alphabet, which byte-level BPE tokenizers (Llama 3, Qwen) write their tokens in: each of the 256
 * bytes as a printable character, the printable ASCII and Latin-1 bytes as themselves and the others (controls, space)
 * as the characters from U+0100 on, in byte order.
 */
final class ByteLevelAlphabet {
    /** The byte each character of the alphabet stands for, by character; -1 for a character outside it. */
    private static final int[] BYTE_OF_CHAR = new int[0x200];

    static {
        java.util.Arrays.fill(BYTE_OF_CHAR, -1);
        int next = 0x100;
        for (int b = 0; b < 256; b++) {
            boolean printable = b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF;
            BYTE_OF_CHAR[printable ? b : next++] = b;
        }
    }

    private ByteLevelAlphabet() {
    }

    /** The byte {@code c} stands for, or -1 if it is not a character of the alphabet. */
    static int byteOf(char c) {
        return c < BYTE_OF_CHAR.length ? BYTE_OF_CHAR[c] : -1;
    }
}
