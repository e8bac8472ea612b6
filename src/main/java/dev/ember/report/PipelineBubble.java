package dev.ember.report;

import java.util.Arrays;

/**
 * Seed 000's bubble model: how busy a pipeline of {@code stages} would keep its devices on a prefill split into
 * {@code chunks}, from each layer's measured time alone ({@code ember bench phase}) and the time one chunk's
 * activations take between two stages ({@code ember bench p2p}). The layers are split where the slowest stage is
 * fastest. Overlapped, the chunks flow through the stages one behind another: the first crosses every stage and link,
 * and each later one adds the slowest step of the pipe; sequential, each chunk crosses everything before the next starts.
 *
 * @param split          layers per stage
 * @param stageMs        each stage's time for the whole prompt
 * @param transferMs     one chunk's activations over one link
 * @param overlappedMs   the prefill's time with the chunks overlapped
 * @param sequentialMs   its time with no overlap
 */
record PipelineBubble(int[] split, double[] stageMs, int chunks, double transferMs, double overlappedMs, double sequentialMs) {

    /**
     * The model of a prefill whose layers take {@code layerMs} each (for the whole prompt, on one device) over
     * {@code stages} stages, in {@code chunks} chunks, {@code transferMs} a chunk over each link.
     */
    static PipelineBubble of(double[] layerMs, int stages, int chunks, double transferMs) {
        if (stages < 1 || stages > layerMs.length || chunks < 1 || transferMs < 0) {
            throw new IllegalArgumentException(stages + " stages of " + layerMs.length + " layers, " + chunks + " chunks, "
                    + transferMs + " ms a transfer");
        }
        int[] split = balancedSplit(layerMs, stages);
        double[] stageMs = new double[stages];
        for (int s = 0, layer = 0; s < stages; s++) {
            for (int i = 0; i < split[s]; i++) {
                stageMs[s] += layerMs[layer++];
            }
        }
        double total = Arrays.stream(stageMs).sum();
        double slowestStep = Math.max(Arrays.stream(stageMs).max().orElseThrow() / chunks, stages > 1 ? transferMs : 0);
        double overlapped = total / chunks + (stages - 1) * transferMs + (chunks - 1) * slowestStep;
        double sequential = total + (double) (stages - 1) * chunks * transferMs;
        return new PipelineBubble(split, stageMs, chunks, transferMs, overlapped, sequential);
    }

    /** The share of the stages' time they compute, overlapped: the rest is the bubble (and the links). */
    double overlappedUtilisation() {
        return Arrays.stream(stageMs).sum() / (stageMs.length * overlappedMs);
    }

    double sequentialUtilisation() {
        return Arrays.stream(stageMs).sum() / (stageMs.length * sequentialMs);
    }

    /** Contiguous layer counts, one per stage, whose slowest stage is as fast as any split makes it. */
    static int[] balancedSplit(double[] layerMs, int stages) {
        int layers = layerMs.length;
        double[] prefix = new double[layers + 1];
        for (int i = 0; i < layers; i++) {
            prefix[i + 1] = prefix[i] + layerMs[i];
        }
        // best[s][i]: the slowest stage of the first i layers over s stages, at its best; cut[s][i] where the last begins.
        double[][] best = new double[stages + 1][layers + 1];
        int[][] cut = new int[stages + 1][layers + 1];
        for (double[] row : best) {
            Arrays.fill(row, Double.POSITIVE_INFINITY);
        }
        best[0][0] = 0;
        for (int s = 1; s <= stages; s++) {
            for (int i = s; i <= layers; i++) {
                for (int j = s - 1; j < i; j++) {
                    double slowest = Math.max(best[s - 1][j], prefix[i] - prefix[j]);
                    if (slowest < best[s][i]) {
                        best[s][i] = slowest;
                        cut[s][i] = j;
                    }
                }
            }
        }
        int[] split = new int[stages];
        for (int s = stages, i = layers; s >= 1; s--) {
            split[s - 1] = i - cut[s][i];
            i = cut[s][i];
        }
        return split;
    }
}
