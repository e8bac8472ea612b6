package dev.ember.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * How a model is meant to be sampled: its {@code generation_config.json}, read as HF transformers reads it into a
 * {@code GenerationConfig}. A field the file leaves out has transformers' default ({@code do_sample} false,
 * {@code temperature} 1, {@code top_k} 50, {@code top_p} 1, no {@code min_p}, {@code repetition_penalty} 1), and so
 * does every field of a model without the file. {@code do_sample} false means greedy decoding, whatever the
 * temperature says; the repetition penalty applies either way.
 *
 * @param file              the file read, or null where the model has none
 * @param doSample          sample (true) or take the most likely token (false)
 * @param temperature       for sampling; transformers' default 1
 * @param topK              for sampling, 0 = off; transformers' default 50
 * @param topP              for sampling, 1 = off
 * @param minP              for sampling, 0 = off
 * @param repetitionPenalty 1 = off
 * @param given             the sampling fields the file itself sets (temperature, top_k, top_p, min_p,
 *                          repetition_penalty), by their names there
 */
public record GenerationConfig(Path file, boolean doSample, float temperature, int topK, float topP, float minP,
                               float repetitionPenalty, Set<String> given) {
    public static final String FILE_NAME = "generation_config.json";
    private static final List<String> SAMPLING_FIELDS = List.of("temperature", "top_k", "top_p", "min_p", "repetition_penalty");

    public GenerationConfig {
        given = Set.copyOf(given);
    }

    /** transformers' defaults: what a model without {@code generation_config.json} is generated with. */
    public static GenerationConfig defaults() {
        return new GenerationConfig(null, false, 1f, 50, 1f, 0f, 1f, Set.of());
    }

    /**
     * vLLM's {@code --override-generation-config}: a JSON object of sampling values by their request fields' names
     * (temperature, top_k, top_p, min_p, repetition_penalty), each checked as a request's would be; empty for null.
     */
    public static Map<String, Double> overrides(String json) {
        if (json == null) {
            return Map.of();
        }
        JsonNode c;
        try {
            c = new ObjectMapper().readTree(json);
        } catch (JsonProcessingException e) {
            throw new EmberException("--override-generation-config is not JSON: " + e.getOriginalMessage());
        }
        if (c == null || !c.isObject()) {
            throw new EmberException("--override-generation-config must be a JSON object, got " + json);
        }
        Map<String, Double> values = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : c.properties()) {
            String field = e.getKey();
            if (!SAMPLING_FIELDS.contains(field)) {
                throw new EmberException("--override-generation-config: \"" + field + "\" is not one of " + String.join(", ", SAMPLING_FIELDS));
            }
            double v = e.getValue().asDouble(Double.NaN);
            boolean valid = e.getValue().isNumber() && switch (field) {
                case "temperature" -> v >= 0;
                case "top_k" -> v == Math.rint(v) && v >= -1;
                case "top_p" -> v > 0 && v <= 1;
                case "min_p" -> v >= 0 && v <= 1;
                default -> v > 0;
            };
            if (!valid) {
                throw new EmberException("--override-generation-config: " + field + " " + e.getValue() + " is out of range");
            }
            values.put(field, v);
        }
        return values;
    }

    /**
     * The sampling values the file sets, as vLLM's server takes them for requests that leave them out
     * ({@code --generation-config auto}): each by its request field's name (temperature, top_k, top_p, min_p,
     * repetition_penalty); {@code do_sample} is not read, as vLLM does not.
     */
    public Map<String, Double> requestDefaults() {
        Map<String, Double> defaults = new LinkedHashMap<>();
        for (String field : SAMPLING_FIELDS) {
            if (given.contains(field)) {
                defaults.put(field, switch (field) {
                    case "temperature" -> (double) temperature;
                    case "top_k" -> (double) topK;
                    case "top_p" -> (double) topP;
                    case "min_p" -> (double) minP;
                    default -> (double) repetitionPenalty;
                });
            }
        }
        return defaults;
    }

    /** The generation config of the model in {@code modelDir}; {@link #defaults()} where it has none. */
    public static GenerationConfig read(Path modelDir) {
        Path file = modelDir.resolve(FILE_NAME);
        if (!Files.isRegularFile(file)) {
            return defaults();
        }
        JsonNode c = JsonFile.readObject(file);
        GenerationConfig d = defaults();
        JsonNode doSample = c.path("do_sample");
        if (!doSample.isMissingNode() && !doSample.isNull() && !doSample.isBoolean()) {
            throw new EmberException(file + ": \"do_sample\" must be true or false, got " + doSample);
        }
        Set<String> given = new HashSet<>();
        for (String field : SAMPLING_FIELDS) {
            if (c.hasNonNull(field)) {
                given.add(field);
            }
        }
        return new GenerationConfig(file, doSample.asBoolean(false), number(c, file, "temperature", d.temperature()),
                (int) number(c, file, "top_k", d.topK()), number(c, file, "top_p", d.topP()), number(c, file, "min_p", d.minP()),
                number(c, file, "repetition_penalty", d.repetitionPenalty()), given);
    }

    private static float number(JsonNode c, Path file, String field, float absent) {
        JsonNode n = c.path(field);
        if (n.isMissingNode() || n.isNull()) {
            return absent;
        }
        if (!n.isNumber()) {
            throw new EmberException(file + ": \"" + field + "\" must be a number, got " + n);
        }
        return n.floatValue();
    }
}
