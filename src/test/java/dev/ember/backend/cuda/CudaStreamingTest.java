package dev.ember.backend.cuda;

import dev.ember.Progress;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.StreamingFixtures;
import dev.ember.backend.streaming.StreamingMode;
import dev.ember.backend.streaming.StreamingPlan;
import dev.ember.backend.streaming.StreamingReport;
import dev.ember.backend.streaming.StreamingSettings;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.ModelLoader;
import dev.ember.model.RopeScaling;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Weight streaming on the GPU: with a weight budget smaller than the model, preload, stream and mixed give the greedy
 * tokens of the resident run (up to bf16 near-ties, as {@link GreedyRuns} judges, since each runner times its own
 * choice of product kernels), and the window never holds more groups than its slots.
 */
class CudaStreamingTest {
    private static final int TOKENS = 24;
    private static final int KV_TOKENS = 512;
    /** Llama-like, large enough that copies take time against compute: 8 layers of 8 MB. */
    private static final ModelConfig LLAMA = new ModelConfig(Architecture.LLAMA, 1024, 2816, 8, 16, 4, 64, 2048, 1024,
            1e-5, 500000, new RopeScaling.None(), false, Biases.NONE, 0, 1, List.of(2), DType.BF16);

    @TempDir
    static Path weights;

    @Test
    void everyModeGivesTheTokensOfTheResidentModelWithinItsBudget() {
        Gpu.assumeAvailable();
        List<Path> models = List.of(Path.of("models/ember-tiny"), StreamingFixtures.onDisk(StreamingFixtures.WITH_BIAS, 3, weights),
                StreamingFixtures.onDisk(StreamingFixtures.WITH_QK_NORM, 4, weights),
                StreamingFixtures.onDisk(LLAMA, 5, weights));
        try (CudaBackend backend = new CudaBackend()) {
            for (Path dir : models) {
                try (Model model = ModelLoader.load(dir)) {
                    int[][] prompts = {StreamingFixtures.prompt(17, model.config().vocabSize())};
                    // Resident: the embedding, final norm and output projection; the budget holds them and half the layers.
                    StreamingPlan whole = backend.planWeights(model, StreamingFixtures.settings(StreamingMode.PRELOAD,
                            model.config().numLayers()));
                    long budget = whole.residentBytes() + whole.windowBytes() / 2;
                    try (ModelRunner resident = backend.load(model, StreamingFixtures.kv(model, KV_TOKENS), Progress.NONE)) {
                        int[][] expected = {StreamingFixtures.greedy(resident, prompts[0], TOKENS)};
                        for (StreamingMode mode : List.of(StreamingMode.PRELOAD, StreamingMode.STREAM, StreamingMode.MIXED)) {
                            StreamingSettings settings = new StreamingSettings(mode, budget, 0, 0, 1, 2, 2, 1, 1 << 20, null);
                            try (ModelRunner streamed = backend.load(model, StreamingFixtures.kv(model, KV_TOKENS), settings, Progress.NONE)) {
                                String what = dir.getFileName() + " " + mode.label();
                                StreamingReport before = streamed.streaming().orElseThrow();
                                assertTrue(before.plan().deviceBytes() <= budget, what + ": the weights keep to the budget");
                                int window = before.plan().shape().windowLayers();
                                assertTrue(window < model.config().numLayers(), what + ": a window smaller than the model");
                                int[][] got = {StreamingFixtures.greedy(streamed, prompts[0], TOKENS)};
                                GreedyRuns.assertSameUpToNearTies(what, resident, prompts, expected, got);
                                StreamingReport report = streamed.streaming().orElseThrow();
                                assertTrue(report.mostGroupsInWindow() <= 2 * window, what + ": the window held "
                                        + report.mostGroupsInWindow() + " groups in " + 2 * window + " slots");
                                assertTrue(report.bytesCopied() >= TOKENS * report.plan().shape().bytesPerStep(),
                                        what + ": every step streams every layer");
                                assertEquals(mode != StreamingMode.PRELOAD, report.bytesStaged() > 0, what + ": staged bytes");
                                System.out.printf("[gpu-check] %s: window %d of %d layers, %s, %.1f MB copied%n", what, window,
                                        model.config().numLayers(), report.source(), report.bytesCopied() / 1e6);
                                // Several requests through the engine: chunked prefill beside decodes, overlapped steps.
                                int vocab = model.config().vocabSize();
                                int[][] batch = {StreamingFixtures.prompt(90, vocab), StreamingFixtures.prompt(7, vocab),
                                        StreamingFixtures.prompt(40, vocab)};
                                int[] lengths = {12, 20, 6};
                                GreedyRuns.assertSameUpToNearTies(what + " through the engine", resident, batch,
                                        StreamingFixtures.engineGreedy(resident, batch, lengths),
                                        StreamingFixtures.engineGreedy(streamed, batch, lengths));
                            }
                        }
                    }
                }
            }
        }
    }
}
