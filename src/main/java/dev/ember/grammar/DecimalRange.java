package dev.ember.grammar;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.List;

/**
 * The numbers of a range as a pattern of their JSON texts, written without an exponent: how a schema's bounds on a
 * number that need not be an integer are held (pydantic's {@code confloat(ge=0, le=1)}), since a recognizer of bytes
 * cannot compare numbers. A text is split at its point: the integer parts strictly inside the range take any fraction,
 * and the two at its ends ({@link IntegerRange} for those between) take the fractions that keep the number on the
 * right side of the bound, digit by digit: 0.D is at least 0.L where D's first digit is above L's, or equal to it and
 * the rest at least L's rest. Negative numbers are the positive pattern of the mirrored range after a minus, never
 * zero ("-0" is left out).
 */
final class DecimalRange {
    /** The widest integer part held, as for integers: 18 digits. */
    static final long WIDEST = 999_999_999_999_999_999L;

    private DecimalRange() {
    }

    /**
     * A pattern matching exactly the exponent-free JSON number texts whose values lie between {@code low} and
     * {@code high} (null: unbounded on that side, up to {@link #WIDEST}), each bound inclusive or not.
     *
     * @throws IllegalArgumentException if no number lies between them, or a bound is wider than {@link #WIDEST}
     */
    static String pattern(BigDecimal low, boolean lowInclusive, BigDecimal high, boolean highInclusive) {
        BigDecimal widest = BigDecimal.valueOf(WIDEST);
        if (low != null && low.abs().compareTo(widest) > 0 || high != null && high.abs().compareTo(widest) > 0) {
            throw new IllegalArgumentException("a bound wider than " + WIDEST);
        }
        if (low != null && high != null) {
            int order = low.compareTo(high);
            if (order > 0 || order == 0 && !(lowInclusive && highInclusive)) {
                throw new IllegalArgumentException("no number lies between " + low.toPlainString() + " and " + high.toPlainString());
            }
        }
        List<String> parts = new ArrayList<>();
        // Non-negative numbers: from the low bound, or from zero (inclusive) where the range reaches below it.
        if (high == null || high.signum() > 0 || high.signum() == 0 && highInclusive) {
            boolean fromZero = low == null || low.signum() < 0;
            parts.add(natural(fromZero ? BigDecimal.ZERO : low, fromZero || lowInclusive, high, highInclusive));
        }
        // Negative numbers: the magnitudes between the mirrored bounds, zero left out.
        if (low == null || low.signum() < 0) {
            boolean toZero = high == null || high.signum() >= 0;
            String magnitudes = natural(toZero ? BigDecimal.ZERO : high.negate(), !toZero && highInclusive,
                    low == null ? null : low.negate(), lowInclusive);
            if (!magnitudes.isEmpty()) {
                parts.add("-(" + magnitudes + ")");
            }
        }
        parts.removeIf(String::isEmpty);
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("no number lies between the bounds");
        }
        return String.join("|", parts);
    }

    /** The texts of the numbers from {@code low} (at least 0) to {@code high} (null: to the widest), without a sign. */
    private static String natural(BigDecimal low, boolean lowInclusive, BigDecimal high, boolean highInclusive) {
        long lowInteger = low.setScale(0, RoundingMode.FLOOR).longValueExact();
        String lowFraction = fraction(low);
        long highInteger = high == null ? WIDEST : high.setScale(0, RoundingMode.FLOOR).longValueExact();
        String highFraction = high == null ? null : fraction(high);
        List<String> parts = new ArrayList<>();
        if (lowInteger == highInteger) {
            // One integer part: the fraction at least the low's and at most the high's.
            String both = between(lowFraction, lowInclusive, highFraction, highInclusive);
            if (both != null) {
                parts.add(lowInteger + both);
            }
            return String.join("|", parts);
        }
        String atLeast = fractionPart(atLeast(lowFraction, lowInclusive), emptyAtLeast(lowFraction, lowInclusive));
        if (atLeast != null) {
            parts.add(lowInteger + atLeast);
        }
        if (lowInteger + 1 <= highInteger - 1) {
            parts.add("(" + IntegerRange.pattern(lowInteger + 1, highInteger - 1) + ")(\\.[0-9]+)?");
        }
        String atMost = highFraction == null ? "(\\.[0-9]+)?"
                : fractionPart(atMost(highFraction, highInclusive), emptyAtMost(highFraction, highInclusive));
        if (atMost != null) {
            parts.add(highInteger + atMost);
        }
        return String.join("|", parts);
    }

    /** The fraction digits of a non-negative number, without trailing zeros ("" for an integer). */
    private static String fraction(BigDecimal value) {
        BigDecimal rest = value.subtract(value.setScale(0, RoundingMode.FLOOR)).stripTrailingZeros();
        return rest.signum() == 0 ? "" : rest.toPlainString().substring(2);
    }

    /**
     * The part of a text after its integer part: {@code "."} and digits that {@code digits} matches, or nothing where
     * {@code empty} (a fraction of 0 meets the bound); null where neither can come.
     */
    private static String fractionPart(String digits, boolean empty) {
        if (digits == null) {
            return empty ? "" : null;
        }
        return "(\\.(" + digits + "))" + (empty ? "?" : "");
    }

    private static String between(String low, boolean lowInclusive, String high, boolean highInclusive) {
        if (high == null) {
            return fractionPart(atLeast(low, lowInclusive), emptyAtLeast(low, lowInclusive));
        }
        // Digits D with 0.L <= 0.D <= 0.H: where L and H share their first digit, that digit, then the rest of each.
        List<String> parts = new ArrayList<>();
        boolean empty = emptyAtLeast(low, lowInclusive) && emptyAtMost(high, highInclusive);
        String digits = betweenDigits(low, lowInclusive, high, highInclusive);
        if (digits != null) {
            parts.add("\\.(" + digits + ")");
        }
        if (parts.isEmpty()) {
            return empty ? "" : null;
        }
        return "(" + String.join("|", parts) + ")" + (empty ? "?" : "");
    }

    /** A pattern of the non-empty digit strings D with 0.L <= 0.D <= 0.H (strict where not inclusive); null for none. */
    private static String betweenDigits(String low, boolean lowInclusive, String high, boolean highInclusive) {
        if (low.isEmpty() && lowInclusive) {
            return atMost(high, highInclusive);
        }
        if (low.isEmpty()) {  // 0 < 0.D <= 0.H: a digit above 0 somewhere
            if (high.isEmpty()) {
                return null;
            }
            int h = high.charAt(0) - '0';
            if (h == 0) {
                String rest = betweenDigits("", false, high.substring(1), highInclusive);
                return rest == null ? null : "0(" + rest + ")";
            }
            List<String> parts = new ArrayList<>();
            parts.add("0+[1-9][0-9]*");  // below 0.1, so below 0.H
            if (h > 1) {
                parts.add("[1-" + (h - 1) + "][0-9]*");
            }
            String rest = restAtMost(high.substring(1), highInclusive);
            if (rest != null) {
                parts.add(h + rest);
            }
            return String.join("|", parts);
        }
        int l = low.charAt(0) - '0', h = high.isEmpty() ? -1 : high.charAt(0) - '0';
        if (h < l) {
            return null;  // every D at least 0.L is above 0.H
        }
        List<String> parts = new ArrayList<>();
        String lowRest = low.substring(1), highRest = high.substring(1);
        if (l == h) {
            String rest = restBetween(lowRest, lowInclusive, highRest, highInclusive);
            if (rest != null) {
                parts.add(l + rest);
            }
        } else {
            String lowTail = restAtLeast(lowRest, lowInclusive);
            if (lowTail != null) {
                parts.add(l + lowTail);
            }
            if (l + 1 <= h - 1) {
                parts.add("[" + (l + 1) + "-" + (h - 1) + "][0-9]*");
            }
            String highTail = restAtMost(highRest, highInclusive);
            if (highTail != null) {
                parts.add(h + highTail);
            }
        }
        return parts.isEmpty() ? null : String.join("|", parts);
    }

    /** Digit strings R (possibly empty) after a shared first digit, with 0.L <= 0.R <= 0.H. */
    private static String restBetween(String low, boolean lowInclusive, String high, boolean highInclusive) {
        boolean empty = emptyAtLeast(low, lowInclusive) && emptyAtMost(high, highInclusive);
        String digits = betweenDigits(low, lowInclusive, high, highInclusive);
        if (digits == null) {
            return empty ? "" : null;
        }
        return "(" + digits + ")" + (empty ? "?" : "");
    }

    /** Non-empty digit strings D with 0.D >= 0.L (> where not inclusive); null for none. */
    private static String atLeast(String low, boolean inclusive) {
        if (low.isEmpty()) {
            return inclusive ? "[0-9]+" : "0*[1-9][0-9]*";
        }
        int l = low.charAt(0) - '0';
        List<String> parts = new ArrayList<>();
        if (l < 9) {
            parts.add("[" + (l + 1) + "-9][0-9]*");
        }
        String rest = restAtLeast(low.substring(1), inclusive);
        if (rest != null) {
            parts.add(l + rest);
        }
        return parts.isEmpty() ? null : String.join("|", parts);
    }

    /** Digit strings R (possibly empty) with 0.R >= 0.L (> where not inclusive): where R may be empty, optional. */
    private static String restAtLeast(String low, boolean inclusive) {
        String digits = atLeast(low, inclusive);
        boolean empty = emptyAtLeast(low, inclusive);
        return digits == null ? (empty ? "" : null) : "(" + digits + ")" + (empty ? "?" : "");
    }

    /** Whether no digits at all (a fraction of 0) meet 0 >= 0.L. */
    private static boolean emptyAtLeast(String low, boolean inclusive) {
        return low.isEmpty() && inclusive;
    }

    /** Non-empty digit strings D with 0.D <= 0.H (< where not inclusive); null for none. */
    private static String atMost(String high, boolean inclusive) {
        if (high.isEmpty()) {
            return inclusive ? "0+" : null;
        }
        int h = high.charAt(0) - '0';
        List<String> parts = new ArrayList<>();
        if (h > 0) {
            parts.add("[0-" + (h - 1) + "][0-9]*");
        }
        String rest = restAtMost(high.substring(1), inclusive);
        if (rest != null) {
            parts.add(h + rest);
        }
        return parts.isEmpty() ? null : String.join("|", parts);
    }

    /** Digit strings R (possibly empty) with 0.R <= 0.H (< where not inclusive): where R may be empty, optional. */
    private static String restAtMost(String high, boolean inclusive) {
        String digits = atMost(high, inclusive);
        boolean empty = emptyAtMost(high, inclusive);
        return digits == null ? (empty ? "" : null) : "(" + digits + ")" + (empty ? "?" : "");
    }

    /** Whether no digits at all (a fraction of 0) meet 0 <= 0.H. */
    private static boolean emptyAtMost(String high, boolean inclusive) {
        return !high.isEmpty() || inclusive;
    }
}
