package dev.ember.grammar;

import java.util.ArrayList;
import java.util.List;

/**
 * A range of code points as the UTF-8 byte sequences that encode exactly them: a few sequences of byte ranges, each
 * position's range read independently, so that a byte-level recognizer can hold a character class. Surrogates
 * (U+D800-U+DFFF) have no UTF-8 encoding and are left out.
 */
final class Utf8Ranges {
    static final int MAX_CODE_POINT = 0x10FFFF;
    /** The largest code point of one, two and three bytes. */
    private static final int[] LENGTH_ENDS = {0x7F, 0x7FF, 0xFFFF};

    private Utf8Ranges() {
    }

    /**
     * The byte sequences of the code points {@code [from, to]}: each an array of {@code {low, high}} byte ranges, one per
     * byte of the encoding; together they encode exactly those code points, each code point by one sequence.
     */
    static List<int[][]> of(int from, int to) {
        if (from < 0 || to > MAX_CODE_POINT || from > to) {
            throw new IllegalArgumentException("not a range of code points: " + from + " to " + to);
        }
        List<int[][]> out = new ArrayList<>();
        split(from, Math.min(to, 0xD7FF), out);  // below the surrogates and above them; split takes an empty range as none
        split(Math.max(from, 0xE000), to, out);
        return out;
    }

    /**
     * Splits until each piece's code points have encodings of one length whose bytes, position by position, run over
     * whole ranges: where a lower byte position does not span 0x80-0xBF for every value of the higher ones, the piece is
     * cut at that position's boundary.
     */
    private static void split(int from, int to, List<int[][]> out) {
        if (from > to) {
            return;
        }
        for (int end : LENGTH_ENDS) {
            if (from <= end && to > end) {
                split(from, end, out);
                split(end + 1, to, out);
                return;
            }
        }
        if (to < 0x80) {
            out.add(new int[][] {{from, to}});
            return;
        }
        int length = length(from);
        for (int i = 1; i < length; i++) {
            int low = (1 << (6 * i)) - 1;  // the code point's bits in its last i bytes
            if ((from & ~low) != (to & ~low)) {
                if ((from & low) != 0) {
                    split(from, from | low, out);
                    split((from | low) + 1, to, out);
                    return;
                }
                if ((to & low) != low) {
                    split(from, (to & ~low) - 1, out);
                    split(to & ~low, to, out);
                    return;
                }
            }
        }
        byte[] a = encode(from), b = encode(to);
        int[][] sequence = new int[length][];
        for (int i = 0; i < length; i++) {
            sequence[i] = new int[] {a[i] & 0xff, b[i] & 0xff};
        }
        out.add(sequence);
    }

    private static int length(int codePoint) {
        return codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4;
    }

    /** The UTF-8 bytes of {@code codePoint} (not a surrogate). */
    static byte[] encode(int codePoint) {
        return switch (length(codePoint)) {
            case 1 -> new byte[] {(byte) codePoint};
            case 2 -> new byte[] {(byte) (0xC0 | codePoint >> 6), (byte) (0x80 | codePoint & 0x3F)};
            case 3 -> new byte[] {(byte) (0xE0 | codePoint >> 12), (byte) (0x80 | codePoint >> 6 & 0x3F),
                    (byte) (0x80 | codePoint & 0x3F)};
            default -> new byte[] {(byte) (0xF0 | codePoint >> 18), (byte) (0x80 | codePoint >> 12 & 0x3F),
                    (byte) (0x80 | codePoint >> 6 & 0x3F), (byte) (0x80 | codePoint & 0x3F)};
        };
    }
}
