package dev.ember.model;

import dev.ember.Progress;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.UnaryOperator;
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
                l.bq(), l.bk(), l.bv(), l.bo(), l.qNorm(), l.kNorm(), l.ffnNorm(), l.wGate(), l.wUp(), l.wDown(), l.bGate(), l.bUp(),
                l.bDown()));
        Stream<Tensor> head = lmHead == embedding ? Stream.of(embedding, finalNorm) : Stream.of(embedding, finalNorm, lmHead);
        return Stream.concat(head, perLayer).filter(t -> t != null);
    }

    /**
     * The same model with only its first {@code count} decoder layers, then its own final norm and output projection:
     * the draft of self-speculative decoding ("Draft &amp; Verify", Zhang et al. 2023). It shares this model's tensors;
     * closing it closes nothing.
     */
    public Model firstLayers(int count) {
        return layerRange(0, count);
    }

    /**
     * This model with its context capped at {@code tokens} ({@link ModelConfig#withMaxPositions}). It takes over this
     * model's tensors and arena: close it, not this one.
     */
    public Model withMaxPositions(int tokens) {
        return new Model(directory, config.withMaxPositions(tokens), embedding, layers, finalNorm, lmHead, arena);
    }

    /**
     * This model with its matrices (the projections, the embedding and the output projection) in {@code type}, as
     * vLLM's {@code --dtype} casts a checkpoint: converted into this model's arena (so closing either closes both),
     * the norms and biases as stored (every backend reads those in fp32). This model itself where every matrix is of
     * that type already. {@code progress} counts the tensors converted.
     */
    public Model withWeightType(DType type, Progress progress) {
        List<Tensor> matrices = tensors().filter(t -> t.rank() == 2).toList();
        if (matrices.stream().allMatch(t -> t.dtype() == type)) {
            return this;
        }
        if (arena == null) {
            throw new IllegalStateException("a view of another model's tensors (a stage, a shard, a draft) is not converted: convert its model");
        }
        Map<Tensor, Tensor> converted = new IdentityHashMap<>();
        for (int i = 0; i < matrices.size(); i++) {
            progress.update("converting to " + type.name().toLowerCase(Locale.ROOT), i, matrices.size());
            converted.put(matrices.get(i), matrices.get(i).converted(type, arena));
        }
        progress.update("converted", matrices.size(), matrices.size());
        UnaryOperator<Tensor> to = t -> converted.getOrDefault(t, t);
        return new Model(directory, config.withDtype(type), to.apply(embedding), layers.stream().map(l -> l.map(to)).toList(),
                finalNorm, to.apply(lmHead), arena);
    }

    /**
     * Decoder layers [from, to) with this model's embedding, final norm and output projection: one pipeline stage (the
     * first embeds, the last projects), sharing this model's tensors; closing it closes nothing.
     */
    public Model layerRange(int from, int to) {
        if (from < 0 || to > layers.size() || from >= to) {
            throw new IllegalArgumentException("layers [" + from + ", " + to + ") of a model of " + layers.size());
        }
        return new Model(directory, config.withLayers(to - from), embedding, layers.subList(from, to), finalNorm, lmHead, null);
    }

    /**
     * What rank {@code rank} of {@code size} tensor-parallel ranks holds (Megatron's split): the rows of q, k, v (and
     * their biases) for its heads, of gate and up (and theirs) for its intermediate features, and of the output
     * projection for its share of the vocabulary ({@link #vocabularyShare}); the columns of o and down that read those
     * features, copied into an arena of its own; the embedding, the norms and the o and down biases whole (each rank
     * adds them once the partial sums are summed). Its config is {@link ModelConfig#tensorShard}'s;
     * the rest are views of this model's tensors, so this model must outlive it.
     */
    public Model tensorShard(int rank, int size) {
        ModelConfig shard = config.tensorShard(size);
        int q = shard.qDim(), kv = shard.kvDim(), ff = shard.intermediateSize();
        Arena columns = Arena.ofShared();
        try {
            List<LayerWeights> sharded = layers.stream().map(l -> new LayerWeights(l.attnNorm(),
                    l.wq().rows(rank * q, (rank + 1) * q), l.wk().rows(rank * kv, (rank + 1) * kv),
                    l.wv().rows(rank * kv, (rank + 1) * kv), l.wo().columns(rank * q, (rank + 1) * q, columns),
                    rowsOrNull(l.bq(), rank * q, (rank + 1) * q), rowsOrNull(l.bk(), rank * kv, (rank + 1) * kv),
                    rowsOrNull(l.bv(), rank * kv, (rank + 1) * kv), l.bo(), l.qNorm(), l.kNorm(), l.ffnNorm(),
                    l.wGate().rows(rank * ff, (rank + 1) * ff), l.wUp().rows(rank * ff, (rank + 1) * ff),
                    l.wDown().columns(rank * ff, (rank + 1) * ff, columns), rowsOrNull(l.bGate(), rank * ff, (rank + 1) * ff),
                    rowsOrNull(l.bUp(), rank * ff, (rank + 1) * ff), l.bDown())).toList();
            int[] vocabulary = vocabularyShare(config.vocabSize(), rank, size);
            return new Model(directory, shard, embedding, sharded, finalNorm, lmHead.rows(vocabulary[0], vocabulary[1]), columns);
        } catch (RuntimeException e) {
            columns.close();
            throw e;
        }
    }

    /** Rows [from, to) of the vocabulary that rank {@code rank} of {@code size} projects onto: nearly equal shares. */
    private static int[] vocabularyShare(int vocab, int rank, int size) {
        return new int[] {(int) ((long) vocab * rank / size), (int) ((long) vocab * (rank + 1) / size)};
    }

    private static Tensor rowsOrNull(Tensor t, int from, int to) {
        return t == null ? null : t.rows(from, to);
    }

    public long weightBytes() {
        return tensors().mapToLong(Tensor::byteSize).sum();
    }

    public String name() {
        return directory == null ? "in-memory" : HubCache.repositoryId(directory).orElse(directory.getFileName().toString());
    }

    @Override
    public void close() {
        if (arena != null) {
            arena.close();
        }
    }
}
