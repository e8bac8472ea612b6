package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.backend.ModelRunner;
import dev.ember.cli.ConsoleProgress;
import dev.ember.cli.ModelOptions;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import dev.ember.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code ember perplexity}: how well a model predicts a text file, as mean negative log-likelihood per token, perplexity
 * per token and bits per byte, scored in sliding windows ({@link Perplexity}).
 */
@Command(name = "perplexity", mixinStandardHelpOptions = true, sortOptions = false,
        description = "How well a model predicts a text: mean negative log-likelihood and perplexity per token, and bits per "
                + "byte (comparable across tokenizers), scored in sliding windows as llama.cpp and HF's guide do.")
public final class PerplexityCommand implements Callable<Integer> {
    /** The longest default window: longer ones cost more per token for little gain on a small model. */
    static final int DEFAULT_CONTEXT_CAP = 1024;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--file", required = true, paramLabel = "TEXT", description = "the UTF-8 text to score")
    Path file;

    @Option(names = "--context", paramLabel = "N",
            description = "window length in tokens; default: the model's context, at most " + DEFAULT_CONTEXT_CAP)
    Integer context;

    @Option(names = "--stride", paramLabel = "N",
            description = "tokens between window starts; each window scores the tokens after the previous one's, so every "
                    + "token has at least context - stride tokens of history; default: context / 2")
    Integer stride;

    @Option(names = "--max-tokens", paramLabel = "N", description = "score only the text's first N tokens (a quick run)")
    Integer maxTokens;

    @Option(names = "--json", paramLabel = "FILE", description = "also write the figures as JSON")
    Path json;

    @Override
    public Integer call() {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        PrintStream err = System.err;
        EmberException.require(maxTokens == null || maxTokens >= 1, "--max-tokens must be at least 1");
        String text = readText(file);
        EmberException.require(!text.isEmpty(), file + " is empty: there is no text to score");
        Path dir = modelOptions.modelDirectory();
        ConsoleProgress progress = new ConsoleProgress(err);
        try (Model model = ModelLoader.load(dir, progress);
             Tokenizer tokenizer = Tokenizer.load(dir);
             Backend backend = modelOptions.openBackend(err)) {
            int modelContext = model.config().maxPositions();
            int window = context != null ? context : Math.min(modelContext, DEFAULT_CONTEXT_CAP);
            EmberException.require(window >= 2 && window <= modelContext, "--context " + window + " is outside 2 .. "
                    + modelContext + " (the model's context)");
            int step = stride != null ? stride : window / 2;
            EmberException.require(step >= 1 && step < window, "--stride " + step + " must be at least 1 and less than the "
                    + "context (" + window + "), or a window would start past the tokens it must score");
            int[] tokens = tokenizer.encode(text);
            if (maxTokens != null && tokens.length > maxTokens + 1) {
                tokens = Arrays.copyOf(tokens, maxTokens + 1);
            }
            EmberException.require(tokens.length >= 2, file + " encodes to " + tokens.length + " token(s): perplexity needs "
                    + "one token after the first");
            // The bytes of the scored tokens (all but the first, a BOS where the tokenizer adds one): the whole text
            // unless --max-tokens cut it.
            long bytes = tokenizer.decode(Arrays.copyOfRange(tokens, 1, tokens.length), false)
                    .getBytes(StandardCharsets.UTF_8).length;
            KvCacheSpec kv = KvCacheSpec.forTokens(model.config(), window, KvCacheSpec.DEFAULT_BLOCK_SIZE);
            try (ModelRunner runner = backend.load(model, kv, progress)) {
                long start = System.nanoTime();
                Perplexity.Score score = Perplexity.score(runner, tokens, window, step, progress);
                double seconds = (System.nanoTime() - start) / 1e9;
                out.printf(Locale.ROOT, "[%s] %s: %,d tokens scored (%,d bytes), context %d, stride %d%n", model.name(),
                        file, score.scoredTokens(), bytes, window, step);
                out.printf(Locale.ROOT, "mean NLL: %.4f nats/token, perplexity: %.3f per token, %.4f bits per byte%n",
                        score.meanNats(), score.perplexity(), score.bitsPerByte(bytes));
                err.printf(Locale.ROOT, "[%s] %.1f s, %.0f scored tokens/s, backend: %s%n", model.name(), seconds,
                        score.scoredTokens() / seconds, runner.deviceName());
                if (json != null) {
                    Map<String, Object> figures = new LinkedHashMap<>();
                    figures.put("model", model.name());
                    figures.put("model_dir", dir.toString());
                    figures.put("file", file.toString());
                    figures.put("device", runner.deviceName());
                    figures.put("date", Instant.now().toString());
                    figures.put("context", window);
                    figures.put("stride", step);
                    figures.put("tokens_scored", score.scoredTokens());
                    figures.put("bytes", bytes);
                    figures.put("total_nll_nats", score.totalNats());
                    figures.put("mean_nll_nats_per_token", score.meanNats());
                    figures.put("perplexity_per_token", score.perplexity());
                    figures.put("bits_per_byte", score.bitsPerByte(bytes));
                    figures.put("seconds", seconds);
                    ResultTable.writeJsonValue(json, figures);
                }
            }
        }
        return 0;
    }

    private static String readText(Path file) {
        try {
            return StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(Files.readAllBytes(file))).toString();
        } catch (NoSuchFileException e) {
            throw new EmberException("--file " + file + " does not exist");
        } catch (CharacterCodingException e) {
            throw new EmberException("--file " + file + " is not UTF-8 text");
        } catch (IOException e) {
            throw new EmberException("--file " + file + " cannot be read: " + e.getMessage());
        }
    }
}
