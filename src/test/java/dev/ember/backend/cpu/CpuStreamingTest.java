package dev.ember.backend.cpu;

import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.StreamingFixtures;
import dev.ember.backend.streaming.StreamingMode;
import dev.ember.backend.streaming.StreamingReport;
import dev.ember.backend.streaming.StreamingSettings;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.ModelLoader;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CPU backend in every streaming mode gives the tokens of {@code full} and its logits (the same arithmetic on the
 * same bytes; within 1e-5, as the Vector API's lane reductions may round differently once the JIT compiles them), on
 * the default model and on random-weight models written to disk, with a window smaller than the model; the window
 * never holds more than its slots.
 */
class CpuStreamingTest {
    private static final int TOKENS = 12;
    private static CpuBackend backend;

    @TempDir
    static Path weights;

    @BeforeAll
    static void open() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void close() {
        backend.close();
    }

    private static List<Path> models() {
        return List.of(Path.of("models/ember-tiny"), StreamingFixtures.onDisk(StreamingFixtures.WITH_BIAS, 3, weights),
                StreamingFixtures.onDisk(StreamingFixtures.WITH_QK_NORM, 4, weights));
    }

    @Test
    void everyModeGivesTheTokensAndLogitsOfFull() {
        for (Path dir : models()) {
            try (Model model = ModelLoader.load(dir)) {
                ModelConfig c = model.config();
                int[] prompt = StreamingFixtures.prompt(9, c.vocabSize());
                int[] expected;
                float[] expectedLogits;
                try (ModelRunner full = backend.load(model, StreamingFixtures.kv(model, 64), Progress.NONE)) {
                    assertTrue(full.streaming().isEmpty(), "no budget, no mode: every weight resident");
                    expected = StreamingFixtures.greedy(full, prompt, TOKENS);
                    expectedLogits = StreamingFixtures.lastLogits(full, prompt);
                }
                for (StreamingMode mode : List.of(StreamingMode.PRELOAD, StreamingMode.STREAM, StreamingMode.MIXED)) {
                    int window = c.numLayers() - 2;
                    try (ModelRunner streamed = backend.load(model, StreamingFixtures.kv(model, 64),
                            StreamingFixtures.settings(mode, window), Progress.NONE)) {
                        String what = dir.getFileName() + " in " + mode.label();
                        assertArrayEquals(expected, StreamingFixtures.greedy(streamed, prompt, TOKENS), what + ": greedy tokens");
                        assertArrayEquals(expectedLogits, StreamingFixtures.lastLogits(streamed, prompt), 1e-5f, what + ": logits");
                        StreamingReport report = streamed.streaming().orElseThrow();
                        assertEquals(mode, report.plan().mode());
                        assertTrue(streamed.firstLayers(1, StreamingFixtures.kv(model.firstLayers(1), 64)).isEmpty(),
                                what + ": streamed layers are not lent to a draft");
                        assertTrue(report.mostGroupsInWindow() <= 2 * window, what + ": the window held "
                                + report.mostGroupsInWindow() + " groups, more than its " + 2 * window + " slots");
                        long perStep = report.plan().shape().bytesPerStep();
                        assertTrue(report.bytesCopied() >= (TOKENS + 1) * perStep, what + ": every step streams every layer");
                        assertEquals(mode != StreamingMode.PRELOAD, report.bytesStaged() > 0, what + ": staged bytes");
                    }
                }
            }
        }
    }

    @Test
    void requestsRunTogetherThroughTheEngineGetTheTokensOfFull() {
        try (Model model = ModelLoader.load(models().get(2))) {
            int vocab = model.config().vocabSize();
            int[][] prompts = {StreamingFixtures.prompt(70, vocab), StreamingFixtures.prompt(5, vocab),
                    StreamingFixtures.prompt(33, vocab)};
            int[] lengths = {9, 14, 4};
            int[][] expected;
            try (ModelRunner full = backend.load(model, StreamingFixtures.kv(model, 256), Progress.NONE)) {
                expected = StreamingFixtures.engineGreedy(full, prompts, lengths);
            }
            for (StreamingMode mode : List.of(StreamingMode.PRELOAD, StreamingMode.STREAM, StreamingMode.MIXED)) {
                try (ModelRunner streamed = backend.load(model, StreamingFixtures.kv(model, 256),
                        StreamingFixtures.settings(mode, 1), Progress.NONE)) {
                    int[][] got = StreamingFixtures.engineGreedy(streamed, prompts, lengths);
                    for (int i = 0; i < prompts.length; i++) {
                        assertArrayEquals(expected[i], got[i], mode.label() + ": request " + i);
                    }
                }
            }
        }
    }

    @Test
    void aBudgetSmallerThanTheWeightsStreamsThemWithTheSameTokens() {
        try (Model model = ModelLoader.load(models().get(1))) {
            int[] prompt = StreamingFixtures.prompt(5, model.config().vocabSize());
            int[] expected;
            try (ModelRunner full = backend.load(model, StreamingFixtures.kv(model, 32), Progress.NONE)) {
                expected = StreamingFixtures.greedy(full, prompt, TOKENS);
            }
            long weightBytes = model.weightBytes();
            StreamingSettings budget = StreamingSettings.AUTOMATIC.withBudget(weightBytes * 3 / 4);
            try (ModelRunner streamed = backend.load(model, StreamingFixtures.kv(model, 32), budget, Progress.NONE)) {
                StreamingReport report = streamed.streaming().orElseThrow(() -> new AssertionError("a budget below the weights streams"));
                assertEquals(StreamingMode.STREAM, report.plan().mode(), "the host's memory holds this model");
                assertTrue(report.plan().deviceBytes() <= weightBytes * 3 / 4, "the weights keep to the budget");
                assertTrue(report.plan().shape().windowLayers() < model.config().numLayers());
                assertArrayEquals(expected, StreamingFixtures.greedy(streamed, prompt, TOKENS));
            }
        }
    }

    @Test
    void aBudgetBelowTheResidentWeightsAndOneLayerSaysWhatIsNeeded() {
        try (Model model = ModelLoader.load(models().get(1))) {
            long head = model.embedding().byteSize() + model.lmHead().byteSize();
            EmberException e = assertThrows(EmberException.class, () -> backend.load(model, StreamingFixtures.kv(model, 32),
                    StreamingSettings.AUTOMATIC.withBudget(head), Progress.NONE));
            assertTrue(e.getMessage().contains("must hold the resident weights") && e.getMessage().contains("at least")
                    && e.getMessage().contains("host's memory"), e.getMessage());
        }
    }
}
