package dev.ember.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.Progress;
import dev.ember.backend.Backend;
import dev.ember.backend.Backends;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.cpu.ReferenceForward;
import dev.ember.cli.GenerateCommandTest;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.RandomWeights;
import dev.ember.model.RopeScaling;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** {@code ember perplexity}: its windows, its figures against a float64 forward pass, and its one-line errors. */
class PerplexityTest {
    private static final String MODEL = "models/ember-tiny";

    @Test
    void windowsScoreEveryTokenOnceWithAtLeastContextMinusStrideTokensOfHistory() {
        SplittableRandom random = new SplittableRandom(5);
        for (int trial = 0; trial < 500; trial++) {
            int context = random.nextInt(2, 40);
            int stride = random.nextInt(1, context);
            int tokens = random.nextInt(2, 200);
            List<Perplexity.Window> windows = Perplexity.windows(tokens, context, stride);
            int[] timesScored = new int[tokens];
            for (Perplexity.Window w : windows) {
                assertTrue(w.end() - w.start() <= context, w + " is longer than the context " + context);
                assertTrue(w.firstScored() > w.start(), w + " scores its first token, which has no history in it");
                for (int t = w.firstScored(); t < w.end(); t++) {
                    timesScored[t]++;
                    assertTrue(t - w.start() >= Math.min(t, context - stride),
                            "token " + t + " of " + w + " has too little history (context " + context + ", stride " + stride + ")");
                }
            }
            int[] once = new int[tokens];
            Arrays.fill(once, 1, tokens, 1);
            assertArrayEquals(once, timesScored, "tokens " + tokens + ", context " + context + ", stride " + stride);
        }
    }

    @Test
    void windowsRefuseAStrideThatWouldSkipTokens() {
        assertThrows(IllegalArgumentException.class, () -> Perplexity.windows(100, 16, 16));
        assertThrows(IllegalArgumentException.class, () -> Perplexity.windows(100, 16, 0));
    }

    /** Perplexity from the CPU backend's windows, in whole windows and in pieces, against the float64 reference's. */
    @Test
    void scoreEqualsTheFloat64ReferenceOnARandomModel() {
        ModelConfig config = new ModelConfig(Architecture.LLAMA, 64, 96, 2, 4, 2, 16, 300, 64, 1e-5, 10000,
                new RopeScaling.None(), false, Biases.NONE, 0, 1, List.of(2), DType.BF16);
        int context = 16;
        int stride = 5;
        try (Model model = RandomWeights.create(config, DType.BF16, 17);
             Backend backend = Backends.open(Backends.Choice.CPU, 2);
             ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(config, context, 4), Progress.NONE)) {
            int[] tokens = new SplittableRandom(3).ints(70, 0, config.vocabSize()).toArray();
            double expected = 0;
            for (Perplexity.Window w : Perplexity.windows(tokens.length, context, stride)) {
                double[][] logits = ReferenceForward.logits(model, Arrays.copyOfRange(tokens, w.start(), w.end()));
                for (int t = w.firstScored(); t < w.end(); t++) {
                    expected += negativeLogLikelihood(logits[t - 1 - w.start()], tokens[t]);
                }
            }
            for (int piece : new int[] {Perplexity.PIECE_TOKENS, 3}) {
                Perplexity.Score score = Perplexity.score(runner, tokens, context, stride, piece, Progress.NONE);
                assertEquals(tokens.length - 1, score.scoredTokens());
                assertEquals(expected, score.totalNats(), 1e-5 * expected, "pieces of " + piece);
                assertEquals(Math.exp(expected / (tokens.length - 1)), score.perplexity(), 1e-5 * score.perplexity());
            }
        }
    }

    private static double negativeLogLikelihood(double[] logits, int target) {
        double max = Arrays.stream(logits).max().orElseThrow();
        double sum = Arrays.stream(logits).map(x -> Math.exp(x - max)).sum();
        return max + Math.log(sum) - logits[target];
    }

    @Test
    void theCommandPrintsAndWritesConsistentFigures(@TempDir Path dir) throws IOException {
        Path text = dir.resolve("text.txt");
        String content = "To install a package on Debian, run apt-get install with its name. Café: naïve UTF-8 counts bytes.\n";
        Files.writeString(text, content.repeat(6));
        Path json = dir.resolve("ppl.json");
        GenerateCommandTest.Run run = GenerateCommandTest.ember("perplexity", "--model", MODEL, "--backend", "cpu", "--threads",
                "2", "--file", text.toString(), "--context", "64", "--json", json.toString());
        assertEquals(0, run.exitCode(), run.err());
        JsonNode figures = new ObjectMapper().readTree(json.toFile());
        long bytes = content.repeat(6).getBytes(StandardCharsets.UTF_8).length;
        assertEquals(bytes, figures.get("bytes").asLong(), "all of the text is scored: its UTF-8 bytes");
        assertEquals(32, figures.get("stride").asInt(), "the stride defaults to half the context");
        double nats = figures.get("total_nll_nats").asDouble();
        int tokens = figures.get("tokens_scored").asInt();
        assertEquals(nats / tokens, figures.get("mean_nll_nats_per_token").asDouble(), 1e-12);
        assertEquals(Math.exp(nats / tokens), figures.get("perplexity_per_token").asDouble(), 1e-9);
        assertEquals(nats / Math.log(2) / bytes, figures.get("bits_per_byte").asDouble(), 1e-12);
        // The text repeats, so the trained model predicts it far better than a uniform choice over its vocabulary.
        assertTrue(figures.get("perplexity_per_token").asDouble() < 100, run.out());
        assertTrue(run.out().contains(String.format(Locale.ROOT, "%,d tokens scored (%,d bytes)", tokens, bytes)), run.out());

        GenerateCommandTest.Run capped = GenerateCommandTest.ember("perplexity", "--model", MODEL, "--backend", "cpu", "--threads",
                "2", "--file", text.toString(), "--max-tokens", "10");
        assertEquals(0, capped.exitCode(), capped.err());
        assertTrue(capped.out().contains("10 tokens scored"), capped.out());
    }

    @Test
    void badInputEndsWithOneErrorLine(@TempDir Path dir) throws IOException {
        Path empty = Files.writeString(dir.resolve("empty.txt"), "");
        Path text = Files.writeString(dir.resolve("text.txt"), "Some text to score.");
        assertOneError("--file " + dir.resolve("missing.txt") + " does not exist", "--file", dir.resolve("missing.txt").toString());
        assertOneError(empty + " is empty: there is no text to score", "--file", empty.toString());
        assertOneError("--context 4096 is outside 2 .. 2048 (the model's context)", "--file", text.toString(), "--context", "4096");
        assertOneError("--stride 64 must be at least 1 and less than the context (64)", "--file", text.toString(), "--context", "64",
                "--stride", "64");
    }

    private static void assertOneError(String expected, String... options) {
        String[] common = {"perplexity", "--model", MODEL, "--backend", "cpu", "--threads", "2"};
        String[] full = Arrays.copyOf(common, common.length + options.length);
        System.arraycopy(options, 0, full, common.length, options.length);
        GenerateCommandTest.Run run = GenerateCommandTest.ember(full);
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(run.err().startsWith("ember: error: " + expected), run.err());
        assertEquals(1, run.err().lines().filter(l -> !l.isBlank()).count(), run.err());
    }
}
