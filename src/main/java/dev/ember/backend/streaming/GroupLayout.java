package dev.ember.backend.streaming;

import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.LayerWeights;
import dev.ember.model.ModelConfig;
import dev.ember.model.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;

/**
 * How a group's weights lie in a window slot, as the runners read them: matrices in the storage type with q/k/v
 * stacked into one {@code [qDim + 2 kvDim, hidden]} matrix and gate/up into one {@code [2 intermediate, hidden]}
 * matrix, norm weights and biases in fp32, each part starting on a {@value #ALIGNMENT}-byte boundary. A tensor stored
 * in another type is converted on the way (round to nearest even), so that a group is packed once and copied as is.
 *
 * @param storage   the type of the matrices
 * @param attention the parts of an attention group, in order
 * @param mlp       the parts of an MLP group, in order
 */
public record GroupLayout(DType storage, List<Part> attention, List<Part> mlp) {
    /** Parts start at multiples of this (the GPU's allocation alignment; wide enough for any vector load). */
    public static final long ALIGNMENT = 256;

    /** The weights a group can hold, each in groups of one kind. */
    public enum Role {
        ATTN_NORM(WeightGroup.Kind.ATTENTION), QKV(WeightGroup.Kind.ATTENTION), QKV_BIAS(WeightGroup.Kind.ATTENTION), Q_NORM(WeightGroup.Kind.ATTENTION),
        K_NORM(WeightGroup.Kind.ATTENTION), O(WeightGroup.Kind.ATTENTION), O_BIAS(WeightGroup.Kind.ATTENTION),
        FFN_NORM(WeightGroup.Kind.MLP), GATE_UP(WeightGroup.Kind.MLP), DOWN(WeightGroup.Kind.MLP), GATE_UP_BIAS(WeightGroup.Kind.MLP), DOWN_BIAS(WeightGroup.Kind.MLP);

        /** The kind of group that holds it. */
        public final WeightGroup.Kind kind;

        Role(WeightGroup.Kind kind) {
            this.kind = kind;
        }
    }

    /** One weight of a group; {@code source} gives the tensors stacked into it, in order. */
    public record Part(Role role, DType type, long offset, long elements, Function<LayerWeights, Tensor[]> source) {
        public long bytes() {
            return elements * type.bytes();
        }
    }

    public GroupLayout {
        attention = List.copyOf(attention);
        mlp = List.copyOf(mlp);
    }

    /** The layout of a model of shape {@code c} with matrices stored as {@code storage}. */
    public static GroupLayout of(ModelConfig c, DType storage) {
        long h = c.hiddenSize(), qkv = c.qDim() + 2L * c.kvDim(), ff = c.intermediateSize();
        Builder a = new Builder();
        a.add(Role.ATTN_NORM, DType.F32, h, w -> new Tensor[] {w.attnNorm()});
        a.add(Role.QKV, storage, qkv * h, w -> new Tensor[] {w.wq(), w.wk(), w.wv()});
        Biases biases = c.biases();
        if (biases.qkv()) {
            a.add(Role.QKV_BIAS, DType.F32, qkv, w -> new Tensor[] {w.bq(), w.bk(), w.bv()});
        }
        if (c.qkNorm()) {
            a.add(Role.Q_NORM, DType.F32, c.headDim(), w -> new Tensor[] {w.qNorm()});
            a.add(Role.K_NORM, DType.F32, c.headDim(), w -> new Tensor[] {w.kNorm()});
        }
        a.add(Role.O, storage, h * c.qDim(), w -> new Tensor[] {w.wo()});
        if (biases.output()) {
            a.add(Role.O_BIAS, DType.F32, h, w -> new Tensor[] {w.bo()});
        }
        Builder m = new Builder();
        m.add(Role.FFN_NORM, DType.F32, h, w -> new Tensor[] {w.ffnNorm()});
        m.add(Role.GATE_UP, storage, 2 * ff * h, w -> new Tensor[] {w.wGate(), w.wUp()});
        m.add(Role.DOWN, storage, h * ff, w -> new Tensor[] {w.wDown()});
        if (biases.mlp()) {
            m.add(Role.GATE_UP_BIAS, DType.F32, 2 * ff, w -> new Tensor[] {w.bGate(), w.bUp()});
            m.add(Role.DOWN_BIAS, DType.F32, h, w -> new Tensor[] {w.bDown()});
        }
        return new GroupLayout(storage, a.parts, m.parts);
    }

