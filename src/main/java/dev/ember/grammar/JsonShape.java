package dev.ember.grammar;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * What a JSON value must look like: the part of a JSON schema a recognizer can hold an output to. The shapes that hold
 * others are compared by identity: a shape is compiled once per grammar, and the recognizer's states, which hold
 * shapes, are compared and hashed at every byte.
 */
public sealed interface JsonShape {
    /** The most texts a {@link Choice} may have: a bit each in the recognizer's state. */
    int MAX_CHOICES = 64;

    /** Any JSON value. */
    final class AnyValue implements JsonShape {
        static final AnyValue INSTANCE = new AnyValue();

        private AnyValue() {
        }
    }

    /**
     * An object. With {@code names}, only those keys, each at most once, in any order, the {@code required} ones (a bit
     * per name) all present, each with its value's shape; without, any keys, each value of shape {@code otherValues};
     * between {@code minProperties} and {@code maxProperties} keys.
     */
    final class ObjectShape implements JsonShape {
        /** The most names an object's shape may have: a bit each in the recognizer's state. */
        static final int MAX_NAMES = 64;
        static final ObjectShape ANY = new ObjectShape(List.of(), List.of(), 0, AnyValue.INSTANCE);

        final List<byte[]> names;
        final List<JsonShape> values;
        final long required;
        final JsonShape otherValues;
        final int minProperties;
        final int maxProperties;

        ObjectShape(List<String> names, List<JsonShape> values, long required, JsonShape otherValues) {
            this(names, values, required, otherValues, 0, Integer.MAX_VALUE);
        }

        /**
         * @throws IllegalArgumentException where no object could have the counts asked: fewer names than the least, more
         *                                  required names than the most, or the least above the most
         */
        ObjectShape(List<String> names, List<JsonShape> values, long required, JsonShape otherValues, int minProperties,
                    int maxProperties) {
            if (names.size() > MAX_NAMES || names.size() != values.size()) {
                throw new IllegalArgumentException(names.size() + " names, " + values.size() + " values");
            }
            if (minProperties < 0 || minProperties > maxProperties || Long.bitCount(required) > maxProperties
                    || !names.isEmpty() && minProperties > names.size()) {
                throw new IllegalArgumentException("an object of " + names.size() + " names, " + Long.bitCount(required)
                        + " of them required, cannot have between " + minProperties + " and " + maxProperties + " keys");
            }
            this.names = names.stream().map(ObjectShape::encoded).toList();
            this.values = List.copyOf(values);
            this.required = required;
            this.otherValues = otherValues;
            this.minProperties = minProperties;
            this.maxProperties = maxProperties;
        }

        boolean anyKeys() {
            return names.isEmpty();
        }

        /** Every name as its JSON string's content: the bytes between the quotes. */
        private static byte[] encoded(String name) {
            String quoted = JsonSchemas.JSON.valueToTree(name).toString();
            return quoted.substring(1, quoted.length() - 1).getBytes(StandardCharsets.UTF_8);
        }
    }

    /**
     * An array of {@code items} (after the {@code prefix} items, each of its own shape), between {@code minItems} and
     * {@code maxItems} of them; where {@code unique}, its items are {@code items}' choices, each at most once (JSON
     * schema's {@code uniqueItems} over an enum: pydantic's set of an enum).
     */
    final class ArrayShape implements JsonShape {
        static final ArrayShape ANY = new ArrayShape(AnyValue.INSTANCE, 0, Integer.MAX_VALUE);

        /** The shapes of the first items, one each (a tuple's: JSON schema's {@code prefixItems}); empty for none. */
        final List<JsonShape> prefix;
        final JsonShape items;
        final int minItems;
        final int maxItems;
        final boolean unique;

        ArrayShape(JsonShape items, int minItems, int maxItems) {
            this(List.of(), items, minItems, maxItems);
        }

        ArrayShape(List<JsonShape> prefix, JsonShape items, int minItems, int maxItems) {
            this.prefix = List.copyOf(prefix);
            this.items = items;
            this.minItems = minItems;
            this.maxItems = maxItems;
            this.unique = false;
        }

        /** Between {@code minItems} and {@code maxItems} of {@code items}' choices, each at most once. */
        ArrayShape(Choice items, int minItems, int maxItems) {
            if (minItems > items.texts.size()) {
                throw new IllegalArgumentException("an array of distinct items of " + items.texts.size()
                        + " choices cannot have " + minItems);
            }
            this.prefix = List.of();
            this.items = items;
            this.minItems = minItems;
            this.maxItems = Math.min(maxItems, items.texts.size());
            this.unique = true;
        }

        /** The shape of the item at {@code index}. */
        JsonShape item(int index) {
            return index < prefix.size() ? prefix.get(index) : items;
        }
    }

    /** A string of between {@code minLength} and {@code maxLength} characters. */
    record StringShape(int minLength, int maxLength) implements JsonShape {
        static final StringShape ANY = new StringShape(0, Integer.MAX_VALUE);
    }

    /**
     * A string whose characters match {@code regex} (a schema's {@code pattern}, or a {@code format} built on one),
     * written without escapes (a character the string would have to escape cannot be matched), of a length between
     * {@code minLength} and {@code maxLength}.
     */
    final class PatternString implements JsonShape {
        final Regex regex;
        /** Characters (code points) the string holds: at least, at most. */
        final int minLength, maxLength;

        PatternString(Regex regex, int minLength, int maxLength) {
            this.regex = regex;
            this.minLength = minLength;
            this.maxLength = maxLength;
        }
    }

    /** A number whose text matches {@code regex}: an integer within bounds, its digits written as a pattern. */
    final class PatternNumber implements JsonShape {
        final Regex regex;

        PatternNumber(Regex regex) {
            this.regex = regex;
        }
    }

    /** A number, or with {@code integer} an integer (no fraction, no exponent). */
    record NumberShape(boolean integer) implements JsonShape {
    }

    /**
     * One of some texts, byte for byte: the JSON texts of an {@code enum} or a {@code const} (true, false and null are
     * such choices too), or, at the top of a grammar of plain choices, the strings themselves.
     */
    final class Choice implements JsonShape {
        final List<byte[]> texts;

        static final Choice LITERALS = new Choice(List.of("true", "false", "null"));

        Choice(List<String> texts) {
            if (texts.isEmpty() || texts.size() > MAX_CHOICES) {
                throw new IllegalArgumentException(texts.size() + " choices");
            }
            this.texts = texts.stream().map(t -> t.getBytes(StandardCharsets.UTF_8)).toList();
        }
    }

    /** Any of {@code alternatives}. */
    final class AnyOf implements JsonShape {
        final List<JsonShape> alternatives;

        AnyOf(List<JsonShape> alternatives) {
            this.alternatives = List.copyOf(alternatives);
        }
    }

    /**
     * The shape a reference ({@code $ref}) names, known once that shape is compiled: a schema that contains itself (a
     * tree of nodes, a list that holds lists) holds this where it refers to itself, and the recognizer starts the
     * target's value there.
     */
    final class Reference implements JsonShape {
        final String ref;
        private JsonShape target;

        Reference(String ref) {
            this.ref = ref;
        }

        void resolve(JsonShape shape) {
            target = shape;
        }

        JsonShape target() {
            if (target == null) {
                throw new IllegalStateException("the reference " + ref + " is read before its shape was compiled");
            }
            return target;
        }
    }
}
