package dev.ember.backend.cpu;

import dev.ember.model.DType;
import dev.ember.model.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A row-major {@code [rows, cols]} matrix whose elements stay in their storage type (bf16 or f32) in a
 * memory segment, usually the mapped safetensors file. Rows are read with the Vector API and widened to
 * f32 in registers, so a bf16 model is never expanded in memory. (f16 is widened once at load: the
 * Vector API has no half-float lane conversion, and f16 checkpoints are rare.)
 */
final class WeightMatrix {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Shorts of the same lane count as {@link #F}, for loading bf16. */
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.length() * 16));
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final ValueLayout.OfShort BF16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final boolean bf16;
    private final MemorySegment data;
    final int rows;
    final int cols;

    private WeightMatrix(boolean bf16, MemorySegment data, int rows, int cols) {
        this.bf16 = bf16;
        this.data = data;
        this.rows = rows;
        this.cols = cols;
    }

    /** Views a rank-1 or rank-2 tensor; f16 is widened to f32 into {@code arena}. */
    static WeightMatrix of(Tensor t, Arena arena) {
        int rows = t.rank() == 1 ? 1 : t.dim(0);
        int cols = t.rank() == 1 ? t.dim(0) : t.dim(1);
        return switch (t.dtype()) {
            case BF16 -> new WeightMatrix(true, t.data(), rows, cols);
            case F32 -> new WeightMatrix(false, t.data(), rows, cols);
            case F16 -> {
                long n = t.elementCount();
                MemorySegment wide = arena.allocate(n * 4, 64);
                DType.F16.convert(t.data(), 0, DType.F32, wide, 0, n);
                yield new WeightMatrix(false, wide, rows, cols);
            }
        };
    }

    /** A rank-1 tensor (a norm weight or a bias) as f32, or null for a null tensor. */
    static float[] vector(Tensor t, Arena arena) {
        if (t == null) {
            return null;
        }
        WeightMatrix m = of(t, arena);
        float[] out = new float[m.cols];
        m.rowInto(0, out, 0);
        return out;
    }

    DType storage() {
        return bf16 ? DType.BF16 : DType.F32;
    }

    float get(int row, int col) {
        long i = (long) row * cols + col;
        return bf16 ? Float.intBitsToFloat(data.getAtIndex(BF16, i) << 16) : data.getAtIndex(F32, i);
    }

    /** Copies row {@code row} into {@code out[outOffset ..]} as f32. */
    void rowInto(int row, float[] out, int outOffset) {
        long base = (long) row * cols;
        int i = 0;
        if (bf16) {
            for (int upper = F.loopBound(cols); i < upper; i += F.length()) {
                loadBf16(base + i).intoArray(out, outOffset + i);
            }
            for (; i < cols; i++) {
                out[outOffset + i] = Float.intBitsToFloat(data.getAtIndex(BF16, base + i) << 16);
            }
        } else {
            MemorySegment.copy(data, F32, base * 4, out, outOffset, cols);
        }
    }

    /** The dot product of row {@code row} with {@code x[xOffset .. xOffset + cols)}. */
    float dotRow(int row, float[] x, int xOffset) {
        long base = (long) row * cols;
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int i = 0;
        int step = 2 * F.length();
        int upper = cols - cols % step;
        // Two accumulators hide the FMA latency; the weights are widened from bf16 in registers.
        for (; i < upper; i += step) {
            acc0 = load(base + i).fma(FloatVector.fromArray(F, x, xOffset + i), acc0);
            acc1 = load(base + i + F.length()).fma(FloatVector.fromArray(F, x, xOffset + i + F.length()), acc1);
        }
        float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            sum += get(row, i) * x[xOffset + i];
        }
        return sum;
    }

    /**
     * {@link #dotRow} of rows {@code row} and {@code row + 1} into {@code out[outIndex]} and {@code out[outIndex + 1]}:
     * each load of x serves both rows, each row's products accumulated as {@link #dotRow} accumulates them.
     */
    void dotRowPair(int row, float[] x, int xOffset, float[] out, int outIndex) {
        long base0 = (long) row * cols, base1 = base0 + cols;
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), b0 = FloatVector.zero(F), b1 = FloatVector.zero(F);
        int i = 0;
        int step = 2 * F.length();
        int upper = cols - cols % step;
        for (; i < upper; i += step) {
            FloatVector x0 = FloatVector.fromArray(F, x, xOffset + i), x1 = FloatVector.fromArray(F, x, xOffset + i + F.length());
            a0 = load(base0 + i).fma(x0, a0);
            a1 = load(base0 + i + F.length()).fma(x1, a1);
            b0 = load(base1 + i).fma(x0, b0);
            b1 = load(base1 + i + F.length()).fma(x1, b1);
        }
        float first = a0.add(a1).reduceLanes(VectorOperators.ADD), second = b0.add(b1).reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            first += get(row, i) * x[xOffset + i];
            second += get(row + 1, i) * x[xOffset + i];
        }
        out[outIndex] = first;
        out[outIndex + 1] = second;
    }

    private FloatVector load(long elementIndex) {
        return bf16 ? loadBf16(elementIndex) : FloatVector.fromMemorySegment(F, data, elementIndex * 4, ByteOrder.LITTLE_ENDIAN);
    }

    private FloatVector loadBf16(long elementIndex) {
        // bf16 is the top half of an f32: widen each lane to 32 bits and shift it into place.
        return ((IntVector) ShortVector.fromMemorySegment(S, data, elementIndex * 2, ByteOrder.LITTLE_ENDIAN)
                .convertShape(VectorOperators.S2I, I, 0))
                .lanewise(VectorOperators.LSHL, 16)
                .reinterpretAsFloats();
    }
}
