package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.model.Architecture;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.model.RopeScaling;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The shapes of well-known models, as their HF config.json files give them, for benchmarks on random weights where
 * the real ones are not at hand (the weights do not change the time a step takes; the shape does).
 */
public final class ModelPresets {
    private static final Map<String, ModelConfig> PRESETS = new LinkedHashMap<>();

    static {
        List<Integer> llamaEos = List.of(128001, 128008, 128009);
        List<Integer> qwenEos = List.of(151645, 151643);
        PRESETS.put("llama-3.1-8b", new ModelConfig(Architecture.LLAMA, 4096, 14336, 32, 32, 8, 128, 128256, 131072, 1e-5,
                500000, new RopeScaling.Llama3(8, 1, 4, 8192), false, false, 0, 128000, llamaEos, DType.BF16));
        PRESETS.put("llama-3.2-1b", new ModelConfig(Architecture.LLAMA, 2048, 8192, 16, 32, 8, 64, 128256, 131072, 1e-5,
                500000, new RopeScaling.Llama3(32, 1, 4, 8192), true, false, 0, 128000, llamaEos, DType.BF16));
        PRESETS.put("qwen3-8b", new ModelConfig(Architecture.QWEN3, 4096, 12288, 36, 32, 8, 128, 151936, 40960, 1e-6,
                1000000, new RopeScaling.None(), false, false, 0, 151643, qwenEos, DType.BF16));
        PRESETS.put("qwen3-0.6b", new ModelConfig(Architecture.QWEN3, 1024, 3072, 28, 16, 8, 128, 151936, 40960, 1e-6,
                1000000, new RopeScaling.None(), true, false, 0, 151643, qwenEos, DType.BF16));
    }

    private ModelPresets() {
    }

    public static List<String> names() {
        return List.copyOf(PRESETS.keySet());
    }

    /** The preset's shape; an unknown name is an error listing the known ones. */
    public static ModelConfig config(String name) {
        ModelConfig c = PRESETS.get(name);
        if (c == null) {
            throw new EmberException("unknown preset \"" + name + "\" (known: " + String.join(", ", names()) + ")");
        }
        return c;
    }

    /**
     * Bytes of weights a decode step reads in storage type {@code type}: every layer's matrices and the output
     * projection (the embedding table is only gathered from: one row per token), the norm vectors and biases left
     * out (under 0.01% at these shapes).
     */
    public static long decodeWeightBytes(ModelConfig c, DType type) {
        long h = c.hiddenSize(), ff = c.intermediateSize();
        long perLayer = (c.qDim() + 2L * c.kvDim()) * h + h * c.qDim() + 3 * ff * h;
        return (c.numLayers() * perLayer + c.vocabSize() * h) * type.bytes();
    }
}
