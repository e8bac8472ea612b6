package dev.ember.grammar;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ember.sampling.OutputGrammar;
import dev.ember.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The grammars of one model's requests: its vocabulary's trie, made at the first request that asks for structured
 * output, and the grammars compiled so far, by their schema's text (a client sends the same schema again and again),
 * each keeping the masks it has found. Thread-safe.
 */
public final class Grammars {
    /** The grammars kept, the least recently used dropped first (each keeps up to {@code TokenGrammar}'s masks). */
    private static final int MAX_GRAMMARS = 32;

    private final Tokenizer tokenizer;
    private final Set<Integer> endOfSequence;
    private VocabularyTrie trie;
    private final Map<String, OutputGrammar> compiled = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, OutputGrammar> eldest) {
            return size() > MAX_GRAMMARS;
        }
    };

    /** @param endOfSequence the tokens that end an output, allowed where the grammar is complete */
    public Grammars(Tokenizer tokenizer, Set<Integer> endOfSequence) {
        this.tokenizer = tokenizer;
        this.endOfSequence = Set.copyOf(endOfSequence);
    }

    /** Any JSON object (OpenAI's {@code response_format} json_object). */
    public synchronized OutputGrammar jsonObject() {
        return compiled.computeIfAbsent("object", key -> TokenGrammar.json(JsonShape.ObjectShape.ANY, trie(), "a JSON object"));
    }

    /**
     * A JSON value that {@code schema} describes.
     *
     * @throws dev.ember.EmberException naming what of the schema Ember cannot hold an output to
     */
    public synchronized OutputGrammar jsonSchema(JsonNode schema) {
        return compiled.computeIfAbsent("schema " + schema, key -> TokenGrammar.json(JsonSchemas.compile(schema), trie(), "a JSON schema"));
    }

    /**
     * A text that {@code pattern} matches whole (vLLM's {@code guided_regex}).
     *
     * @throws dev.ember.EmberException naming what of the pattern Ember cannot hold an output to
     */
    public synchronized OutputGrammar regex(String pattern) {
        return compiled.computeIfAbsent("regex " + pattern, key -> TokenGrammar.pattern(Regex.fullMatch(pattern), trie()));
    }

    /**
     * A text of the root rule of {@code gbnf}, a grammar in llama.cpp's notation (its {@code grammar}, vLLM's
     * {@code guided_grammar}, SGLang's {@code ebnf}).
     *
     * @throws dev.ember.EmberException naming where the grammar is not GBNF, or what of it cannot be read left to right
     */
    public synchronized OutputGrammar gbnf(String gbnf) {
        return compiled.computeIfAbsent("gbnf " + gbnf, key -> TokenGrammar.grammar(Gbnf.parse(gbnf), trie()));
    }

    /** Exactly one of {@code choices} (vLLM's {@code guided_choice}). */
    public synchronized OutputGrammar choice(List<String> choices) {
        if (choices.isEmpty() || choices.size() > JsonShape.MAX_CHOICES) {
            throw new dev.ember.EmberException("a choice of " + choices.size() + " strings: 1 to " + JsonShape.MAX_CHOICES + " are held");
        }
        return compiled.computeIfAbsent("choice " + JsonSchemas.JSON.valueToTree(choices), key -> TokenGrammar.choice(choices, trie()));
    }

    /**
     * One to {@code most} function calls, written as {@code before + CALL + (separator + CALL)... + after}, each CALL
     * {@code {"name": NAME, ARGUMENTS_KEY: ARGUMENTS}}: NAME one of {@code parameters}' keys, ARGUMENTS an object of that
     * function's parameters schema (any object where it has none). Hermes' format (Qwen's templates) is
     * {@code <tool_call>\n}, "arguments", a closing and an opening tag between calls, {@code \n</tool_call>}; Llama 3's is
     * the objects alone, "; " between, with "parameters"; Mistral's a JSON array of them.
     *
     * @throws dev.ember.EmberException naming what of a parameters schema Ember cannot hold an output to
     */
    public synchronized OutputGrammar toolCalls(String before, String argumentsKey, Map<String, JsonNode> parameters,
                                                String separator, String after, int most) {
        return compiled.computeIfAbsent("calls " + before + argumentsKey + JsonSchemas.JSON.valueToTree(parameters) + separator
                + after + most, key -> {
            List<JsonShape> calls = new ArrayList<>();
            for (Map.Entry<String, JsonNode> function : parameters.entrySet()) {
                JsonShape arguments = function.getValue() == null ? JsonShape.ObjectShape.ANY : JsonSchemas.compile(function.getValue());
                JsonShape name = new JsonShape.Choice(List.of(JsonSchemas.JSON.valueToTree(function.getKey()).toString()));
                calls.add(new JsonShape.ObjectShape(List.of("name", argumentsKey), List.of(name, arguments), 0b11, JsonShape.AnyValue.INSTANCE));
            }
            JsonShape call = calls.size() == 1 ? calls.getFirst() : new JsonShape.AnyOf(calls);
            String description = (most == 1 ? "a call" : "calls") + " of one of " + calls.size() + " functions";
            return most == 1 ? TokenGrammar.between(before, call, after, trie(), description)
                    : TokenGrammar.repeated(before, call, separator, after, most, trie(), description);
        });
    }

    private VocabularyTrie trie() {
        if (trie == null) {
            trie = VocabularyTrie.of(tokenizer, endOfSequence);
        }
        return trie;
    }
}
