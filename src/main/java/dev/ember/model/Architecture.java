package dev.ember.model;

import dev.ember.EmberException;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The decoder-only families Ember runs. They share one layer shape (RMSNorm, rotary GQA attention,
 * SwiGLU MLP) and differ only in the details recorded here.
 */
public enum Architecture {
    LLAMA("LlamaForCausalLM", false, false),
    MISTRAL("MistralForCausalLM", false, false),
    /** Qwen2 always carries biases on the q, k and v projections. */
    QWEN2("Qwen2ForCausalLM", true, false),
    /** Qwen3 normalises each head of q and k with its own RMSNorm before the rotation. */
    QWEN3("Qwen3ForCausalLM", false, true);

    private final String hfName;
    private final boolean alwaysQkvBias;
    private final boolean qkNorm;

    Architecture(String hfName, boolean alwaysQkvBias, boolean qkNorm) {
        this.hfName = hfName;
        this.alwaysQkvBias = alwaysQkvBias;
        this.qkNorm = qkNorm;
    }

    public String hfName() {
        return hfName;
    }

    public boolean alwaysQkvBias() {
        return alwaysQkvBias;
    }

    public boolean qkNorm() {
        return qkNorm;
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
