package dev.ember.backend.streaming;

/**
 * One half of a decoder layer, the unit that is copied into and evicted from the device window: the attention half
 * (its norm, q/k/v, their bias and norms, the output projection) or the MLP half (its norm, gate/up, down).
 */
public record WeightGroup(int layer, Kind kind) {
    /** The two halves of a layer, in the order a step computes them. */
    public enum Kind { ATTENTION, MLP }

    /** The group computed {@code index}-th in a step of a model of {@code layers} layers, counting on into later steps. */
    public static WeightGroup inOrder(long index, int layers) {
        return new WeightGroup((int) ((index / 2) % layers), index % 2 == 0 ? Kind.ATTENTION : Kind.MLP);
    }

    /** This group's place in a step's order: attention of layer 0, MLP of layer 0, attention of layer 1, ... */
    public int order() {
        return 2 * layer + kind.ordinal();
    }

    @Override
    public String toString() {
        return (kind == Kind.ATTENTION ? "attn" : "mlp") + layer;
    }
}
