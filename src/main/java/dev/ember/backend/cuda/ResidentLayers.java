package dev.ember.backend.cuda;

import java.util.List;
import java.util.function.ToLongFunction;

/** Every layer uploaded once ({@link DeviceWeights}): the addresses never change and nothing waits. */
record ResidentLayers(List<Attention> attention, List<Mlp> mlp) implements LayerResidency {

    static ResidentLayers of(DeviceWeights weights) {
        return new ResidentLayers(weights.layers.stream().map(w -> new Attention(w.attnNorm().address(), w.qkv().address(),
                        DeviceBuffer.addressOf(w.qkvBias()), DeviceBuffer.addressOf(w.qNorm()), DeviceBuffer.addressOf(w.kNorm()),
                        w.o().address(), DeviceBuffer.addressOf(w.oBias()))).toList(),
                weights.layers.stream().map(w -> new Mlp(w.ffnNorm().address(), w.gateUp().address(), w.down().address(),
                        DeviceBuffer.addressOf(w.gateUpBias()), DeviceBuffer.addressOf(w.downBias()))).toList());
    }

    @Override
    public Attention attention(int layer) {
        return attention.get(layer);
    }

    @Override
    public Mlp mlp(int layer) {
        return mlp.get(layer);
    }

    @Override
    public boolean streams() {
        return false;
    }

    @Override
    public long[] attentionAddresses(ToLongFunction<Attention> matrix) {
        return attention.stream().mapToLong(matrix).toArray();
    }

    @Override
    public long[] mlpAddresses(ToLongFunction<Mlp> matrix) {
        return mlp.stream().mapToLong(matrix).toArray();
    }
}
