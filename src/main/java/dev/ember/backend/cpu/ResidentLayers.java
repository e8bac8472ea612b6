package dev.ember.backend.cpu;

import dev.ember.model.LayerWeights;
import dev.ember.model.Model;

import java.lang.foreign.Arena;
import java.util.List;

/** Every layer's weights for the runner's life: views of the mapped tensors (f16 widened once into {@code arena}). */
record ResidentLayers(List<Attention> attention, List<Mlp> mlp) implements LayerResidency {

    static ResidentLayers of(Model model, Arena arena) {
        List<LayerWeights> layers = model.layers();
        return new ResidentLayers(layers.stream().map(w -> new Attention(WeightMatrix.vector(w.attnNorm(), arena),
                        WeightMatrix.of(w.wq(), arena), WeightMatrix.of(w.wk(), arena), WeightMatrix.of(w.wv(), arena),
                        WeightMatrix.of(w.wo(), arena), WeightMatrix.vector(w.bq(), arena), WeightMatrix.vector(w.bk(), arena),
                        WeightMatrix.vector(w.bv(), arena), WeightMatrix.vector(w.bo(), arena),
                        WeightMatrix.vector(w.qNorm(), arena), WeightMatrix.vector(w.kNorm(), arena))).toList(),
                layers.stream().map(w -> new Mlp(WeightMatrix.vector(w.ffnNorm(), arena), WeightMatrix.of(w.wGate(), arena),
                        WeightMatrix.of(w.wUp(), arena), WeightMatrix.of(w.wDown(), arena), WeightMatrix.vector(w.bGate(), arena),
                        WeightMatrix.vector(w.bUp(), arena), WeightMatrix.vector(w.bDown(), arena))).toList());
    }

    /** The first {@code count} layers, for a runner that reads them (a self-speculative draft). */
    ResidentLayers firstLayers(int count) {
        return new ResidentLayers(attention.subList(0, count), mlp.subList(0, count));
    }

    @Override
    public Attention attention(int layer) {
        return attention.get(layer);
    }

    @Override
    public Mlp mlp(int layer) {
        return mlp.get(layer);
    }
}
