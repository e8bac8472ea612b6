package dev.ember.grammar;

import java.util.ArrayList;
import java.util.List;

/**
 * The integers of a range as a pattern of their decimal digits (no leading zeros, a minus for the negative ones): how
 * a schema's integer bounds are held, since a recognizer of bytes cannot compare numbers. A range of same-length
 * numbers splits where its first digits differ: the low end's tail up to all nines, the digits strictly between with
 * any tail, and the high end's tail from all zeros; ranges of different lengths split by length first.
 */
final class IntegerRange {
    private IntegerRange() {
    }

    /** A pattern matching exactly the decimal texts of the integers in [{@code low}, {@code high}]. */
    static String pattern(long low, long high) {
        if (low > high) {
            throw new IllegalArgumentException("the empty range " + low + " to " + high);
        }
        if (high < 0) {
            return "-(" + natural(-high, -low) + ")";
        }
        if (low < 0) {
            return "-(" + natural(1, -low) + ")|" + natural(0, high);
        }
        return natural(low, high);
    }

    /** The pattern of [low, high], both at least 0. */
    private static String natural(long low, long high) {
        List<String> parts = new ArrayList<>();
        for (int digits = digits(low); digits <= digits(high); digits++) {
            long from = Math.max(low, digits == 1 ? 0 : pow10(digits - 1));
            long to = Math.min(high, pow10(digits) - 1);
            if (from <= to) {
                split(Long.toString(from), Long.toString(to), "", parts);
            }
        }
        return String.join("|", parts);
    }

    /** Adds to {@code out} the patterns of the numbers from {@code low} to {@code high}, same length, after {@code prefix}. */
    private static void split(String low, String high, String prefix, List<String> out) {
        int n = low.length();
        if (low.equals(high)) {
            out.add(prefix + low);
            return;
        }
        if (low.charAt(0) == high.charAt(0)) {
            split(low.substring(1), high.substring(1), prefix + low.charAt(0), out);
            return;
        }
        String lowTail = low.substring(1), highTail = high.substring(1);
        boolean lowWhole = lowTail.chars().allMatch(c -> c == '0'), highWhole = highTail.chars().allMatch(c -> c == '9');
        char first = lowWhole ? low.charAt(0) : (char) (low.charAt(0) + 1);
        char last = highWhole ? high.charAt(0) : (char) (high.charAt(0) - 1);
        if (!lowWhole) {
            split(lowTail, "9".repeat(n - 1), prefix + low.charAt(0), out);
        }
        if (first <= last) {
            out.add(prefix + (first == last ? String.valueOf(first) : "[" + first + "-" + last + "]") + (n > 1 ? "\\d{" + (n - 1) + "}" : ""));
        }
        if (!highWhole) {
            split("0".repeat(n - 1), highTail, prefix + high.charAt(0), out);
        }
    }

    private static int digits(long n) {
        return Long.toString(n).length();
    }

    private static long pow10(int exponent) {
        long p = 1;
        for (int i = 0; i < exponent; i++) {
            p *= 10;
        }
        return p;
    }
}
