package dev.ember.backend.cuda;

import java.util.HashMap;
import java.util.Map;

/**
 * The runner's captured graphs of uniform steps, one per shape, and the ladder of batch sizes they are captured for. A
 * uniform step is one of decodes, or one of speculative verifications of the same length (every chunk gamma + 1 tokens
 * and as many outputs), or a draft's catch-up of the same length: {@link StepLayout#uniformLength}. Such a step is
 * padded up to the next size of the ladder so that a batch shrinking one sequence at a time replays a handful of graphs
 * instead of capturing one per size. The graphs hold the step buffers' addresses, so they are all dropped when those
 * buffers grow.
 */
final class DecodeGraphs implements AutoCloseable {
    /**
     * The batch sizes decode graphs are captured for; a decode step is padded up to the next one (past the last, to a
     * multiple of LADDER_STEP_BEYOND). Padding rows cost little: the products are bound by reading the weights, not by
     * their rows, and a padding row attends one cached token.
     */
    private static final int[] DECODE_LADDER = {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256};
    private static final int LADDER_STEP_BEYOND = 64;

    /**
     * A graph is valid for one batch size, chunk length, outputs per chunk, block-table width and split count, and for
     * what it launches after the logits.
     */
    private record GraphKey(int chunks, int rows, int outputs, int stride, int splits, StepSampling sampling) {
    }

    /**
     * Queues the work of one step on the stream: what a capture records. {@code carries}: whether it begins by taking
     * the tokens its metadata says are carried, which a graph always does (a replay with none carries none).
     */
    @FunctionalInterface
    interface Step {
        void enqueue(StepLayout layout, int maxChunkLength, int splits, StepSampling sampling, boolean carries);
    }

    /** What warm-up does for one decode shape: a batch size of the ladder and a block-table width. */
    @FunctionalInterface
    interface Shape {
        void warmUp(int size, int stride);
    }

    private final CudaStream stream;
    private final Step step;
    private final RunnerCounters counts;
    private final Map<GraphKey, CudaGraph> graphs = new HashMap<>();

    DecodeGraphs(CudaStream stream, Step step, RunnerCounters counts) {
        this.stream = stream;
        this.step = step;
        this.counts = counts;
    }

    /** The captured batch size a decode step of {@code chunks} sequences is padded to. */
    static int batchSize(int chunks) {
        for (int size : DECODE_LADDER) {
            if (size >= chunks) {
                return size;
            }
        }
        return (chunks + LADDER_STEP_BEYOND - 1) / LADDER_STEP_BEYOND * LADDER_STEP_BEYOND;
    }

    /**
     * Calls {@code shape} for every ladder size up to {@code largest} (itself a ladder size), for every block-table width
     * 1, 2, 4 .. {@code widest}, narrowest first.
     */
    static void forEachShape(int largest, int widest, Shape shape) {
        for (int stride = 1; ; stride = Math.min(2 * stride, widest)) {
            for (int size : DECODE_LADDER) {
                shape.warmUp(size, stride);
                if (size >= largest) {
                    break;
                }
            }
            for (int size = DECODE_LADDER[DECODE_LADDER.length - 1] + LADDER_STEP_BEYOND; size <= largest; size += LADDER_STEP_BEYOND) {
                shape.warmUp(size, stride);
            }
            if (stride == widest) {
                break;
            }
        }
    }

    /** The captured graph of a uniform step of this (padded) layout, captured now if it is the first of its shape. */
    CudaGraph graph(StepLayout layout, int splits, StepSampling sampling) {
        GraphKey key = new GraphKey(layout.chunks(), layout.rows(), layout.outputs(), layout.stride(), splits, sampling);
        CudaGraph graph = graphs.get(key);
        if (graph == null) {
            long start = System.nanoTime();
            int length = layout.uniformLength();
            graph = CudaGraph.capture(stream, () -> step.enqueue(layout, length, splits, sampling, true));
            graphs.put(key, graph);
            counts.graphsCaptured++;
            counts.captureNanos += System.nanoTime() - start;
        }
        return graph;
    }

    /** How many graphs are held (one per step shape seen). */
    int size() {
        return graphs.size();
    }

    /** Destroys every graph: for when the buffers whose addresses they hold are replaced, and on close. */
    void clear() {
        graphs.values().forEach(CudaGraph::close);
        graphs.clear();
    }

    @Override
    public void close() {
        clear();
    }
}
