package dev.ember.model;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A named, typed view of tensor bytes: usually a slice of a memory-mapped safetensors file,
 * never copied onto the Java heap. Row-major; a weight of an nn.Linear is {@code [out, in]}.
 */
public record Tensor(String name, DType dtype, long[] shape, MemorySegment data) {

    public Tensor {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long elementCount() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    public int rank() {
        return shape.length;
    }

    /** Size of dimension {@code i}, which must fit an int (every Ember dimension does). */
    public int dim(int i) {
        return Math.toIntExact(shape[i]);
    }

    public long byteSize() {
        return data.byteSize();
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
