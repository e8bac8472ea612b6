package dev.ember.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ember.EmberException;

import java.nio.file.Files;
import java.nio.file.Path;

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
 */
public record GenerationConfig(Path file, boolean doSample, float temperature, int topK, float topP, float minP,
                               float repetitionPenalty) {
    public static final String FILE_NAME = "generation_config.json";

    /** transformers' defaults: what a model without {@code generation_config.json} is generated with. */
    public static GenerationConfig defaults() {
        return new GenerationConfig(null, false, 1f, 50, 1f, 0f, 1f);
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
        return new GenerationConfig(file, doSample.asBoolean(false), number(c, file, "temperature", d.temperature()),
                (int) number(c, file, "top_k", d.topK()), number(c, file, "top_p", d.topP()), number(c, file, "min_p", d.minP()),
                number(c, file, "repetition_penalty", d.repetitionPenalty()));
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
