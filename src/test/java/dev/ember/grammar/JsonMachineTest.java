package dev.ember.grammar;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The JSON recognizer against Jackson's strict parser: random JSON texts and their one-character mutations are accepted
 * exactly when Jackson reads them as one value; pretty-printed texts pass; schema shapes accept their instances and
 * refuse the near misses.
 */
class JsonMachineTest {
    private static final ObjectMapper STRICT = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    /** A number past the recognizer's bounds: more than 20 digits before or after the point, or 4 in the exponent. */
    private static final java.util.regex.Pattern OVER_BOUNDS = java.util.regex.Pattern.compile(
            "\\d{21,}|[eE][+-]?\\d{5,}");
    private static final String INSERTED = "{}[]:,\"\\0123456789.eE+-tfnulrax";

    static boolean accepts(JsonMachine.State state, String text) {
        JsonMachine.State s = state;
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            s = s.read(b & 0xff);
            if (s == null) {
                return false;
            }
        }
        return s.accepting();
    }

    /** {@code text} with one character of {@code inserted} put in, one taken out, or a few repeated, at random. */
    static String mutate(SplittableRandom random, String text, String inserted) {
        StringBuilder mutant = new StringBuilder(text);
        int at = random.nextInt(text.length() + 1);
        switch (random.nextInt(3)) {
            case 0 -> mutant.insert(at, inserted.charAt(random.nextInt(inserted.length())));
            case 1 -> mutant.deleteCharAt(Math.min(at, text.length() - 1));
            default -> mutant.insert(at, mutant.substring(Math.min(at, text.length() - 1), Math.min(at + 3, text.length())));
        }
        return mutant.toString();
    }

    static boolean jacksonReads(String text) {
        try {
            return !STRICT.readTree(text.getBytes(StandardCharsets.UTF_8)).isMissingNode();
        } catch (Exception e) {
            return false;
        }
    }

    static JsonNode randomValue(SplittableRandom random, int depth) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        int kind = random.nextInt(depth > 3 ? 5 : 7);
        return switch (kind) {
            case 0 -> f.numberNode(random.nextInt(-100000, 100000));
            case 1 -> f.numberNode(random.nextBoolean() ? random.nextDouble() * 1e6 - 5e5 : random.nextGaussian() * 1e-8);
            case 2 -> f.textNode(randomString(random));
            case 3 -> f.booleanNode(random.nextBoolean());
            case 4 -> f.nullNode();
            case 5 -> {
                ArrayNode array = f.arrayNode();
                for (int i = random.nextInt(4); i > 0; i--) {
                    array.add(randomValue(random, depth + 1));
                }
                yield array;
            }
            default -> {
                ObjectNode object = f.objectNode();
                for (int i = random.nextInt(4); i > 0; i--) {
                    object.set(randomString(random), randomValue(random, depth + 1));
                }
                yield object;
            }
        };
    }

    private static String randomString(SplittableRandom random) {
        return randomText(random, "abc XYZ_09\"\\/\n\té漢🙂\u0001", 5);
    }

    /** Up to {@code most} characters (code points) of {@code alphabet}, each drawn alike. */
    static String randomText(SplittableRandom random, String alphabet, int most) {
        StringBuilder s = new StringBuilder();
        for (int i = random.nextInt(most + 1); i > 0; i--) {
            s.appendCodePoint(alphabet.codePointAt(alphabet.offsetByCodePoints(0, random.nextInt(alphabet.codePointCount(0, alphabet.length())))));
        }
        return s.toString();
    }

    /**
     * Values nested past {@link JsonMachine#MAX_DEPTH} frames are not followed: the byte that would open one more is
     * refused (so an output is closed rather than nested without end), and states stay shallow enough to compare.
     */
    @Test
    void nestingIsFollowedUpToTheDepthBound() {
        JsonMachine.State any = JsonMachine.State.value(JsonShape.AnyValue.INSTANCE);
        assertTrue(accepts(any, "[".repeat(400) + "]".repeat(400)));
        JsonMachine.State s = any;
        int opened = 0;
        while (s != null && opened < 5 * JsonMachine.MAX_DEPTH) {
            s = s.read('[');
            opened += s != null ? 1 : 0;
        }
        assertTrue(opened > JsonMachine.MAX_DEPTH / 2 && opened < JsonMachine.MAX_DEPTH, opened + " arrays opened");
        Gbnf nested = Gbnf.parse("root ::= \"(\" root \")\" | \"x\"\n");
        JsonMachine.State g = JsonMachine.State.grammar(nested);
        for (int i = 0; i < 5 * JsonMachine.MAX_DEPTH && g != null; i++) {
            g = g.read('(');
        }
        assertNull(g, "a grammar's nesting is bounded too");
    }

    @Test
    void randomTextsAndTheirMutationsAreAcceptedExactlyWhenJacksonReadsThem() throws Exception {
        SplittableRandom random = new SplittableRandom(1);
        JsonMachine.State any = JsonMachine.State.value(JsonShape.AnyValue.INSTANCE);
        int mutants = 0, validMutants = 0;
        for (int i = 0; i < 400; i++) {
            String text = STRICT.writeValueAsString(randomValue(random, 0));
            assertTrue(accepts(any, text), text);
            for (int m = 0; m < 10; m++) {
                String t = mutate(random, text, INSERTED);
                boolean expected = jacksonReads(t) && !OVER_BOUNDS.matcher(t).find();
                assertEquals(expected, accepts(any, t), "\"" + t + "\" from \"" + text + "\"");
                mutants++;
                validMutants += expected ? 1 : 0;
            }
        }
        assertTrue(validMutants > mutants / 20 && validMutants < mutants * 9 / 10, validMutants + " of " + mutants
                + " mutants valid: both kinds are checked");
    }

    @Test
    void prettyPrintedTextsPassAndRunsOfWhitespaceDoNot() throws Exception {
        SplittableRandom random = new SplittableRandom(2);
        JsonMachine.State any = JsonMachine.State.value(JsonShape.AnyValue.INSTANCE);
        for (int i = 0; i < 200; i++) {
            String pretty = STRICT.writerWithDefaultPrettyPrinter().writeValueAsString(randomValue(random, 0));
            assertTrue(accepts(any, pretty), pretty);
        }
        assertTrue(accepts(any, "{\n  \"a\": [1, 2]\n}"));
        for (String spaced : new String[] {"{\t}", "{  \"a\": 1}", "[1,\n\n2]", "[1\r\n]", "{\"a\":" + "\n" + " ".repeat(17) + "1}", "1 "}) {
            assertFalse(accepts(any, spaced), "whitespace beyond one space or a newline and indentation: " + spaced.replace("\n", "\\n"));
        }
        assertTrue(accepts(any, "{\"a\":\n" + " ".repeat(16) + "1}"));
        assertFalse(accepts(any, "1" + "0".repeat(20)), "numbers are bounded");
    }

    @ParameterizedTest
    @ValueSource(strings = {"{}", "[]", "\"\"", "0", "-0.5e-7", "true", "null", "{\"a\":{\"b\":[{}]}}", "\"\\u00e9\\n\""})
    void theSmallestTextsAreWhole(String text) {
        assertTrue(accepts(JsonMachine.State.value(JsonShape.AnyValue.INSTANCE), text));
        assertEquals(text.startsWith("{"), accepts(JsonMachine.State.value(JsonShape.ObjectShape.ANY), text), "json_object: objects only");
    }

    private static final String SCHEMA = """
            {"type": "object", "properties": {
               "name": {"type": "string", "maxLength": 5},
               "age": {"type": "integer"},
               "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "maxItems": 2},
               "pet": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {"kind": {"const": "cat"}}, "required": ["kind"]}]},
               "score": {"type": ["number", "null"]}},
             "required": ["name", "age"],
             "$defs": {"tag": {"enum": ["red", "green", 7]}}}""";

    @Test
    void aSchemasShapeTakesItsInstancesAndRefusesTheNearMisses() throws Exception {
        JsonMachine.State state = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree(SCHEMA)));
        for (String valid : new String[] {
                "{\"name\":\"Ann\",\"age\":3}",
                "{\"age\":-3,\"name\":\"\"}",
                "{\"name\":\"é漢\",\"age\":0,\"tags\":[\"red\",7],\"pet\":{\"kind\":\"cat\"},\"score\":1.5e3}",
                "{\"name\":\"x\", \"age\":1, \"pet\":null, \"score\":null, \"tags\":[]}"}) {
            assertTrue(accepts(state, valid), valid);
        }
        for (String invalid : new String[] {
                "{\"name\":\"Ann\"}",                                   // age required
                "{\"name\":\"Ann\",\"age\":3,\"other\":1}",             // no other keys
                "{\"name\":\"Ann\",\"age\":3.5}",                       // an integer
                "{\"name\":\"Annabel\",\"age\":3}",                     // maxLength 5
                "{\"name\":\"Ann\",\"age\":3,\"tags\":[\"red\",\"red\",\"red\"]}",  // maxItems 2
                "{\"name\":\"Ann\",\"age\":3,\"tags\":[\"blue\"]}",     // not in the enum
                "{\"name\":\"Ann\",\"age\":3,\"pet\":{}}",              // kind required
                "{\"name\":\"Ann\",\"age\":3,\"name\":\"Bo\"}",         // a key twice
                "{\"name\":\"Ann\",\"age\":3,\"score\":\"high\"}",      // a number or null
                "[\"name\"]"}) {
            assertFalse(accepts(state, invalid), invalid);
        }
    }

    /**
     * Schemas that contain themselves (pydantic writes a tree's node as a $ref to its own $defs entry; "#" names the
     * whole schema): random trees of up to five levels are taken, and each near miss (a node without its value, a value
     * of the wrong type, a key the node does not have) refused at any depth; an expression whose arguments are
     * expressions, through an anyOf.
     */
    @Test
    void schemasThatContainThemselvesTakeTheirInstancesAtAnyDepth() throws Exception {
        JsonMachine.State tree = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"$defs": {"Node": {"type": "object", "properties": {"value": {"type": "integer"},
                   "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
                   "required": ["value", "children"], "additionalProperties": false}},
                 "$ref": "#/$defs/Node"}""")));
        SplittableRandom random = new SplittableRandom(3);
        for (int i = 0; i < 60; i++) {
            String text = STRICT.writeValueAsString(randomNode(random, 0));
            assertTrue(accepts(tree, text), text);
            int at = text.lastIndexOf("\"value\":");
            for (String miss : new String[] {text.substring(0, at) + "\"valu\":" + text.substring(at + 8),
                    text.substring(0, at + 8) + "\"7\"" + text.substring(at + 8).replaceFirst("^-?\\d+", ""),
                    text.substring(0, at) + "\"extra\":1," + text.substring(at)}) {
                assertFalse(accepts(tree, miss), miss);
            }
        }
        JsonMachine.State list = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"type": "object", "properties": {"head": {"type": "string"}, "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
                 "required": ["head", "next"]}""")));
        assertTrue(accepts(list, "{\"head\":\"a\",\"next\":{\"head\":\"b\",\"next\":{\"head\":\"c\",\"next\":null}}}"));
        assertFalse(accepts(list, "{\"head\":\"a\",\"next\":{\"head\":\"b\",\"next\":{\"head\":3,\"next\":null}}}"));
        JsonMachine.State expression = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"$defs": {"Expr": {"anyOf": [{"type": "integer"}, {"$ref": "#/$defs/Op"}]},
                           "Op": {"type": "object", "properties": {"op": {"enum": ["+", "*"]},
                                  "args": {"type": "array", "items": {"$ref": "#/$defs/Expr"}, "minItems": 2}},
                                  "required": ["op", "args"], "additionalProperties": false}},
                 "$ref": "#/$defs/Expr"}""")));
        assertTrue(accepts(expression, "{\"op\":\"+\",\"args\":[1,{\"op\":\"*\",\"args\":[2,3]}]}"));
        assertTrue(accepts(expression, "42"));
        assertFalse(accepts(expression, "{\"op\":\"+\",\"args\":[1,{\"op\":\"*\",\"args\":[2]}]}"), "minItems 2, inside");
        assertFalse(accepts(expression, "{\"op\":\"-\",\"args\":[1,2]}"));
    }

    private static Map<String, Object> randomNode(SplittableRandom random, int depth) {
        Map<String, Object> node = new java.util.LinkedHashMap<>();
        List<Object> children = new ArrayList<>();
        for (int c = depth < 4 ? random.nextInt(4) : 0; c > 0; c--) {
            children.add(randomNode(random, depth + 1));
        }
        if (random.nextBoolean()) {
            node.put("value", random.nextInt(-99, 100));
            node.put("children", children);
        } else {
            node.put("children", children);
            node.put("value", random.nextInt(-99, 100));
        }
        return node;
    }

    /** The formats pydantic writes for e-mail addresses, URLs, host names, IP addresses and durations; lengths beside them. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource(delimiter = '|', textBlock = """
            email         | ann.lee+news@mail.example.org, a@b.io                    | ann@, @example.org, ann@example, ann lee@example.org
            uri           | https://example.org/a?b=c#d, mailto:ann@example.org      | example.org, 1http://x, https://a b
            uri-reference | /a/b?c=d, https://x.org, ''                              | a b, a{b}
            hostname      | example.org, a-b.c1, localhost                           | -a.org, a..b, a_b.org
            ipv4          | 192.168.0.1, 0.0.0.0, 255.255.255.255                   | 256.1.1.1, 1.2.3, 01.2.3.4
            ipv6          | 2001:db8::1, ::1, ::, fe80::1:2:3:4, 1:2:3:4:5:6:7:8     | 1:2:3:4:5:6:7:8:9, 1::2::3, 12345::1, g::1
            duration      | P3Y6M4DT12H30M5S, PT0.5S, P2W, P1D                       | P, PT, P1H, 3D""")
    void formatsTakeTheirTextsAndRefuseOthers(String format, String valid, String invalid) throws Exception {
        JsonMachine.State state = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree(
                "{\"type\": \"string\", \"format\": \"" + format + "\"}")));
        for (String text : valid.split(", ")) {
            String t = text.equals("''") ? "" : text;
            assertTrue(accepts(state, "\"" + t + "\""), format + ": " + t);
        }
        for (String text : invalid.split(", ")) {
            assertFalse(accepts(state, "\"" + text + "\""), format + ": " + text);
        }
    }

    /** A length beside a pattern or a format (pydantic's HttpUrl has both), counted in characters. */
    @Test
    void aPatternedStringHoldsItsLength() throws Exception {
        JsonMachine.State url = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"type": "string", "format": "uri", "minLength": 12, "maxLength": 20}""")));
        assertTrue(accepts(url, "\"https://ab.org\""));
        assertFalse(accepts(url, "\"http://a.o\""), "11 characters");
        assertFalse(accepts(url, "\"https://example.org/abc\""), "23 characters");
        JsonMachine.State code = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"type": "string", "pattern": "^(é|[a-z])+$", "maxLength": 3}""")));
        assertTrue(accepts(code, "\"éé\""), "two characters of two bytes each");
        assertTrue(accepts(code, "\"aéb\""));
        assertFalse(accepts(code, "\"aébc\""));

        // A pattern of at most 7 characters with a minLength of 6: a prefix that could not grow to six is not taken.
        JsonMachine.State sized = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"type": "string", "pattern": "^(ab|abcdefg)$", "minLength": 6}""")));
        assertTrue(accepts(sized, "\"abcdefg\""));
        JsonMachine.State afterAb = sized;
        for (char c : "\"ab".toCharArray()) {
            afterAb = afterAb.read(c);
        }
        assertNotNull(afterAb, "ab may still become abcdefg");
        assertNull(afterAb.read('"'), "but not end there");
        JsonMachine.State branches = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"type": "string", "pattern": "^(abc|xbcdefg)$", "minLength": 6}"""))).read('"');
        assertNull(branches.read('a'), "abc can never be six characters long");
        assertNotNull(branches.read('x'));
        JsonMachine.State tooShort = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"type": "string", "pattern": "^[a-c]{2}$", "minLength": 3}""")));
        assertNull(tooShort.read('"'), "a pattern that cannot reach the least length never opens");
    }

    /** Several calls where one may be made: one to the most, each two apart by the separator, the closing text last. */
    @Test
    void aRepetitionTakesOneToItsMostValuesBetweenItsSeparators() throws Exception {
        JsonShape call = JsonSchemas.compile(STRICT.readTree("{\"type\": \"object\", \"properties\": {\"n\": {\"type\": \"integer\"}}}"));
        JsonMachine.State hermes = JsonMachine.State.repeated("<c>", call, "</c><c>", "</c>", 3);
        assertTrue(accepts(hermes, "<c>{\"n\":1}</c>"));
        assertTrue(accepts(hermes, "<c>{\"n\":1}</c><c>{}</c><c>{\"n\":3}</c>"));
        assertFalse(accepts(hermes, "<c>{}</c><c>{}</c><c>{}</c><c>{}</c>"), "at most three");
        assertFalse(accepts(hermes, "<c></c>"), "at least one");
        assertFalse(accepts(hermes, "<c>{}</c><c>"));
        JsonMachine.State llama = JsonMachine.State.repeated("", call, "; ", "", 2);
        assertTrue(accepts(llama, "{\"n\":1}"));
        assertTrue(accepts(llama, "{\"n\":1}; {}"));
        assertFalse(accepts(llama, "{\"n\":1}; "));
        assertFalse(accepts(llama, "{}; {}; {}"));
    }

    /** Tuples (pydantic's Tuple[int, str] as prefixItems; older drafts' items as an array with additionalItems). */
    /**
     * minProperties and maxProperties (pydantic's dict with a length): random objects are taken exactly when their key
     * count lies within the bounds (and, with named keys, the required ones are there); every object begun can be
     * closed, since a key that would leave no room for the required ones is not offered; bounds no object could meet are
     * refused.
     */
    @Test
    void anObjectsKeyCountIsHeld() throws Exception {
        SplittableRandom random = new SplittableRandom(5);
        for (int trial = 0; trial < 60; trial++) {
            int least = random.nextInt(0, 4), most = least + random.nextInt(0, 3);
            JsonMachine.State dict = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree(
                    "{\"type\": \"object\", \"additionalProperties\": {\"type\": \"integer\"}, \"minProperties\": " + least
                            + ", \"maxProperties\": " + most + "}")));
            long required = random.nextLong(1 << 5) & random.nextLong(1 << 5);
            if (Long.bitCount(required) > most) {
                continue;
            }
            StringBuilder schema = new StringBuilder("{\"properties\": {");
            List<String> requiredNames = new ArrayList<>();
            for (int i = 0; i < 5; i++) {
                schema.append(i > 0 ? ", " : "").append("\"p").append(i).append("\": {\"type\": \"integer\"}");
                if ((required >> i & 1) != 0) {
                    requiredNames.add("\"p" + i + "\"");
                }
            }
            schema.append("}, \"required\": ").append(requiredNames).append(", \"minProperties\": ").append(least)
                    .append(", \"maxProperties\": ").append(most).append("}");
            JsonMachine.State named = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree(schema.toString())));
            for (int sample = 0; sample < 40; sample++) {
                int keys = random.nextInt(0, 6);
                StringBuilder dictText = new StringBuilder("{"), namedText = new StringBuilder("{");
                List<Integer> order = new ArrayList<>(List.of(0, 1, 2, 3, 4));
                java.util.Collections.shuffle(order, new java.util.Random(random.nextLong()));
                long written = 0;
                for (int k = 0; k < keys; k++) {
                    dictText.append(k > 0 ? "," : "").append("\"k").append(k).append("\":").append(k);
                    namedText.append(k > 0 ? "," : "").append("\"p").append(order.get(k)).append("\":").append(k);
                    written |= 1L << order.get(k);
                    // Whatever was written so far that the machine took, the object can go on or close.
                    JsonMachine.State begun = prefix(named, namedText.toString());
                    if (begun != null) {
                        assertTrue(begun.read(',') != null || begun.read('}') != null, "stuck after " + namedText + " of " + schema);
                    }
                }
                boolean within = keys >= least && keys <= most;
                assertEquals(within, accepts(dict, dictText + "}"), dictText + "} against " + least + ".." + most);
                assertEquals(within && (written & required) == required, accepts(named, namedText + "}"), namedText + "} against " + schema);
            }
        }
        for (String impossible : new String[] {
                "{\"minProperties\": 3, \"maxProperties\": 2}",
                "{\"properties\": {\"a\": {}, \"b\": {}}, \"minProperties\": 3}",
                "{\"properties\": {\"a\": {}, \"b\": {}}, \"required\": [\"a\", \"b\"], \"maxProperties\": 1}",
                "{\"additionalProperties\": false, \"minProperties\": 1}"}) {
            dev.ember.EmberException e = assertThrows(dev.ember.EmberException.class, () -> JsonSchemas.compile(STRICT.readTree(impossible)));
            assertTrue(e.getMessage().contains("no output could match it"), e.getMessage());
        }
    }

    /**
     * An untyped schema's keywords are held, the output taking the types they name (keywords of another type would take
     * any value of this one; before, such a schema took any value at all).
     */
    @Test
    void anUntypedSchemasKeywordsAreHeldByTheTypesTheyName() throws Exception {
        JsonMachine.State integers = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree(
                "{\"additionalProperties\": {\"type\": \"integer\"}}")));
        assertTrue(accepts(integers, "{\"a\":1,\"b\":-2}"));
        assertFalse(accepts(integers, "{\"a\":\"x\"}"));
        assertFalse(accepts(integers, "5"));
        JsonMachine.State either = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("{\"minLength\": 2, \"maxItems\": 1}")));
        for (String valid : new String[] {"\"ab\"", "[]", "[{\"x\":null}]"}) {
            assertTrue(accepts(either, valid), valid);
        }
        for (String invalid : new String[] {"\"a\"", "[1,2]", "true", "{}"}) {
            assertFalse(accepts(either, invalid), invalid);
        }
        assertTrue(accepts(JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("{\"description\": \"any\"}"))), "[true]"));
    }

    /**
     * uniqueItems over an enum (pydantic's set of an enum, through its $defs): random arrays of the choices are taken
     * exactly when no choice comes twice and their count is within the bounds; uniqueItems over other items is refused
     * by name, and more distinct items than choices as no output could match.
     */
    @Test
    void distinctItemsOfAnEnumAreHeld() throws Exception {
        JsonMachine.State set = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"$defs": {"Tag": {"enum": ["ab", "abc", 7, null]}},
                 "type": "array", "items": {"$ref": "#/$defs/Tag"}, "uniqueItems": true, "minItems": 1}""")));
        String[] tags = {"\"ab\"", "\"abc\"", "7", "null"};
        SplittableRandom random = new SplittableRandom(9);
        for (int trial = 0; trial < 400; trial++) {
            int n = random.nextInt(0, 6);
            List<String> items = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                items.add(tags[random.nextInt(tags.length)]);
            }
            String text = "[" + String.join(random.nextBoolean() ? "," : ", ", items) + "]";
            boolean distinct = items.stream().distinct().count() == items.size();
            assertEquals(distinct && n >= 1, accepts(set, text), text);
        }
        assertFalse(accepts(set, "[\"a\"]"));
        dev.ember.EmberException strings = assertThrows(dev.ember.EmberException.class, () -> JsonSchemas.compile(STRICT.readTree(
                "{\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"uniqueItems\": true}")));
        assertTrue(strings.getMessage().contains("uniqueItems"), strings.getMessage());
        dev.ember.EmberException tooMany = assertThrows(dev.ember.EmberException.class, () -> JsonSchemas.compile(STRICT.readTree(
                "{\"items\": {\"enum\": [1, 2]}, \"uniqueItems\": true, \"minItems\": 3}")));
        assertTrue(tooMany.getMessage().contains("no output could match it"), tooMany.getMessage());
        assertTrue(accepts(JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree(
                "{\"items\": {\"type\": \"string\"}, \"uniqueItems\": false}"))), "[\"a\",\"a\"]"));
    }

    /** The state after {@code text}, or null where the machine refused a byte of it. */
    private static JsonMachine.State prefix(JsonMachine.State state, String text) {
        JsonMachine.State s = state;
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            s = s.read(b & 0xff);
            if (s == null) {
                return null;
            }
        }
        return s;
    }

    @Test
    void tuplesHoldEachItemToItsOwnShape() throws Exception {
        JsonMachine.State pair = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2, "maxItems": 2}""")));
        assertTrue(accepts(pair, "[1,\"a\"]"));
        assertTrue(accepts(pair, "[ -7 , \"\" ]"));
        for (String invalid : new String[] {"[\"a\",1]", "[1]", "[1,\"a\",2]", "[]"}) {
            assertFalse(accepts(pair, invalid), invalid);
        }
        JsonMachine.State headed = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"prefixItems": [{"const": "head"}], "items": {"type": "boolean"}}""")));
        assertTrue(accepts(headed, "[\"head\",true,false]"));
        assertTrue(accepts(headed, "[]"));
        assertFalse(accepts(headed, "[\"head\",1]"));
        JsonMachine.State closed = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"type": "array", "items": [{"type": "integer"}, {"type": "boolean"}], "additionalItems": false}""")));
        assertTrue(accepts(closed, "[1,true]"));
        assertTrue(accepts(closed, "[1]"));
        assertFalse(accepts(closed, "[1,true,2]"));
        assertFalse(accepts(closed, "[true]"));
    }

    /** Bounds on a number that need not be an integer (pydantic's confloat): the numbers inside, written without an exponent. */
    @Test
    void boundedNumbersTakeWhatLiesWithinTheirBounds() throws Exception {
        JsonMachine.State state = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"type": "object", "properties": {"p": {"type": "number", "minimum": 0, "maximum": 1},
                 "t": {"type": "number", "exclusiveMinimum": -273.15}}}""")));
        for (String valid : new String[] {"{\"p\":0}", "{\"p\":0.5}", "{\"p\":1}", "{\"p\":1.000}", "{\"p\":0.0001}",
                "{\"t\":-273.149}", "{\"t\":25}", "{\"t\":123456789.5}"}) {
            assertTrue(accepts(state, valid), valid);
        }
        for (String invalid : new String[] {"{\"p\":1.0001}", "{\"p\":-0.1}", "{\"p\":2}", "{\"p\":5e-1}", "{\"p\":-0}",
                "{\"t\":-273.15}", "{\"t\":-300}", "{\"t\":-273.150}"}) {
            assertFalse(accepts(state, invalid), invalid);
        }
    }

    @Test
    void stringsHeldToAPatternOrAFormatTakeWhatMatches() throws Exception {
        JsonMachine.State state = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{2}-\\\\d{3}$"},
                 "has": {"type": "string", "pattern": "ab"}, "when": {"type": "string", "format": "date-time"},
                 "day": {"type": "string", "format": "date"}, "id": {"type": "string", "format": "uuid"}}}""")));
        for (String valid : new String[] {"{\"code\":\"AB-123\"}", "{\"has\":\"xxabyy\"}", "{\"has\":\"ab\"}",
                "{\"when\":\"2026-12-05T01:30:00Z\"}", "{\"when\":\"2026-02-28T23:59:59.123+01:00\"}",
                "{\"day\":\"2026-12-05\"}", "{\"id\":\"123e4567-e89b-12d3-a456-426614174000\"}"}) {
            assertTrue(accepts(state, valid), valid);
        }
        for (String invalid : new String[] {"{\"code\":\"AB-12\"}", "{\"code\":\"ab-123\"}", "{\"has\":\"xyz\"}",
                "{\"when\":\"2026-13-05T01:30:00Z\"}", "{\"when\":\"2026-12-05 01:30:00\"}", "{\"day\":\"2026-12-5\"}",
                "{\"id\":\"123E4567-e89b-12d3-a456-426614174000\"}", "{\"has\":\"a\\\\u0062\"}"}) {
            assertFalse(accepts(state, invalid), invalid);
        }
        JsonMachine.State regex = JsonMachine.State.pattern(Regex.fullMatch("(yes|no)(, because [a-z ]{1,20})?"));
        assertTrue(accepts(regex, "yes"));
        assertTrue(accepts(regex, "no, because it rains"));
        assertFalse(accepts(regex, "no, because"));
        assertFalse(accepts(regex, "maybe"));
    }

    @Test
    void anIntegersBoundsAreHeld() throws Exception {
        JsonMachine.State state = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0, "maximum": 120},
                 "delta": {"type": "integer", "exclusiveMinimum": -10, "exclusiveMaximum": 10}}}""")));
        for (String valid : new String[] {"{\"age\":0}", "{\"age\":120}", "{\"age\":42, \"delta\":-9}", "{\"delta\":9}",
                "{\"delta\":0}"}) {
            assertTrue(accepts(state, valid), valid);
        }
        for (String invalid : new String[] {"{\"age\":121}", "{\"age\":-1}", "{\"age\":007}", "{\"age\":4.5}",
                "{\"delta\":10}", "{\"delta\":-10}", "{\"age\":1e2}"}) {
            assertFalse(accepts(state, invalid), invalid);
        }
    }

    /** Bounds past 2^53, which a double cannot hold exactly, are held to the integer written. */
    @Test
    void anIntegersLargeBoundsAreHeldExactly() throws Exception {
        JsonMachine.State state = JsonMachine.State.value(JsonSchemas.compile(STRICT.readTree("""
                {"type": "integer", "minimum": 9007199254740993, "maximum": 9007199254740995}""")));
        for (String valid : new String[] {"9007199254740993", "9007199254740994", "9007199254740995"}) {
            assertTrue(accepts(state, valid), valid);
        }
        for (String invalid : new String[] {"9007199254740992", "9007199254740996"}) {
            assertFalse(accepts(state, invalid), invalid);
        }
    }

    @Test
    void aChoiceOfTextsTakesEachWholeAndNothingElse() {
        JsonMachine.State choice = JsonMachine.State.text(new JsonShape.Choice(java.util.List.of("yes", "yes please", "no", "")));
        for (String text : new String[] {"yes", "yes please", "no", ""}) {
            assertTrue(accepts(choice, text), text);
        }
        for (String text : new String[] {"ye", "yes ", "No", "\"no\"", "nope"}) {
            assertFalse(accepts(choice, text), text);
        }
    }
}
