package dev.ember.model;

import dev.ember.EmberException;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The decoder-only families Ember runs. They share one layer shape (RMSNorm, rotary GQA attention,
 * SwiGLU MLP) and differ only in the details recorded here.
 */
public enum Architecture {
    LLAMA("LlamaForCausalLM", false),
    MISTRAL("MistralForCausalLM", false),
    QWEN2("Qwen2ForCausalLM", false),
    /** Qwen3 normalises each head of q and k with its own RMSNorm before the rotation. */
    QWEN3("Qwen3ForCausalLM", true);

    private final String hfName;
    private final boolean qkNorm;

    Architecture(String hfName, boolean qkNorm) {
        this.hfName = hfName;
        this.qkNorm = qkNorm;
    }

    public String hfName() {
        return hfName;
    }

    /**
     * The biases this family's HF code gives a layer for a config's {@code attention_bias} and {@code mlp_bias}: Qwen2
     * always has them on q, k and v and reads neither flag; Mistral has none and reads neither; Qwen3 reads only
     * {@code attention_bias}.
     */
    public Biases biases(boolean attentionBias, boolean mlpBias) {
        return switch (this) {
            case LLAMA -> new Biases(attentionBias, attentionBias, mlpBias);
            case MISTRAL -> Biases.NONE;
            case QWEN2 -> Biases.QKV;
            case QWEN3 -> new Biases(attentionBias, attentionBias, false);
        };
    }

    public boolean qkNorm() {
        return qkNorm;
    }

    /** {@code max_position_embeddings} where a config leaves it out: the default of this family's transformers config. */
    public int defaultMaxPositions() {
        return switch (this) {
            case LLAMA -> 2048;
            case MISTRAL -> 4096 * 32;
            case QWEN2, QWEN3 -> 32768;
        };
    }

    /** {@code head_dim} where a config leaves it out: Qwen3's transformers config defaults to 128, the others divide. */
    public int defaultHeadDim(int hidden, int heads) {
        return this == QWEN3 ? 128 : hidden / heads;
    }

    public static Architecture fromHf(String name) {
        for (Architecture a : values()) {
            if (a.hfName.equals(name)) {
                return a;
            }
        }
        throw new EmberException("config.json: unknown architecture \"" + name + "\"; Ember runs "
                + Arrays.stream(values()).map(Architecture::hfName).collect(Collectors.joining(", ")));
    }
}
