package dev.ember.tokenizer;

import java.math.BigDecimal;
import java.util.Map;

/**
 * Python's {@code json.dumps}, which HF's {@code tojson} template filter calls with {@code ensure_ascii=False}
 * by default: {@code ", "} and {@code ": "} between items (or {@code ","} and a newline when indenting), keys in
 * insertion order, non-ASCII kept unless asked otherwise, floats written as Python's {@code repr} writes them.
 * Jinjava's own {@code tojson} is Jackson's compact form, which no chat template was written for.
 */
final class PythonJson {

    private final boolean ensureAscii;
    private final int indent;           // < 0: no indentation, everything on one line
    private final boolean sortKeys;
    private final String itemSeparator;
    private final String keySeparator;
    private final StringBuilder out = new StringBuilder();

    private PythonJson(boolean ensureAscii, int indent, String itemSeparator, String keySeparator, boolean sortKeys) {
        this.ensureAscii = ensureAscii;
        this.indent = indent;
        this.itemSeparator = itemSeparator;
        this.keySeparator = keySeparator;
        this.sortKeys = sortKeys;
    }

    /** {@code json.dumps(value, ensure_ascii=ensureAscii, indent=indent or None when negative, sort_keys=sortKeys)}. */
    static String dumps(Object value, boolean ensureAscii, int indent, boolean sortKeys) {
        return dumps(value, ensureAscii, indent, null, null, sortKeys);
    }

    /**
     * The same with {@code separators=(itemSeparator, keySeparator)}; null ones are Python's defaults ({@code ", "},
     * or {@code ","} when indenting, and {@code ": "}).
     */
    static String dumps(Object value, boolean ensureAscii, int indent, String itemSeparator, String keySeparator, boolean sortKeys) {
        PythonJson json = new PythonJson(ensureAscii, indent, itemSeparator != null ? itemSeparator : indent < 0 ? ", " : ",",
                keySeparator != null ? keySeparator : ": ", sortKeys);
        json.write(value, 0);
        return json.out.toString();
    }

    private void write(Object value, int depth) {
        switch (value) {
            case null -> out.append("null");
            case Boolean b -> out.append(b ? "true" : "false");
            case CharSequence s -> string(s.toString());
            case Double d -> out.append(floatRepr(d));
            case Float f -> out.append(floatRepr(f.doubleValue()));
            case BigDecimal d -> out.append(floatRepr(d.doubleValue()));
            case Number n -> out.append(n.longValue());
            case Map<?, ?> map -> object(map, depth);
            case Iterable<?> items -> array(items, depth);
            case Object[] items -> array(java.util.Arrays.asList(items), depth);
            default -> throw new IllegalArgumentException("Object of type " + value.getClass().getSimpleName() + " is not JSON serializable");
        }
    }

    private void object(Map<?, ?> map, int depth) {
        if (map.isEmpty()) {
            out.append("{}");
            return;
        }
        Iterable<? extends Map.Entry<?, ?>> entries = map.entrySet();
        if (sortKeys) {
            entries = map.entrySet().stream().sorted((a, b) -> String.valueOf(a.getKey()).compareTo(String.valueOf(b.getKey()))).toList();
        }
        out.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> entry : entries) {
            separator(first, depth + 1);
            first = false;
            string(String.valueOf(entry.getKey()));
            out.append(keySeparator);
            write(entry.getValue(), depth + 1);
        }
        close(depth, '}');
    }

    private void array(Iterable<?> items, int depth) {
        if (!items.iterator().hasNext()) {
            out.append("[]");
            return;
        }
        out.append('[');
        boolean first = true;
        for (Object item : items) {
            separator(first, depth + 1);
            first = false;
            write(item, depth + 1);
        }
        close(depth, ']');
    }

    private void separator(boolean first, int depth) {
        if (!first) {
            out.append(itemSeparator);
        }
        if (indent < 0) {
            return;
        }
        out.append('\n').append(" ".repeat(indent * depth));
    }

    private void close(int depth, char bracket) {
        if (indent >= 0) {
            out.append('\n').append(" ".repeat(indent * depth));
        }
        out.append(bracket);
    }

    private void string(String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20 || (ensureAscii && c > 0x7e)) {
                        out.append(String.format("\\u%04x", (int) c)); // UTF-16 units: surrogate pairs as Python writes them
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }

    /** Python's float repr: the shortest round-tripping digits, positional for exponents -4..15, else d.ddde+XX. */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return (1 / d < 0) ? "-0.0" : "0.0";
        }
        BigDecimal shortest = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
        String digits = shortest.unscaledValue().toString();
        int exponent = digits.length() - 1 - shortest.scale();   // d = digits[0].digits[1..] x 10^exponent
        String sign = d < 0 ? "-" : "";
        if (exponent < -4 || exponent >= 16) {
            String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
            return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + String.format("%02d", Math.abs(exponent));
        }
        String plain = shortest.toPlainString();
        return sign + (plain.contains(".") ? plain : plain + ".0");
    }
}
