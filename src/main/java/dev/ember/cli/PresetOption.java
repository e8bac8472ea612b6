package dev.ember.cli;

import dev.ember.EmberException;
import dev.ember.model.ModelConfig;
import dev.ember.model.Presets;
import picocli.CommandLine.Option;

/**
 * {@code --preset NAME}: instead of {@code --model}, a published model shape ({@link Presets}) with random bf16
 * weights, for benchmarks of shapes whose real weights are not at hand.
 */
public final class PresetOption {

    @Option(names = "--preset", paramLabel = "NAME",
            description = "instead of --model: a published model shape with random bf16 weights, meant for a GPU (qwen3-0.6b, "
                    + "qwen3-8b, llama-3.2-1b, llama-3.1-8b; on the CPU only those up to 2 GB, and slowly)")
    String name;

    @Option(names = "--weights-seed", defaultValue = "0", description = "seed of a preset's random weights; default: ${DEFAULT-VALUE}")
    long weightsSeed;

    public boolean given() {
        return name != null;
    }

    public String name() {
        return name;
    }

    public long weightsSeed() {
        return weightsSeed;
    }

    /** The shape of the model the options name: the preset's, or the model directory's config.json. */
    public ModelConfig modelConfig(ModelOptions modelOptions) {
        return given() ? config(modelOptions) : ModelConfig.read(modelOptions.modelDirectory().resolve("config.json"));
    }

    /** The preset's shape; an error when --model was given too, or the name is unknown. */
    public ModelConfig config(ModelOptions modelOptions) {
        if (modelOptions.modelGiven()) {
            throw new EmberException("give --model or --preset, not both");
        }
        return Presets.config(name);
    }
}
