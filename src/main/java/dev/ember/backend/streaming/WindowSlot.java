package dev.ember.backend.streaming;

/** One place in the device window: the {@code index}-th buffer for groups of {@code kind}. */
public record WindowSlot(WeightGroup.Kind kind, int index) {
    @Override
    public String toString() {
        return (kind == WeightGroup.Kind.ATTENTION ? "attn" : "mlp") + "-slot" + index;
    }
}
