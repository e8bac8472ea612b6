package dev.ember.model;

import dev.ember.EmberException;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The decoder-only families Ember runs. They share one layer shape (RMSNorm, rotary GQA attention,
 * SwiGLU MLP) and differ only in the details recorded here.
 */
public enum Architecture {
    LLAMA("LlamaForCausalLM", "llama", false),
    MISTRAL("MistralForCausalLM", "mistral", false),
    QWEN2("Qwen2ForCausalLM", "qwen2", false),
    /** Qwen3 normalises each head of q and k with its own RMSNorm before the rotation. */
    QWEN3("Qwen3ForCausalLM", "qwen3", true);

    private final String hfName;
    /** config.json's {@code model_type}, which names the family where {@code architectures} is left out. */
    private final String modelType;
    private final boolean qkNorm;

    Architecture(String hfName, String modelType, boolean qkNorm) {
        this.hfName = hfName;
        this.modelType = modelType;
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

    public String modelType() {
        return modelType;
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

    /** The family of config.json's {@code model_type} ("llama", "qwen3", ...), for a config without architectures. */
    public static Architecture fromModelType(String type) {
        for (Architecture a : values()) {
            if (a.modelType.equals(type)) {
                return a;
            }
        }
        throw new EmberException("config.json: no \"architectures\", and model_type \"" + type + "\" is none Ember runs ("
                + Arrays.stream(values()).map(a -> a.modelType).collect(Collectors.joining(", ")) + ")");
    }

    public static Architecture fromHf(String name) {
        for (Architecture a : values()) {
            if (a.hfName.equals(name)) {
                return a;
            }
        }
        if (name.equals("LLaMAForCausalLM")) {  // the first conversions' spelling, which vLLM also takes for Llama
            return LLAMA;
        }
        throw new EmberException("config.json: unknown architecture \"" + name + "\"; Ember runs "
                + Arrays.stream(values()).map(Architecture::hfName).collect(Collectors.joining(", ")));
    }
}
