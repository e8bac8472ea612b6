package dev.ember.model;

import dev.ember.EmberException;

/** Element types Ember reads from safetensors files. */
public enum DType {
    BF16(2), F16(2), F32(4);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    /** Parses a safetensors dtype tag ("BF16", "F16", "F32"); {@code where} names the tensor for the error. */
    public static DType fromSafetensors(String tag, String where) {
        return switch (tag) {
            case "BF16" -> BF16;
            case "F16" -> F16;
            case "F32" -> F32;
            default -> throw new EmberException(where + ": unsupported dtype " + tag + " (Ember reads BF16, F16 and F32)");
        };
    }

    /** Parses a config.json {@code torch_dtype} value such as "bfloat16". */
    public static DType fromTorch(String name) {
        return switch (name) {
            case "bfloat16" -> BF16;
            case "float16", "half" -> F16;
            case "float32", "float" -> F32;
            default -> throw new EmberException("config.json: unsupported torch_dtype \"" + name + "\" (expected bfloat16, float16 or float32)");
        };
    }
}
