package dev.ember.grammar;

import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Ranges of numbers that need not be integers, as patterns: each matches exactly the exponent-free JSON texts of the
 * numbers in its range (every bound inclusive or not, or missing), checked against BigDecimal on random texts near the
 * bounds and far from them, and never a text that is not a JSON number, an exponent, or minus zero.
 */
class DecimalRangeTest {
    private static final Pattern JSON_NUMBER = Pattern.compile("-?(0|[1-9][0-9]*)(\\.[0-9]+)?");

    @Test
    void aRangesPatternMatchesExactlyItsNumbers() {
        SplittableRandom random = new SplittableRandom(12);
        int ranges = 0, matched = 0, refused = 0, nearBoundary = 0;
        for (int i = 0; i < 600; i++) {
            BigDecimal low = random.nextInt(5) == 0 ? null : randomBound(random);
            BigDecimal high = random.nextInt(5) == 0 ? null : randomBound(random);
            boolean lowInclusive = random.nextBoolean(), highInclusive = random.nextBoolean();
            if (low != null && high != null && (low.compareTo(high) > 0 || low.compareTo(high) == 0 && !(lowInclusive && highInclusive))) {
                BigDecimal l = low, h = high;
                assertThrows(IllegalArgumentException.class, () -> DecimalRange.pattern(l, lowInclusive, h, highInclusive));
                continue;
            }
            ranges++;
            String text = DecimalRange.pattern(low, lowInclusive, high, highInclusive);
            Pattern pattern = Pattern.compile(text);
            Regex regex = Regex.fullMatch(text);
            String range = (lowInclusive ? "[" : "(") + low + ", " + high + (highInclusive ? "]" : ")");
            for (int k = 0; k < 120; k++) {
                String candidate = randomText(random, low, high);
                boolean number = JSON_NUMBER.matcher(candidate).matches() && !candidate.matches("-0(\\.0+)?");
                boolean inside = number && inside(new BigDecimal(candidate), low, lowInclusive, high, highInclusive);
                assertEquals(inside, pattern.matcher(candidate).matches(), range + " at " + candidate + ": " + text);
                assertEquals(inside, RegexTest.matches(regex, candidate), range + " at " + candidate);
                matched += inside ? 1 : 0;
                refused += number && !inside ? 1 : 0;
                nearBoundary += number && (low != null && new BigDecimal(candidate).compareTo(low) == 0
                        || high != null && new BigDecimal(candidate).compareTo(high) == 0) ? 1 : 0;
            }
        }
        assertTrue(ranges > 300 && matched > 10_000 && refused > 10_000 && nearBoundary > 400,
                ranges + " ranges, " + matched + " numbers inside, " + refused + " outside, " + nearBoundary + " at a bound");
        Pattern unit = Pattern.compile(DecimalRange.pattern(BigDecimal.ZERO, true, BigDecimal.ONE, true));
        for (String in : new String[] {"0", "0.0", "0.5", "0.999", "1", "1.000"}) {
            assertTrue(unit.matcher(in).matches(), in);
        }
        for (String out : new String[] {"1.001", "-0.1", "2", "01", "0.5e0", ".5", "1."}) {
            assertFalse(unit.matcher(out).matches(), out);
        }
    }

    private static boolean inside(BigDecimal v, BigDecimal low, boolean lowInclusive, BigDecimal high, boolean highInclusive) {
        boolean aboveLow = low == null || (lowInclusive ? v.compareTo(low) >= 0 : v.compareTo(low) > 0);
        boolean belowHigh = high == null ? v.abs().compareTo(BigDecimal.valueOf(DecimalRange.WIDEST).add(BigDecimal.ONE)) < 0
                : (highInclusive ? v.compareTo(high) <= 0 : v.compareTo(high) < 0);
        boolean withinWidest = v.abs().compareTo(BigDecimal.valueOf(DecimalRange.WIDEST).add(BigDecimal.ONE)) < 0;
        return aboveLow && belowHigh && withinWidest;
    }

    /** A bound of a few integer digits and up to three fraction digits, either sign. */
    private static BigDecimal randomBound(SplittableRandom random) {
        return BigDecimal.valueOf(random.nextInt(-3000, 3000), random.nextInt(4)).stripTrailingZeros();
    }

    /** A text near a bound (a digit off, a digit more, the bound itself) or anywhere, sometimes not a JSON number. */
    private static String randomText(SplittableRandom random, BigDecimal low, BigDecimal high) {
        BigDecimal near = random.nextBoolean() ? low : high;
        String text;
        if (near != null && random.nextInt(3) > 0) {
            BigDecimal step = BigDecimal.valueOf(random.nextInt(-12, 13), random.nextInt(5));
            text = near.add(step).toPlainString();
            if (random.nextInt(4) == 0) {
                text = text.contains(".") ? text + "0".repeat(random.nextInt(1, 3)) : text + ".0";  // trailing zeros
            }
        } else {
            text = BigDecimal.valueOf(random.nextLong(-400_000, 400_000), random.nextInt(5)).toPlainString();
        }
        return switch (random.nextInt(14)) {
            case 0 -> text + "e1";
            case 1 -> "0" + text;
            case 2 -> text.startsWith("-") ? "-0" : "0.0";
            case 3 -> text + ".";
            default -> text;
        };
    }
}
