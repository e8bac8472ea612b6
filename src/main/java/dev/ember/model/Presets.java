package dev.ember.model;

import dev.ember.EmberException;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The shapes of real models, as their published {@code config.json} files give them, for benchmarks run with
 * random weights where the real weights are not at hand (the throughput of a step depends on the shape, not on
 * the values).
 */
public final class Presets {
    private static final Map<String, ModelConfig> PRESETS = new LinkedHashMap<>();

    static {
        // Qwen/Qwen3-0.6B
        PRESETS.put("qwen3-0.6b", new ModelConfig(Architecture.QWEN3, 1024, 3072, 28, 16, 8, 128, 151936, 40960,
                1e-6, 1_000_000, new RopeScaling.None(), true, Biases.NONE, 0, 151643, List.of(151645), DType.BF16));
        // Qwen/Qwen3-8B
        PRESETS.put("qwen3-8b", new ModelConfig(Architecture.QWEN3, 4096, 12288, 36, 32, 8, 128, 151936, 40960,
                1e-6, 1_000_000, new RopeScaling.None(), false, Biases.NONE, 0, 151643, List.of(151645), DType.BF16));
        // meta-llama/Llama-3.2-1B
        PRESETS.put("llama-3.2-1b", new ModelConfig(Architecture.LLAMA, 2048, 8192, 16, 32, 8, 64, 128256, 131072,
                1e-5, 500_000, new RopeScaling.Llama3(32, 1, 4, 8192), true, Biases.NONE, 0, 128000, List.of(128001), DType.BF16));
        // meta-llama/Llama-3.1-8B
        PRESETS.put("llama-3.1-8b", new ModelConfig(Architecture.LLAMA, 4096, 14336, 32, 32, 8, 128, 128256, 131072,
                1e-5, 500_000, new RopeScaling.Llama3(8, 1, 4, 8192), false, Biases.NONE, 0, 128000, List.of(128001), DType.BF16));
    }

    private Presets() {
    }

    /** The names {@link #config} knows, in a stable order. */
    public static List<String> names() {
        return List.copyOf(PRESETS.keySet());
    }

    /** The shape of the named model; an unknown name fails with the list of known ones. */
    public static ModelConfig config(String name) {
        ModelConfig c = PRESETS.get(name.toLowerCase(Locale.ROOT));
        if (c == null) {
            throw new EmberException("unknown preset \"" + name + "\"; the presets are " + String.join(", ", names()));
        }
        return c;
    }
}
