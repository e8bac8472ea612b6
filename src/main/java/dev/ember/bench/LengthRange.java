package dev.ember.bench;

import dev.ember.EmberException;
import picocli.CommandLine;

import java.util.SplittableRandom;

/** A range of token counts, written {@code MIN:MAX} or a single {@code N}; lengths are drawn uniformly from it. */
public record LengthRange(int min, int max) {

    public LengthRange {
        if (min < 1 || max < min) {
            throw new EmberException("length range " + min + ":" + max + " must have 1 <= MIN <= MAX");
        }
    }

    public static LengthRange parse(String text) {
        String[] parts = text.trim().split(":", -1);
        try {
            if (parts.length == 1) {
                int n = Integer.parseInt(parts[0]);
                return new LengthRange(n, n);
            }
            if (parts.length == 2) {
                return new LengthRange(Integer.parseInt(parts[0]), Integer.parseInt(parts[1]));
            }
        } catch (NumberFormatException e) {
            // falls through to the message below
        }
        throw new EmberException("\"" + text + "\" is not a length range (MIN:MAX or N)");
    }

    /** A length uniform in [min, max]. */
    public int draw(SplittableRandom random) {
        return random.nextInt(min, max + 1);
    }

    @Override
    public String toString() {
        return min == max ? Integer.toString(min) : min + ":" + max;
    }

    /** Lets picocli read a range option. */
    public static final class Converter implements CommandLine.ITypeConverter<LengthRange> {
        @Override
        public LengthRange convert(String value) {
            try {
                return parse(value);
            } catch (EmberException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }
}