    private static final class Builder {
        final List<Part> parts = new ArrayList<>();
        long end;

        void add(Role role, DType type, long elements, Function<LayerWeights, Tensor[]> source) {
            long offset = (end + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
            parts.add(new Part(role, type, offset, elements, source));
            end = offset + elements * type.bytes();
        }
    }

    public List<Part> parts(WeightGroup.Kind kind) {
        return kind == WeightGroup.Kind.ATTENTION ? attention : mlp;
    }

    /** Bytes of a group of {@code kind}, from its first part's start to its last part's end. */
    public long bytes(WeightGroup.Kind kind) {
        Part last = parts(kind).getLast();
        return last.offset() + last.bytes();
    }

    /** The part of this role, where the model has one (biases and q/k norms only where its architecture does). */
    public Optional<Part> find(Role role) {
        return parts(role.kind).stream().filter(p -> p.role() == role).findFirst();
    }

    /** The part of this role, which the model must have. */
    public Part part(Role role) {
        return find(role).orElseThrow(() -> new IllegalArgumentException("a " + role.kind + " group has no part " + role));
    }

    /**
     * One piece of a tensor in a group's layout: its elements {@code [first, first + count)} lie at {@code offset}
     * bytes into the group, as {@code type}.
     */
    public record Piece(Tensor tensor, long first, long count, DType type, long offset) {
        /** Whether the piece's bytes are the tensor's own (same type), so they can be read or copied as they are. */
        public boolean raw() {
            return tensor.dtype() == type;
        }

        /** Writes the piece, converted to its layout type, at the start of {@code out}. */
        public void writeTo(MemorySegment out) {
            if (raw()) {
                MemorySegment.copy(tensor.data(), first * type.bytes(), out, 0, count * type.bytes());
                return;
            }
            DType from = tensor.dtype();
            for (long i = 0; i < count; i++) {
                type.set(out, i, from.get(tensor.data(), first + i));
            }
        }
    }

    /**
     * The tensor pieces that make up bytes {@code [from, from + length)} of layer {@code w}'s group of {@code kind}, in
     * order; the gaps between parts belong to no piece. {@code from} and {@code length} must be multiples of 4.
     */
    public List<Piece> pieces(LayerWeights w, WeightGroup.Kind kind, long from, long length) {
        if (from % 4 != 0 || length % 4 != 0 && from + length != bytes(kind)) {
            throw new IllegalArgumentException("a range of a group starts and ends on a 4-byte boundary: " + from + " + " + length);
        }
        long end = from + length;
        List<Piece> pieces = new ArrayList<>();
        for (Part part : parts(kind)) {
            long at = part.offset();
            int size = part.type().bytes();
            for (Tensor t : part.source().apply(w)) {
                long tensorEnd = at + t.elementCount() * size;
                long lo = Math.max(at, from), hi = Math.min(tensorEnd, end);
                if (lo < hi) {
                    pieces.add(new Piece(t, (lo - at) / size, (hi - lo) / size, part.type(), lo));
                }
                at = tensorEnd;
            }
        }
        return pieces;
    }

    /** Writes bytes {@code [from, from + out.byteSize())} of layer {@code w}'s group of {@code kind} into {@code out}. */
    public void pack(LayerWeights w, WeightGroup.Kind kind, long from, MemorySegment out) {
        for (Piece p : pieces(w, kind, from, out.byteSize())) {
            p.writeTo(out.asSlice(p.offset() - from, p.count() * p.type().bytes()));
        }
    }
}
