package dev.ember.model;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * A model described once, for every backend: its config and its tensors, which stay memory-mapped
 * from the safetensors files (or, for random-weight models, live in {@code arena}) until {@link #close()}.
 *
 * @param directory where it was loaded from, or null for a model made in memory
 * @param lmHead    the output projection; the same tensor as {@code embedding} when embeddings are tied
 */
public record Model(Path directory, ModelConfig config, Tensor embedding, List<LayerWeights> layers,
                    Tensor finalNorm, Tensor lmHead, Arena arena) implements AutoCloseable {

    public Model {
        layers = List.copyOf(layers);
    }

    /** Every distinct tensor, the tied output projection counted once. */
    public Stream<Tensor> tensors() {
        Stream<Tensor> perLayer = layers.stream().flatMap(l -> Stream.of(l.attnNorm(), l.wq(), l.wk(), l.wv(), l.wo(),
                l.bq(), l.bk(), l.bv(), l.qNorm(), l.kNorm(), l.ffnNorm(), l.wGate(), l.wUp(), l.wDown()));
        Stream<Tensor> head = lmHead == embedding ? Stream.of(embedding, finalNorm) : Stream.of(embedding, finalNorm, lmHead);
        return Stream.concat(head, perLayer).filter(t -> t != null);
    }

    /**
     * The same model with only its first {@code count} decoder layers, then its own final norm and output projection:
     * the draft of self-speculative decoding ("Draft &amp; Verify", Zhang et al. 2023). It shares this model's tensors;
     * closing it closes nothing.
     */
    public Model firstLayers(int count) {
        return new Model(directory, config.withLayers(count), embedding, layers.subList(0, count), finalNorm, lmHead, null);
    }

    public long weightBytes() {
        return tensors().mapToLong(Tensor::byteSize).sum();
    }

    public String name() {
        return directory == null ? "in-memory" : directory.getFileName().toString();
    }

    @Override
    public void close() {
        if (arena != null) {
            arena.close();
        }
    }
}
