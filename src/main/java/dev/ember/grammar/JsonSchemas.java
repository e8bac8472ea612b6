package dev.ember.grammar;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Compiles a JSON schema into the {@link JsonShape} an output is held to: types (one or a list), {@code properties}
 * with {@code required} and {@code minProperties} / {@code maxProperties}, {@code items} with {@code minItems} /
 * {@code maxItems}, {@code minLength} / {@code maxLength},
 * {@code enum}, {@code const}, {@code anyOf} / {@code oneOf}, a one-element {@code allOf}, and {@code $ref} into
 * {@code $defs} or {@code definitions} (as pydantic writes them). An object with {@code properties} gets only those keys
 * (as xgrammar's strict mode does): an output that leaves out what {@code additionalProperties} would allow still
 * matches the schema. Annotations (title, description, default, examples) are read past. Every other keyword, which
 * the output could not be held to ({@code multipleOf}, {@code uniqueItems} but over an enum, other formats, ...),
 * is refused by name, so that a client never gets an output its schema does not describe. An integer's bounds
 * ({@code minimum}, {@code maximum} and the exclusive ones) are held by writing its digits as a pattern.
 */
public final class JsonSchemas {
    static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Keywords that describe without constraining what the output may be: taken and set aside. OpenAPI's
     * {@code discriminator} (pydantic writes it beside a union's oneOf) names the key whose const tells the variants
     * apart, which the variants' own shapes already hold.
     */
    private static final Set<String> ANNOTATIONS = Set.of("title", "description", "default", "examples", "$schema", "$id",
            "$comment", "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "discriminator");
    private static final Set<String> HELD = Set.of("type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "properties",
            "required", "additionalProperties", "items", "prefixItems", "additionalItems", "minItems", "maxItems", "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
            "minProperties", "maxProperties", "uniqueItems");
    /** The keywords that give a schema's whole shape, in the order {@link #shape} reads them. */
    private static final List<String> WHOLE = List.of("$ref", "const", "enum", "anyOf", "oneOf", "allOf");
    /** One label of a host name: letters, digits and hyphens, neither first nor last a hyphen, at most 63. */
    private static final String LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    /** A number of an IPv4 address, 0 to 255 without leading zeros. */
    private static final String OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    /** A group of an IPv6 address: one to four hexadecimal digits. */
    private static final String HEXTET = "[0-9a-fA-F]{1,4}";
    /** RFC 4291's text forms of an IPv6 address: eight groups, or fewer around one "::" (no embedded IPv4, no zone). */
    private static final String IPV6 = String.join("|", "(" + HEXTET + ":){7}" + HEXTET, "(" + HEXTET + ":){1,7}:",
            "(" + HEXTET + ":){1,6}:" + HEXTET, "(" + HEXTET + ":){1,5}(:" + HEXTET + "){1,2}",
            "(" + HEXTET + ":){1,4}(:" + HEXTET + "){1,3}", "(" + HEXTET + ":){1,3}(:" + HEXTET + "){1,4}",
            "(" + HEXTET + ":){1,2}(:" + HEXTET + "){1,5}", HEXTET + ":(:" + HEXTET + "){1,6}", ":((:" + HEXTET + "){1,7}|:)");
    /** The characters RFC 3986 lets a URI hold (percent escapes among them), but the quote and backslash JSON escapes. */
    private static final String URI_CHARACTERS = "[A-Za-z0-9._~:/?#\\[\\]@!$&'()*+,;=%-]";
    /** ISO 8601's duration: a date part of at least one of years, months, weeks, days; a time part after T, likewise. */
    private static final String DURATION_DATE = "([0-9]+Y([0-9]+M)?([0-9]+W)?([0-9]+D)?|[0-9]+M([0-9]+W)?([0-9]+D)?|[0-9]+W([0-9]+D)?|[0-9]+D)";
    private static final String SECONDS = "[0-9]+(\\.[0-9]+)?S";
    private static final String DURATION_TIME = "T([0-9]+H([0-9]+M)?(" + SECONDS + ")?|[0-9]+M(" + SECONDS + ")?|" + SECONDS + ")";
    /**
     * The formats a string may be held to, each as the pattern that writes it (RFC 3339's dates and times, RFC 4122's
     * UUIDs): the form and each field's range (a day is 01-31 in any month).
     */
    private static final Map<String, String> FORMATS = Map.ofEntries(
            Map.entry("email", "[A-Za-z0-9._%+-]+@" + LABEL + "(\\." + LABEL + ")*\\.[A-Za-z]{2,}"),
            Map.entry("hostname", LABEL + "(\\." + LABEL + ")*"),
            Map.entry("ipv4", "(" + OCTET + "\\.){3}" + OCTET),
            Map.entry("ipv6", IPV6),
            Map.entry("uri", "[A-Za-z][A-Za-z0-9+.-]*:" + URI_CHARACTERS + "*"),
            Map.entry("uri-reference", URI_CHARACTERS + "*"),
            Map.entry("duration", "P(" + DURATION_DATE + "(" + DURATION_TIME + ")?|" + DURATION_TIME + ")"),
            Map.entry("date", "\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])"),
            Map.entry("time", "([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d{1,9})?(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)"),
            Map.entry("date-time", "\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])T([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d{1,9})?"
                    + "(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)"),
            Map.entry("uuid", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"));

    private final JsonNode root;
    /** References whose shapes are being compiled, and those compiled. */
    private final Map<String, JsonShape.Reference> resolving = new HashMap<>();
    private final Map<String, JsonShape> compiled = new HashMap<>();

    private JsonSchemas(JsonNode root) {
        this.root = root;
    }

    /**
     * The shape of {@code schema}.
     *
     * @throws EmberException naming the keyword, and where in the schema, that Ember cannot hold an output to
     */
    public static JsonShape compile(JsonNode schema) {
        return new JsonSchemas(schema).shape(schema, "#");
    }

    private JsonShape shape(JsonNode node, String at) {
        if (node.isBoolean()) {
            if (!node.booleanValue()) {
                throw refused(at, "the schema false, which no value matches");
            }
            return JsonShape.AnyValue.INSTANCE;
        }
        if (!node.isObject()) {
            throw refused(at, "a schema that is not an object (" + node + ")");
        }
        for (Iterator<String> names = node.fieldNames(); names.hasNext(); ) {
            String keyword = names.next();
            if (!HELD.contains(keyword) && !ANNOTATIONS.contains(keyword)) {
                throw refused(at, "the keyword \"" + keyword + "\"");
            }
        }
        // A keyword that stands for the whole schema ($ref, const, enum, a union) is held alone: what constrains beside it
        // would be set aside unheld, so it is refused (the type, which an enum's values already meet, may stand beside it).
        String whole = WHOLE.stream().filter(node::has).findFirst().orElse(null);
        if (whole != null) {
            for (Iterator<String> names = node.fieldNames(); names.hasNext(); ) {
                String keyword = names.next();
                if (HELD.contains(keyword) && !keyword.equals(whole) && !keyword.equals("type")) {
                    throw refused(at, "the keyword \"" + keyword + "\" beside \"" + whole + "\"");
                }
            }
        }
        if (node.has("$ref")) {
            return reference(node.get("$ref").asText(), at);
        }
        if (node.has("enum") || node.has("const")) {
            List<String> texts = new ArrayList<>();
            for (JsonNode value : node.has("const") ? List.of(node.get("const")) : iterable(node.get("enum"))) {
                texts.add(value.toString());
            }
            if (texts.isEmpty() || texts.size() > JsonShape.MAX_CHOICES) {
                throw refused(at, "an enum of " + texts.size() + " values (1 to " + JsonShape.MAX_CHOICES + " are held)");
            }
            return new JsonShape.Choice(texts);
        }
        for (String union : List.of("anyOf", "oneOf")) {
            if (node.has(union)) {
                List<JsonShape> alternatives = new ArrayList<>();
                int i = 0;
                for (JsonNode alternative : iterable(node.get(union))) {
                    alternatives.add(shape(alternative, at + "/" + union + "/" + i++));
                }
                if (alternatives.isEmpty()) {
                    throw refused(at, "an empty " + union);
                }
                return new JsonShape.AnyOf(alternatives);
            }
        }
        if (node.has("allOf")) {
            if (node.get("allOf").size() != 1) {
                throw refused(at, "allOf of " + node.get("allOf").size() + " schemas (one is held)");
            }
            return shape(node.get("allOf").get(0), at + "/allOf/0");
        }
        JsonNode type = node.get("type");
        if (type == null) {
            // A keyword constrains only values of its type, so an untyped schema with one takes any value of another
            // type too; the output is held to the types its keywords name (a valid instance still), so that no keyword
            // is set aside unheld.
            List<JsonShape> alternatives = new ArrayList<>();
            for (Map.Entry<String, List<String>> implied : TYPE_KEYWORDS) {
                if (implied.getValue().stream().anyMatch(node::has)) {
                    alternatives.add(typed(implied.getKey(), node, at));
                }
            }
            return alternatives.isEmpty() ? JsonShape.AnyValue.INSTANCE
                    : alternatives.size() == 1 ? alternatives.getFirst() : new JsonShape.AnyOf(alternatives);
        }
        if (type.isArray()) {
            List<JsonShape> alternatives = new ArrayList<>();
            for (JsonNode t : type) {
                alternatives.add(typed(t.asText(), node, at));
            }
            return alternatives.size() == 1 ? alternatives.getFirst() : new JsonShape.AnyOf(alternatives);
        }
        return typed(type.asText(), node, at);
    }

    private JsonShape typed(String type, JsonNode node, String at) {
        return switch (type) {
            case "object" -> object(node, at);
            case "array" -> array(node, at);
            case "string" -> string(node, at);
            case "integer" -> integer(node, at);
            case "number" -> number(node, at);
            case "boolean" -> new JsonShape.Choice(List.of("true", "false"));
            case "null" -> new JsonShape.Choice(List.of("null"));
            default -> throw refused(at, "the type \"" + type + "\"");
        };
    }

    private static final List<String> BOUNDS = List.of("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum");
    /** The keywords that constrain only values of one type, by that type, in the order an untyped schema's are tried. */
    private static final List<Map.Entry<String, List<String>>> TYPE_KEYWORDS = List.of(
            Map.entry("object", List.of("properties", "additionalProperties", "required", "minProperties", "maxProperties")),
            Map.entry("array", List.of("items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems")),
            Map.entry("string", List.of("minLength", "maxLength", "pattern", "format")),
            Map.entry("number", BOUNDS));
    /** The widest integers a bounded one is written within: 18 digits, as a long holds them. */
    private static final long WIDEST = 999_999_999_999_999_999L;

    /** An integer, within its bounds where it has any (written as the pattern of its decimal digits, {@link IntegerRange}). */
    private JsonShape integer(JsonNode node, String at) {
        if (BOUNDS.stream().noneMatch(node::has)) {
            return new JsonShape.NumberShape(true);
        }
        long low = -WIDEST, high = WIDEST;
        for (String bound : BOUNDS) {
            JsonNode value = node.get(bound);
            if (value == null) {
                continue;
            }
            if (!value.isNumber() || value.decimalValue().abs().compareTo(BigDecimal.valueOf(WIDEST)) > 0) {
                throw refused(at, bound + " = " + value + " (a number within 18 digits)");
            }
            BigDecimal v = value.decimalValue();  // exact: a double rounds the integers past 2^53
            switch (bound) {
                case "minimum" -> low = Math.max(low, v.setScale(0, RoundingMode.CEILING).longValueExact());
                case "exclusiveMinimum" -> low = Math.max(low, v.setScale(0, RoundingMode.FLOOR).longValueExact() + 1);
                case "maximum" -> high = Math.min(high, v.setScale(0, RoundingMode.FLOOR).longValueExact());
                default -> high = Math.min(high, v.setScale(0, RoundingMode.CEILING).longValueExact() - 1);
            }
        }
        if (low > high) {
            throw refused(at, "bounds no integer meets (" + low + " to " + high + ")");
        }
        return new JsonShape.PatternNumber(Regex.fullMatch(IntegerRange.pattern(low, high)));
    }

    /**
     * An array: its items of one shape, or first a tuple's items each of its own ({@code prefixItems}, or an array of
     * {@code items} as older drafts write it) and then the rest of {@code items} (or {@code additionalItems}), none
     * more where that is {@code false}.
     */
    private JsonShape array(JsonNode node, String at) {
        JsonNode tuple = node.has("prefixItems") ? node.get("prefixItems") : node.path("items").isArray() ? node.get("items") : null;
        String tupleAt = node.has("prefixItems") ? at + "/prefixItems" : at + "/items";
        List<JsonShape> prefix = new ArrayList<>();
        int i = 0;
        for (JsonNode item : iterable(tuple)) {
            prefix.add(shape(item, tupleAt + "/" + i++));
        }
        JsonNode rest = tuple == null ? node.get("items") : node.has("prefixItems") ? node.get("items") : node.get("additionalItems");
        String restAt = tuple == null || node.has("prefixItems") ? at + "/items" : at + "/additionalItems";
        int maxItems = count(node, "maxItems", Integer.MAX_VALUE, at);
        JsonShape items = JsonShape.AnyValue.INSTANCE;
        if (rest != null && rest.isBoolean() && !rest.booleanValue()) {
            maxItems = Math.min(maxItems, prefix.size());  // no item past the tuple's
        } else if (rest != null) {
            items = shape(rest, restAt);
        }
        int minItems = count(node, "minItems", 0, at);
        if (node.path("uniqueItems").asBoolean(false)) {
            if (!prefix.isEmpty() || !(items instanceof JsonShape.Choice choice)) {
                throw refused(at, "uniqueItems but over an enum's (or a const's, or a boolean's) values");
            }
            try {
                return new JsonShape.ArrayShape(choice, minItems, maxItems);
            } catch (IllegalArgumentException e) {
                throw new EmberException("JSON schema at " + at + ": " + e.getMessage() + ", so no output could match it");
            }
        }
        return new JsonShape.ArrayShape(prefix, items, minItems, maxItems);
    }

    /**
     * A number: any, or within its bounds, then written without an exponent ({@link DecimalRange}); the tightest of
     * minimum and exclusiveMinimum (and of the maxima) holds, the exclusive one where they are equal.
     */
    private JsonShape number(JsonNode node, String at) {
        if (BOUNDS.stream().noneMatch(node::has)) {
            return new JsonShape.NumberShape(false);
        }
        BigDecimal low = null, high = null;
        boolean lowInclusive = true, highInclusive = true;
        for (String bound : BOUNDS) {
            JsonNode value = node.get(bound);
            if (value == null) {
                continue;
            }
            if (!value.isNumber() || value.decimalValue().abs().compareTo(BigDecimal.valueOf(DecimalRange.WIDEST)) > 0) {
                throw refused(at, bound + " = " + value + " (a number within 18 digits)");
            }
            BigDecimal v = value.decimalValue();
            boolean inclusive = !bound.startsWith("exclusive");
            if (bound.endsWith("inimum")) {
                int order = low == null ? 1 : v.compareTo(low);
                if (order > 0 || order == 0 && !inclusive) {
                    low = v;
                    lowInclusive = inclusive;
                }
            } else {
                int order = high == null ? -1 : v.compareTo(high);
                if (order < 0 || order == 0 && !inclusive) {
                    high = v;
                    highInclusive = inclusive;
                }
            }
        }
        try {
            return new JsonShape.PatternNumber(Regex.fullMatch(DecimalRange.pattern(low, lowInclusive, high, highInclusive)));
        } catch (IllegalArgumentException e) {
            throw refused(at, "bounds no number meets (" + e.getMessage() + ")");
        }
    }

    /** A string: of bounded length, and held to a {@code pattern} or a {@code format} (one of them) where it names one. */
    private JsonShape string(JsonNode node, String at) {
        boolean pattern = node.has("pattern"), format = node.has("format");
        int minLength = count(node, "minLength", 0, at), maxLength = count(node, "maxLength", Integer.MAX_VALUE, at);
        if (!pattern && !format) {
            return new JsonShape.StringShape(minLength, maxLength);
        }
        if (pattern && format) {
            throw refused(at, "a string held both to a pattern and to a format");
        }
        if (format) {
            String name = node.get("format").asText();
            String written = FORMATS.get(name);
            if (written == null) {
                throw refused(at, "the format \"" + name + "\" (" + String.join(", ", new TreeSet<>(FORMATS.keySet())) + " are held)");
            }
            return new JsonShape.PatternString(Regex.fullMatch(written), minLength, maxLength);
        }
        try {
            return new JsonShape.PatternString(Regex.schemaPattern(node.get("pattern").asText()), minLength, maxLength);
        } catch (EmberException e) {
            throw refused(at, e.getMessage().replaceFirst(" is not supported$", ""));
        }
    }

    private JsonShape object(JsonNode node, String at) {
        JsonNode properties = node.path("properties");
        List<String> names = new ArrayList<>();
        List<JsonShape> values = new ArrayList<>();
        for (Iterator<String> it = properties.fieldNames(); it.hasNext(); ) {
            String name = it.next();
            names.add(name);
            values.add(shape(properties.get(name), at + "/properties/" + name));
        }
        if (names.size() > JsonShape.ObjectShape.MAX_NAMES) {
            throw refused(at, "an object of " + names.size() + " properties (up to " + JsonShape.ObjectShape.MAX_NAMES + " are held)");
        }
        long required = 0;
        for (JsonNode name : iterable(node.path("required"))) {
            int index = names.indexOf(name.asText());
            if (index < 0) {
                throw refused(at, "\"" + name.asText() + "\" required but not among the properties");
            }
            required |= 1L << index;
        }
        JsonNode additional = node.get("additionalProperties");
        JsonShape otherValues = additional == null || additional.isBoolean() ? JsonShape.AnyValue.INSTANCE
                : shape(additional, at + "/additionalProperties");
        int minProperties = count(node, "minProperties", 0, at), maxProperties = count(node, "maxProperties", Integer.MAX_VALUE, at);
        boolean noKeys = names.isEmpty() && additional != null && additional.isBoolean() && !additional.booleanValue();
        try {
            if (noKeys && minProperties > 0) {
                throw new IllegalArgumentException("an object of no keys cannot have at least " + minProperties);
            }
            return noKeys ? new JsonShape.Choice(List.of("{}"))
                    : new JsonShape.ObjectShape(names, values, required, otherValues, minProperties, maxProperties);
        } catch (IllegalArgumentException e) {
            throw new EmberException("JSON schema at " + at + ": " + e.getMessage() + ", so no output could match it");
        }
    }

    /**
     * The shape {@code ref} names, compiled once however often it is named. A reference met again while its own shape
     * is being compiled (a schema that contains itself) is held as a {@link JsonShape.Reference}, filled in once that
     * shape is known; where it is reached without an object or array opening first (an anyOf of itself), no value could
     * ever start, and it is refused.
     */
    private JsonShape reference(String ref, String at) {
        if (!ref.startsWith("#")) {
            throw refused(at, "the reference \"" + ref + "\" outside this schema");
        }
        JsonNode target = root.at(ref.substring(1));
        if (target.isMissingNode()) {
            throw refused(at, "the reference \"" + ref + "\", which points at nothing");
        }
        JsonShape known = compiled.get(ref);
        if (known != null) {
            return known;
        }
        JsonShape.Reference pending = resolving.get(ref);
        if (pending != null) {
            return pending;
        }
        pending = new JsonShape.Reference(ref);
        resolving.put(ref, pending);
        try {
            JsonShape shape = shape(target, ref);
            pending.resolve(shape);
            if (startsItself(shape, pending, new HashSet<>())) {
                throw refused(at, "the reference \"" + ref + "\", which reaches itself before any object or array opens "
                        + "(no value could ever start)");
            }
            compiled.put(ref, shape);
            return shape;
        } finally {
            resolving.remove(ref);
        }
    }

    /** Whether a value of {@code shape} may start with a value of {@code self} before reading a byte of its own. */
    private static boolean startsItself(JsonShape shape, JsonShape.Reference self, Set<JsonShape> seen) {
        if (shape == self) {
            return true;
        }
        if (!seen.add(shape)) {
            return false;
        }
        return switch (shape) {
            case JsonShape.AnyOf anyOf -> anyOf.alternatives.stream().anyMatch(a -> startsItself(a, self, seen));
            case JsonShape.Reference other -> startsItself(other.target(), self, seen);
            default -> false;
        };
    }

    private static int count(JsonNode node, String keyword, int otherwise, String at) {
        JsonNode value = node.get(keyword);
        if (value == null) {
            return otherwise;
        }
        if (!value.canConvertToInt() || value.asInt() < 0) {
            throw refused(at, keyword + " = " + value + " (a count of 0 or more)");
        }
        return value.asInt();
    }

    private static Iterable<JsonNode> iterable(JsonNode node) {
        return node == null ? List.of() : node::elements;
    }

    private static EmberException refused(String at, String what) {
        return new EmberException("JSON schema at " + at + ": " + what + " is not supported");
    }
}
