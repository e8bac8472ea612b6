package dev.ember.grammar;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** Integer ranges as patterns: each matches exactly its range's decimal texts, checked number by number. */
class IntegerRangeTest {

    @Test
    void aRangesPatternMatchesExactlyItsNumbers() {
        SplittableRandom random = new SplittableRandom(4);
        for (int i = 0; i < 400; i++) {
            long low = random.nextLong(-3000, 3000), high = low + random.nextLong(0, 4000);
            Pattern pattern = Pattern.compile(IntegerRange.pattern(low, high));
            Regex regex = Regex.fullMatch(IntegerRange.pattern(low, high));
            for (long n = low - 30; n <= high + 30; n += 1 + random.nextInt(7)) {
                boolean inside = n >= low && n <= high;
                assertEquals(inside, pattern.matcher(Long.toString(n)).matches(), low + ".." + high + " at " + n);
                assertEquals(inside, RegexTest.matches(regex, Long.toString(n)), low + ".." + high + " at " + n);
            }
            assertFalse(pattern.matcher("0" + Math.abs(low)).matches() && Math.abs(low) > 0, "no leading zeros");
            assertFalse(pattern.matcher("-0").matches(), "no minus zero");
        }
        Pattern wide = Pattern.compile(IntegerRange.pattern(0, 999_999_999_999_999_999L));
        assertTrue(wide.matcher("123456789012345678").matches());
        assertFalse(wide.matcher("1234567890123456789").matches());
    }
}
