package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.kvcache.BlockAllocator;
import dev.ember.kvcache.BlockTable;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One step of a runner alone, outside the engine, ready to be timed again and again on the host clock around
 * {@code submit} and {@code await}: {@code batch} sequences of {@code context} random tokens are prefilled into the
 * runner's cache once; each timed step then computes every sequence's next {@code tokens} tokens at the same positions,
 * with a greedily sampled output at each, as a verification has. One token a sequence is a plain decode step;
 * gamma + 1 is speculative decoding's verification step. {@link #close} gives the cache blocks back.
 */
final class StepCost implements AutoCloseable {
    private final ModelRunner runner;
    private final List<BlockTable> tables;
    private final int context;
    private final SplittableRandom random;

    private StepCost(ModelRunner runner, List<BlockTable> tables, int context, SplittableRandom random) {
        this.runner = runner;
        this.tables = tables;
        this.context = context;
        this.random = random;
    }

    /** Prefills {@code batch} sequences of {@code context} tokens, with room for steps of up to {@code maxTokens} tokens. */
    static StepCost prepare(ModelRunner runner, int batch, int context, int maxTokens, long seed) {
        BlockAllocator allocator = runner.blockAllocator();
        int vocab = runner.config().vocabSize();
        SplittableRandom random = new SplittableRandom(seed);
        List<BlockTable> tables = new ArrayList<>(batch);
        try {
            List<ForwardBatch.Chunk> prefill = new ArrayList<>(batch);
            for (int i = 0; i < batch; i++) {
                BlockTable table = allocator.newTable();
                tables.add(table);
                if (!table.reserve(context + maxTokens, allocator)) {
                    throw new EmberException("the KV cache cannot hold " + batch + " sequences of " + (context + maxTokens)
                            + " tokens to time a step; give it more room (--kv-cache-gb)");
                }
                prefill.add(new ForwardBatch.Chunk(random.ints(context, 0, vocab).toArray(), 0, table));
            }
            runner.submit(new ForwardBatch(prefill), greedy(batch, vocab)).await(new int[batch]);
            return new StepCost(runner, tables, context, random);
        } catch (RuntimeException e) {
            tables.forEach(t -> t.release(allocator));
            throw e;
        }
    }

    /** Runs one step of {@code tokens} tokens a sequence; returns its seconds. */
    double seconds(int tokens) {
        int vocab = runner.config().vocabSize();
        List<ForwardBatch.Chunk> chunks = new ArrayList<>(tables.size());
        for (BlockTable table : tables) {
            chunks.add(new ForwardBatch.Chunk(random.ints(tokens, 0, vocab).toArray(), context, table, -1, tokens));
        }
        ForwardBatch step = new ForwardBatch(chunks);
        Sampler[] samplers = greedy(tables.size() * tokens, vocab);
        int[] sampled = new int[samplers.length];
        long start = System.nanoTime();
        runner.submit(step, samplers).await(sampled);
        return (System.nanoTime() - start) / 1e9;
    }

    private static Sampler[] greedy(int rows, int vocab) {
        Sampler[] samplers = new Sampler[rows];
        for (int i = 0; i < rows; i++) {
            samplers[i] = new Sampler(SamplingParams.greedy(1), vocab);
        }
        return samplers;
    }

    @Override
    public void close() {
        for (BlockTable table : tables) {
            table.release(runner.blockAllocator());
        }
    }
}
