package dev.ember.model;

import dev.ember.EmberException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Element types Ember reads from safetensors files. */
public enum DType {
    BF16(2), F16(2), F32(4);

    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

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

    /** Element {@code index} of {@code s}, little-endian elements of this type, widened to f32. */
    public float get(MemorySegment s, long index) {
        return switch (this) {
            case F32 -> s.getAtIndex(FLOAT, index);
            case F16 -> Float.float16ToFloat(s.getAtIndex(HALF, index));
            case BF16 -> Float.intBitsToFloat(s.getAtIndex(HALF, index) << 16);
        };
    }

    /**
     * Copies {@code count} elements of this type from {@code src} (from element {@code from}) into {@code dst} (from
     * element {@code at}) as elements of {@code to}: each widened to f32 and rounded once ({@link #set}).
     */
    public void convert(MemorySegment src, long from, DType to, MemorySegment dst, long at, long count) {
        for (long i = 0; i < count; i++) {
            to.set(dst, at + i, get(src, from + i));
        }
    }

    /** Stores {@code value} as element {@code index} of {@code s}, rounded to nearest even, as torch casts f32. */
    public void set(MemorySegment s, long index, float value) {
        switch (this) {
            case F32 -> s.setAtIndex(FLOAT, index, value);
            case F16 -> s.setAtIndex(HALF, index, Float.floatToFloat16(value));
            case BF16 -> {
                int bits = Float.floatToRawIntBits(value);
                s.setAtIndex(HALF, index, (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16));
            }
        }
    }
}
