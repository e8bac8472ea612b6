package dev.ember.grammar;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;
import dev.ember.sampling.OutputGrammar;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import dev.ember.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.BitSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Grammars over a real vocabulary (the default model's): each step's mask is exactly the tokens whose bytes keep the
 * output in the grammar (checked token by token against the recognizer), and outputs drawn from random logits through
 * a {@link Sampler} holding the grammar are whole JSON texts of the schema.
 */
class TokenGrammarTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static Tokenizer tokenizer;
    private static Grammars grammars;
    private static int eos;

    @BeforeAll
    static void load() {
        tokenizer = Tokenizer.load(Path.of("models", "ember-tiny"));
        eos = tokenizer.stopTokenIds().iterator().next();
        grammars = new Grammars(tokenizer, Set.of(eos));
    }

    @AfterAll
    static void close() {
        tokenizer.close();
    }

    /** Every string bounded, so that every output of the schema ends within a few hundred tokens. */
    private static final String BOUNDED = """
            {"type": "object", "properties": {
               "name": {"type": "string", "maxLength": 8},
               "age": {"type": "integer"},
               "mood": {"enum": ["calm", "wild", null]},
               "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "maxItems": 3},
               "score": {"type": "number", "minimum": -0.5, "exclusiveMaximum": 1},
               "ok": {"type": "boolean"},
               "colors": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "uniqueItems": true},
               "flags": {"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"type": "boolean"},
                         "c": {"type": "null"}}, "required": ["c"], "minProperties": 2, "maxProperties": 2}},
             "required": ["name", "age", "ok"]}""";

    private static float[] randomRow(SplittableRandom random, int vocab) {
        float[] row = new float[vocab];
        for (int i = 0; i < vocab; i++) {
            row[i] = (float) random.nextGaussian() * 4;
        }
        return row;
    }

    /** Draws until an end-of-sequence token or {@code limit} tokens; returns the output's bytes, or null at the limit. */
    private static byte[] generate(OutputGrammar grammar, long seed, int limit) {
        int vocab = tokenizer.vocabSize();
        Sampler sampler = new Sampler(SamplingParams.greedy(limit).withTemperature(1f).withSeed(seed).withGrammar(grammar), vocab);
        SplittableRandom random = new SplittableRandom(seed);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < limit; i++) {
            int token = sampler.sample(randomRow(random, vocab), 0);
            if (token == eos) {
                return out.toByteArray();
            }
            out.writeBytes(tokenizer.tokenBytes(token));
        }
        return null;
    }

    /** A bounded GBNF grammar, and the regular expression of the same texts. */
    private static final String GBNF = """
            root ::= "(" word ("," " "? word){0,3} ")" | "none"
            word ::= [a-zé]{1,5}
            """;
    private static final String GBNF_AS_REGEX = "\\([a-zé]{1,5}(, ?[a-zé]{1,5}){0,3}\\)|none";

    @ParameterizedTest
    @CsvSource({"schema, 40", "object, 40", "choice, 40", "regex, 40", "gbnf, 40"})
    void outputsDrawnFromRandomLogitsAreWholeTextsOfTheGrammar(String kind, int runs) throws Exception {
        OutputGrammar grammar = switch (kind) {
            case "schema" -> grammars.jsonSchema(JSON.readTree(BOUNDED));
            case "object" -> grammars.jsonObject();
            case "gbnf" -> grammars.gbnf(GBNF);
            case "regex" -> grammars.regex("(\\d{3}-){2}[A-Z]{2,4}|none");
            default -> grammars.choice(List.of("red", "green", "blue-green", "a \"quoted\" one"));
        };
        int ended = 0;
        for (int run = 0; run < runs; run++) {
            byte[] output = generate(grammar, run, 600);
            if (output == null) {
                assertFalse(kind.equals("schema") || kind.equals("regex") || kind.equals("gbnf"), kind + ": every output of a bounded grammar ends");
                continue;
            }
            ended++;
            String text = new String(output, java.nio.charset.StandardCharsets.UTF_8);
            switch (kind) {
                case "choice" -> assertTrue(List.of("red", "green", "blue-green", "a \"quoted\" one").contains(text), text);
                case "regex" -> assertTrue(text.matches("(\\d{3}-){2}[A-Z]{2,4}|none"), text);
                case "gbnf" -> assertTrue(text.matches(GBNF_AS_REGEX), text);
                default -> {
                    JsonNode value = JSON.readTree(text);
                    assertTrue(value.isObject(), text);
                    if (kind.equals("schema")) {
                        String name = value.get("name").asText();  // maxLength counts characters, not UTF-16 units
                        assertTrue(value.get("name").isTextual() && name.codePointCount(0, name.length()) <= 8, text);
                        assertTrue(value.get("age").isIntegralNumber(), text);
                        assertTrue(value.get("ok").isBoolean(), text);
                        assertTrue(!value.has("mood") || value.get("mood").isNull() || Set.of("calm", "wild").contains(value.get("mood").asText()), text);
                        assertTrue(!value.has("tags") || value.get("tags").size() <= 3, text);
                        JsonNode colors = value.path("colors");
                        assertTrue(colors.isMissingNode() || colors.size() == java.util.stream.StreamSupport.stream(
                                colors.spliterator(), false).distinct().count(), text);
                        JsonNode flags = value.path("flags");
                        assertTrue(flags.isMissingNode() || flags.size() == 2 && flags.has("c"), text);
                        assertTrue(!value.has("score") || value.get("score").isNumber() && value.get("score").asDouble() >= -0.5
                                && value.get("score").asDouble() < 1, text);
                    }
                }
            }
        }
        assertTrue(ended >= runs / 4, kind + ": " + ended + " of " + runs + " outputs ended within 600 tokens");
    }

    /** Strings long enough for a run of their lengths to share one mask ({@link JsonMachine.State#representative}). */
    private static final String LONG_STRINGS = """
            {"type": "array", "items": {"type": "string", "minLength": 5, "maxLength": 90}, "maxItems": 3}""";

    /** A tree whose nodes are named by a reference to themselves. */
    private static final String RECURSIVE = """
            {"$defs": {"Node": {"type": "object", "properties": {"id": {"type": "integer"},
               "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}, "maxItems": 2}}, "required": ["id"]}},
             "$ref": "#/$defs/Node"}""";

    /** Formatted strings of bounded length: their lengths share masks as plain strings' do. */
    private static final String LONG_URIS = """
            {"type": "array", "items": {"type": "string", "format": "uri", "minLength": 5, "maxLength": 60}, "maxItems": 2}""";

    /** Along random outputs, each mask against every token read through the recognizer by itself. */
    @ParameterizedTest
    @ValueSource(strings = {BOUNDED, LONG_STRINGS, RECURSIVE, LONG_URIS})
    void eachMaskIsExactlyTheTokensThatKeepTheOutputInTheGrammar(String schema) throws Exception {
        masksAlongRandomOutputsAreExact((TokenGrammar) grammars.jsonSchema(JSON.readTree(schema)),
                JsonMachine.State.value(JsonSchemas.compile(JSON.readTree(schema))), 3);
    }

    /**
     * A bounded pattern string whose match still needs many characters (40 digits after the letters): a run of its lengths
     * may share a mask only where every token, and the digits still to come after it, fit under maxLength.
     */
    @Test
    void aLongPatternStringsMasksKeepRoomForTheRestOfItsMatch() throws Exception {
        String schema = """
                {"type": "string", "pattern": "^[a-z]*[0-9]{40}$", "maxLength": 100}""";
        TokenGrammar grammar = (TokenGrammar) grammars.jsonSchema(JSON.readTree(schema));
        JsonMachine.State state = JsonMachine.State.value(JsonSchemas.compile(JSON.readTree(schema)));
        OutputGrammar.Matcher matcher = grammar.start();
        int quote = tokenizer.encode("\"", false)[0];
        int letter = tokenizer.encode("a", false)[0];
        assertArrayEquals("\"".getBytes(), tokenizer.tokenBytes(quote));
        assertArrayEquals("a".getBytes(), tokenizer.tokenBytes(letter));
        matcher.accept(quote);
        state = state.read('"');
        BitSet allowed = new BitSet();
        for (int i = 1; i <= 60; i++) {  // "a" one at a time: 60 letters leave exactly room for the 40 digits
            matcher.accept(letter);
            state = state.read('a');
            matcher.allowedTokens(allowed);
            for (int token = 0; token < tokenizer.vocabSize(); token++) {
                byte[] bytes = tokenizer.tokenBytes(token);
                JsonMachine.State s = token == eos || bytes == null || bytes.length == 0 ? null : state;
                for (int b = 0; s != null && b < bytes.length; b++) {
                    s = s.read(bytes[b] & 0xff);
                }
                assertEquals(s != null, allowed.get(token), "token " + token + " (" + tokenizer.tokenText(token) + ") after " + i + " letters");
            }
        }
    }

    @Test
    void eachMaskOfAGbnfGrammarIsExactlyTheTokensThatKeepTheOutputInIt() {
        masksAlongRandomOutputsAreExact((TokenGrammar) grammars.gbnf(GBNF), JsonMachine.State.grammar(Gbnf.parse(GBNF)), 12);
    }

    /** Along {@code runs} random outputs, each mask against every token read through the recognizer by itself. */
    private static void masksAlongRandomOutputsAreExact(TokenGrammar grammar, JsonMachine.State start, int runs) {
        SplittableRandom random = new SplittableRandom(7);
        BitSet allowed = new BitSet();
        int checkedStates = 0;
        for (int run = 0; run < runs; run++) {
            OutputGrammar.Matcher matcher = grammar.start();
            JsonMachine.State state = start;
            for (int step = 0; step < 80 && state != null; step++) {
                matcher.allowedTokens(allowed);
                for (int token = 0; token < tokenizer.vocabSize(); token++) {
                    byte[] bytes = tokenizer.tokenBytes(token);
                    boolean expected;
                    if (token == eos) {
                        expected = state.accepting();
                    } else {
                        JsonMachine.State s = bytes == null || bytes.length == 0 ? null : state;
                        for (int i = 0; s != null && i < bytes.length; i++) {
                            s = s.read(bytes[i] & 0xff);
                        }
                        expected = s != null;
                    }
                    assertEquals(expected, allowed.get(token), "token " + token + " (" + tokenizer.tokenText(token) + ") at step " + step);
                }
                checkedStates++;
                int[] choices = allowed.stream().toArray();
                int token = choices[random.nextInt(choices.length)];
                matcher.accept(token);
                if (token == eos) {
                    break;
                }
                for (byte b : tokenizer.tokenBytes(token)) {
                    state = state.read(b & 0xff);
                }
            }
        }
        assertTrue(checkedStates > 20);
    }

    @Test
    void aSamplerWithAGrammarDrawsOnTheHostAfterItsLastTokenAndNeverSpeculates() {
        Sampler sampler = new Sampler(SamplingParams.greedy(8).withGrammar(grammars.jsonObject()), tokenizer.vocabSize());
        assertFalse(sampler.isPlainTopKTopP());
        assertTrue(sampler.observesTokens());
        assertFalse(sampler.canSpeculate());
        float[] row = new float[tokenizer.vocabSize()];
        row[eos] = 100;  // the model wants to stop at once: the grammar holds it to an object first
        int first = sampler.sample(row.clone(), 0);
        assertNotEquals(eos, first);
        assertTrue(new String(tokenizer.tokenBytes(first)).strip().startsWith("{") || new String(tokenizer.tokenBytes(first)).isBlank());
    }

    /**
     * A device that draws a grammar's row masks it with {@link Sampler#allowedTokens} and tells the sampler with
     * {@link Sampler#drewElsewhere}: along an output, its masks and draws are those of a sampler drawing on the host.
     */
    @Test
    void aDrawMadeElsewhereMovesTheGrammarAsADrawOnTheHostDoes() {
        int vocab = tokenizer.vocabSize();
        SamplingParams params = SamplingParams.greedy(64).withGrammar(grammars.gbnf(GBNF));
        Sampler host = new Sampler(params, vocab), device = new Sampler(params, vocab);
        assertTrue(device.isPlainButForItsGrammar());
        assertFalse(new Sampler(params.withLogprobs(1), vocab).isPlainButForItsGrammar(), "logprobs are the raw row's");
        assertFalse(new Sampler(params.withRepetitionPenalty(1.2f), vocab).isPlainButForItsGrammar());
        assertFalse(new Sampler(SamplingParams.greedy(8), vocab).isPlainButForItsGrammar(), "no grammar");
        SplittableRandom random = new SplittableRandom(21);
        for (int step = 0; step < 40; step++) {
            float[] row = randomRow(random, vocab);
            BitSet mask = (BitSet) device.allowedTokens().clone();
            int drawn = -1;
            for (int t = mask.nextSetBit(0); t >= 0; t = mask.nextSetBit(t + 1)) {  // the device's greedy draw
                drawn = drawn < 0 || row[t] > row[drawn] ? t : drawn;
            }
            assertEquals(host.sample(row.clone(), 0), drawn, "step " + step);
            device.drewElsewhere(drawn);
            if (drawn == eos) {
                return;
            }
        }
        fail("a bounded grammar's output ends within 40 tokens");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', textBlock = """
            {"type": "string", "pattern": "(?=a)b"}                         | lookaround
            {"type": "string", "format": "iri"}                             | the format "iri"
            {"type": "number", "minimum": 3.5, "exclusiveMaximum": 3.5}     | bounds no number meets
            {"type": "integer", "minimum": 5, "maximum": 4}                 | bounds no integer meets
            {"type": "integer", "multipleOf": 2}                            | "multipleOf"
            {"$defs": {"A": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}]}}, "$ref": "#/$defs/A"} | reaches itself before any object or array opens
            {"type": "object", "properties": {"a": {}}, "required": ["b"]}  | "b" required but not among the properties
            {"$ref": "#/$defs/missing"}                                      | points at nothing
            {"type": "tuple"}                                               | the type "tuple"
            {"type": "string", "maxLength": 3, "anyOf": [{"pattern": "^a+$"}, {"pattern": "^b+$"}]} | the keyword "maxLength" beside "anyOf"
            {"$defs": {"A": {"type": "object"}}, "allOf": [{"$ref": "#/$defs/A"}], "properties": {"b": {}}, "required": ["b"]} | the keyword "properties" beside "allOf"
            {"enum": ["abc", "de"], "maxLength": 2}                         | the keyword "maxLength" beside "enum"
            false                                                           | the schema false""")
    void whatCannotBeHeldIsRefusedByName(String schema, String named) throws Exception {
        EmberException e = assertThrows(EmberException.class, () -> JsonSchemas.compile(JSON.readTree(schema)));
        assertTrue(e.getMessage().contains(named) && e.getMessage().startsWith("JSON schema at #"), e.getMessage());
    }

    @Test
    void aPydanticSchemaCompiles() throws Exception {
        String pydantic = """
                {"$defs": {"Pet": {"properties": {"name": {"title": "Name", "type": "string"}}, "required": ["name"],
                   "title": "Pet", "type": "object"}},
                 "properties": {"owner": {"title": "Owner", "type": "string"},
                   "pet": {"anyOf": [{"$ref": "#/$defs/Pet"}, {"type": "null"}], "default": null}},
                 "required": ["owner"], "title": "Household", "type": "object"}""";
        JsonMachine.State state = JsonMachine.State.value(JsonSchemas.compile(JSON.readTree(pydantic)));
        assertTrue(JsonMachineTest.accepts(state, "{\"owner\": \"Ann\", \"pet\": {\"name\": \"Rex\"}}"));
        assertTrue(JsonMachineTest.accepts(state, "{\"owner\": \"Ann\", \"pet\": null}"));
        assertFalse(JsonMachineTest.accepts(state, "{\"owner\": \"Ann\", \"pet\": {}}"));

        // A discriminated union, as pydantic writes Field(discriminator="kind"): the variants' consts decide.
        String union = """
                {"$defs": {"Cat": {"properties": {"kind": {"const": "cat"}, "lives": {"type": "integer"}}, "required": ["kind", "lives"],
                                   "type": "object"},
                           "Dog": {"properties": {"kind": {"const": "dog"}, "good": {"type": "boolean"}}, "required": ["kind", "good"],
                                   "type": "object"}},
                 "properties": {"pet": {"discriminator": {"mapping": {"cat": "#/$defs/Cat", "dog": "#/$defs/Dog"}, "propertyName": "kind"},
                                        "oneOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}]}},
                 "required": ["pet"], "type": "object"}""";
        JsonMachine.State pets = JsonMachine.State.value(JsonSchemas.compile(JSON.readTree(union)));
        assertTrue(JsonMachineTest.accepts(pets, "{\"pet\": {\"kind\": \"dog\", \"good\": true}}"));
        assertFalse(JsonMachineTest.accepts(pets, "{\"pet\": {\"kind\": \"dog\", \"lives\": 9}}"));
    }
}
