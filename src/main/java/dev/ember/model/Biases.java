package dev.ember.model;

/**
 * Which linear projections of a decoder layer add a bias. Each family's HF code decides it from its config
 * ({@link Architecture#biases}): Qwen2 always on q, k and v; Llama and Qwen3 on q, k, v and o where
 * {@code attention_bias} is set; Llama on gate, up and down where {@code mlp_bias} is set; Mistral never.
 *
 * @param qkv    q, k and v projections
 * @param output the attention's output projection (o)
 * @param mlp    gate, up and down projections
 */
public record Biases(boolean qkv, boolean output, boolean mlp) {
    public static final Biases NONE = new Biases(false, false, false);
    /** Qwen2's. */
    public static final Biases QKV = new Biases(true, false, false);
    /** Llama's and Qwen3's with {@code attention_bias}. */
    public static final Biases ATTENTION = new Biases(true, true, false);
}
