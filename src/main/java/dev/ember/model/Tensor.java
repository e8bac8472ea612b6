package dev.ember.model;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.stream.LongStream;

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

    /** Rows [from, to) of a matrix (elements of a vector): a view of the same bytes. */
    public Tensor rows(int from, int to) {
        long rowBytes = data.byteSize() / shape[0];
        long[] sliced = shape.clone();
        sliced[0] = to - from;
        return new Tensor(name, dtype, sliced, data.asSlice(from * rowBytes, (to - from) * rowBytes));
    }

    /** Columns [from, to) of a matrix, copied into {@code arena} (they are not contiguous in the source). */
    public Tensor columns(int from, int to, Arena arena) {
        int rows = dim(0), width = to - from, bytes = dtype.bytes();
        long rowBytes = (long) dim(1) * bytes;
        MemorySegment out = arena.allocate((long) rows * width * bytes, 64);
        for (int r = 0; r < rows; r++) {
            MemorySegment.copy(data, r * rowBytes + (long) from * bytes, out, (long) r * width * bytes, (long) width * bytes);
        }
        return new Tensor(name, dtype, new long[] {rows, width}, out);
    }

    /**
     * This tensor's elements in {@code type}, copied into {@code arena}, a shared one (rounded to nearest even where it
     * narrows, as torch casts); this tensor itself where it already is of that type. Runs of a million elements are
     * converted on every core: an 8B-parameter checkpoint is eight thousand of them.
     */
    public Tensor converted(DType type, Arena arena) {
        if (type == dtype) {
            return this;
        }
        long n = elementCount();
        MemorySegment out = arena.allocate(n * type.bytes(), 64);
        long run = 1 << 20;
        LongStream.range(0, (n + run - 1) / run).parallel().forEach(r ->
                dtype.convert(data, r * run, type, out, r * run, Math.min(run, n - r * run)));
        return new Tensor(name, type, shape, out);
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
