package dev.ember.cli;

import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.backend.ModelRunner;
import dev.ember.engine.GenerationResult;
import dev.ember.engine.Generator;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import dev.ember.sampling.SamplingParams;
import dev.ember.tokenizer.ChatMessage;
import dev.ember.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code ember generate}: one prompt in, streamed text out, then a one-line summary. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text for a prompt, streaming it as it is produced.")
final class GenerateCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Option(names = {"-p", "--prompt"}, required = true, description = "the prompt text")
    String prompt;

    @Option(names = "--chat", description = "format the prompt as a user message with the model's chat template")
    boolean chat;

    @Option(names = "--system", description = "system message (with --chat)")
    String system;

    @Option(names = {"-n", "--max-tokens"}, defaultValue = "128", description = "most tokens to generate; default: ${DEFAULT-VALUE}")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0.8", description = "0 = greedy; default: ${DEFAULT-VALUE}")
    float temperature;

    @Option(names = "--top-k", defaultValue = "40", description = "keep the k most likely tokens, 0 = off; default: ${DEFAULT-VALUE}")
    int topK;

    @Option(names = "--top-p", defaultValue = "0.95", description = "nucleus sampling mass, 1 = off; default: ${DEFAULT-VALUE}")
    float topP;

    @Option(names = "--min-p", defaultValue = "0.05", description = "drop tokens below min-p times the top probability, 0 = off; default: ${DEFAULT-VALUE}")
    float minP;

    @Option(names = "--repetition-penalty", defaultValue = "1.0", description = "HF-style repetition penalty, 1 = off; default: ${DEFAULT-VALUE}")
    float repetitionPenalty;

    @Option(names = "--seed", description = "random seed, for repeatable sampling; default: random")
    Long seed;

    @Option(names = "--stop", description = "stop when this text is generated (repeatable)")
    List<String> stop = new ArrayList<>();

    @Option(names = "--ignore-eos", description = "keep generating past end-of-sequence tokens")
    boolean ignoreEos;

    @Option(names = "--chunk-len", defaultValue = "" + Generator.DEFAULT_CHUNK_TOKENS,
            description = "most prompt tokens per prefill step (chunked prefill); default: ${DEFAULT-VALUE}")
    int chunkLen;

    @Override
    public Integer call() {
        PrintStream err = System.err;
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        SamplingParams params = new SamplingParams(temperature, topK, topP, minP, repetitionPenalty,
                seed != null ? seed : System.nanoTime(), maxTokens, stop, ignoreEos);
        Path dir = modelOptions.modelDirectory();
        ConsoleProgress progress = new ConsoleProgress(err);
        try (Model model = ModelLoader.load(dir, progress);
             Tokenizer tokenizer = Tokenizer.load(dir);
             Backend backend = modelOptions.openBackend(err)) {
            String text = chat ? tokenizer.applyChatTemplate(messages(), true) : prompt;
            int[] promptTokens = tokenizer.encode(text);
            int context = model.config().maxPositions();
            if (promptTokens.length >= context) {
                throw new EmberException("prompt of " + promptTokens.length + " tokens does not fit the model's context of "
                        + context + " tokens (max_position_embeddings in " + dir.resolve("config.json") + ")");
            }
            int kvTokens = Math.min(context, promptTokens.length + maxTokens);
            try (ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(model.config(), kvTokens, KvCacheSpec.DEFAULT_BLOCK_SIZE), progress)) {
                Generator generator = new Generator(runner, tokenizer, chunkLen);
                GenerationResult r = generator.generate(promptTokens, params, piece -> {
                    out.print(piece);
                    out.flush();
                });
                out.println();
                err.printf("[%s] prompt tokens: %d, generated tokens: %d (%s), TTFT: %.1f ms, decode: %.1f tokens/s, backend: %s%n",
                        model.name(), promptTokens.length, r.tokens().length, r.finishReason().apiName(), r.ttftMillis(),
                        r.decodeTokensPerSecond(), runner.deviceName());
            }
        }
        return 0;
    }

    private List<ChatMessage> messages() {
        List<ChatMessage> messages = new ArrayList<>();
        if (system != null) {
            messages.add(new ChatMessage("system", system));
        }
        messages.add(new ChatMessage("user", prompt));
        return messages;
    }
}
