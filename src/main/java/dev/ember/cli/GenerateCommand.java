package dev.ember.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.streaming.StreamingSettings;
import dev.ember.engine.GenerationResult;
import dev.ember.engine.Generator;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.Speculation;
import dev.ember.scheduler.SpeculationStats;
import dev.ember.engine.RequestError;
import dev.ember.engine.RequestOutcome;
import dev.ember.engine.RequestOutput;
import dev.ember.engine.ServingEngine;
import dev.ember.grammar.Grammars;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.FinishReason;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.tokenizer.ChatMessage;
import dev.ember.tokenizer.Tokenizer;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code ember generate}: one prompt in, streamed text out, then a one-line summary; or, with {@code --prompts-file},
 * many prompts through the batched serving engine (the offline API), each result printed, then a summary.
 */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text for a prompt, streaming it as it is produced, or for a file of prompts in one batch.")
public final class GenerateCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    /** One prompt, streamed; or a file of prompts, run as one batch through the serving engine. */
    static final class Input {
        @Option(names = {"-p", "--prompt"}, required = true, description = "the prompt text")
        String prompt;

        @Option(names = "--prompts-file", required = true, paramLabel = "FILE",
                description = "generate for every prompt of FILE (one per line, or JSON lines with a \"prompt\" field "
                        + "when FILE ends in .jsonl) in one batch, then print each result and a summary")
        Path promptsFile;
    }

    @ArgGroup(multiplicity = "1")
    Input input;

    @Mixin
    KvCacheOptions kvCacheOptions;

    @Mixin
    SpeculativeOptions speculative;

    @Option(names = "--chat", description = "format the prompt as a user message with the model's chat template")
    boolean chat;

    @Option(names = "--system", description = "system message (with --chat)")
    String system;

    @Option(names = {"-n", "--max-tokens"}, defaultValue = "128", description = "most tokens to generate; default: ${DEFAULT-VALUE}")
    int maxTokens;

    @Mixin
    SamplingOptions samplingOptions;

    @Option(names = "--stop", description = "stop when this text is generated (repeatable)")
    List<String> stop = new ArrayList<>();

    @Option(names = "--ignore-eos", description = "keep generating past end-of-sequence tokens")
    boolean ignoreEos;

    @Option(names = "--json-schema", paramLabel = "SCHEMA",
            description = "hold the output to a JSON schema: its text, or a file holding it ('{}': any JSON value)")
    String jsonSchema;

    @Option(names = "--json-object", description = "hold the output to a JSON object")
    boolean jsonObject;

    @Option(names = "--grammar", paramLabel = "GBNF",
            description = "hold the output to a grammar in GBNF (llama.cpp's notation; the output is a text of its rule root): its text, or a file holding it")
    String grammar;

    @Option(names = "--chunk-len", defaultValue = "" + Generator.DEFAULT_CHUNK_TOKENS,
            description = "most prompt tokens per prefill step (chunked prefill); default: ${DEFAULT-VALUE}")
    int chunkLen;

    private boolean warnedNoTemplate;

    @Override
    public Integer call() {
        PrintStream err = System.err;
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        EmberException.require(system == null || chat, "--system is the system message of a chat: give --chat too");
        Path dir = modelOptions.modelDirectory();
        SamplingOptions.Sampling sampling = samplingOptions.resolve(dir, maxTokens, stop, ignoreEos, err);
        if (input.promptsFile != null) {
            return generateAll(dir, PromptsFile.read(input.promptsFile), sampling, out, err);
        }
        ConsoleProgress progress = new ConsoleProgress(err);
        try (Model model = modelOptions.load(dir, progress);
             Tokenizer tokenizer = Tokenizer.load(dir);
             Backend backend = modelOptions.openBackend(err)) {
            int[] promptTokens = promptTokens(tokenizer, input.prompt, dir, err);
            int context = model.config().maxPositions();
            int room = context - promptTokens.length;
            if (room > 0 && room < maxTokens) {
                err.printf("ember: warning: the prompt's %d tokens leave room for %d of the %d new tokens asked for "
                        + "(the model's context is %d tokens)%n", promptTokens.length, room, maxTokens, context);
            }
            int kvTokens = (int) Math.min(context, (long) promptTokens.length + maxTokens);
            StreamingSettings streaming = modelOptions.streaming().settings();
            backend.limitMemory(streaming.gpuMemoryLimit());
            try (ModelRunner runner = LoadedModel.load(backend, model, KvCacheSpec.forTokens(model.config(), kvTokens,
                    KvCacheSpec.DEFAULT_BLOCK_SIZE), streaming, modelOptions, progress);
                 Speculation speculation = speculative.inHubCache(modelOptions.hubCache()).open(backend, LoadedModel.of(model, runner), tokenizer, progress).orElse(null)) {
                LlmEngine engine = LlmEngine.of(runner, Generator.oneRequest(chunkLen), tokenizer);
                if (speculation != null) {
                    engine.speculate(speculation);
                }
                engine.warmUp();  // graphs captured and products chosen before the clock starts, as for --prompts-file
                GenerationResult r = new Generator(engine).generate(promptTokens, constrained(sampling.params(), tokenizer, model), piece -> {
                    out.print(piece);
                    out.flush();
                });
                out.println();
                boolean full = r.finishReason() == FinishReason.LENGTH && r.tokens().length < maxTokens;
                // One request per process: its first token waits for the JIT compiler too, so say so beside the figure.
                err.printf("[%s] prompt tokens: %d, generated tokens: %d (%s%s), TTFT: %.1f ms (with the JVM's warm-up), "
                                + "decode: %.1f tokens/s, backend: %s, sampling: %s%n",
                        model.name(), promptTokens.length, r.tokens().length, r.finishReason().apiName(),
                        full ? ": the context is full" : "", r.ttftMillis(), r.decodeTokensPerSecond(), runner.deviceName() + weightType(),
                        sampling.description() + held() + speculated(speculation, engine));
            }
        }
        return 0;
    }

    /** {@code params} with the grammar of --json-schema, --json-object or --grammar, if one was given. */
    private SamplingParams constrained(SamplingParams params, Tokenizer tokenizer, Model model) {
        int given = (jsonSchema != null ? 1 : 0) + (jsonObject ? 1 : 0) + (grammar != null ? 1 : 0);
        if (given == 0) {
            return params;
        }
        EmberException.require(given == 1, "--json-schema, --json-object and --grammar each constrain the output: give one");
        EmberException.require(!ignoreEos, "--ignore-eos with a constrained output: the grammar ends the output with an end-of-sequence token");
        Grammars grammars = new Grammars(tokenizer, LlmEngine.endOfSequenceIds(model.config(), tokenizer));
        return params.withGrammar(jsonObject ? grammars.jsonObject()
                : grammar != null ? grammars.gbnf(OptionText.read("--grammar", grammar, text -> text.contains("::="), "a GBNF grammar"))
                : grammars.jsonSchema(schema(jsonSchema)));
    }

    /** The summary's note of the weights' type where --dtype set it, so that a user sees the conversion took. */
    private String weightType() {
        return modelOptions.dtype().map(t -> ", weights in " + t.name().toLowerCase(Locale.ROOT) + " (--dtype)").orElse("");
    }

    /** What the summary line says of the output's grammar. */
    private String held() {
        return jsonSchema != null ? ", held to a JSON schema" : jsonObject ? ", held to a JSON object"
                : grammar != null ? ", held to a grammar" : "";
    }

    /** A schema given as its text, or as a file holding it. */
    private static JsonNode schema(String given) {
        String text = OptionText.read("--json-schema", given, s -> s.strip().startsWith("{"), "a JSON schema");
        try {
            return new ObjectMapper().readTree(text);
        } catch (JsonProcessingException e) {
            throw new EmberException("--json-schema: not valid JSON (" + e.getOriginalMessage() + ")", e);
        }
    }

    /**
     * Runs every prompt through the serving engine at once ({@link ServingEngine#generateTokens}); a prompt that
     * cannot run fails alone, and the command then ends with exit code 1.
     */
    private int generateAll(Path dir, List<String> prompts, SamplingOptions.Sampling sampling, PrintStream out, PrintStream err) {
        SamplingParams params = sampling.params();
        ConsoleProgress progress = new ConsoleProgress(err);
        SchedulerConfig defaults = SchedulerConfig.defaults();
        SchedulerConfig scheduler = new SchedulerConfig(defaults.maxRunning(), Math.max(defaults.maxBatchedTokens(), chunkLen),
                chunkLen, defaults.policy(), defaults.prefixCaching(), defaults.overlap());
        try (Model model = modelOptions.load(dir, progress);
             Tokenizer tokenizer = Tokenizer.load(dir);
             Backend backend = modelOptions.openBackend(err)) {
            List<int[]> encoded = prompts.stream().map(p -> promptTokens(tokenizer, p, dir, err)).toList();
            int context = model.config().maxPositions();
            // Room for every request at once, and never less than one full context, which would shorten it.
            long needed = encoded.stream().mapToLong(p -> Math.min(context, (long) p.length + maxTokens) + KvCacheSpec.DEFAULT_BLOCK_SIZE).sum();
            long useful = Math.max(needed, context);
            StreamingSettings streaming = modelOptions.streaming().settings();
            backend.limitMemory(streaming.gpuMemoryLimit());
            long weightBytes = backend.planWeights(model, streaming).deviceBytes();
            try (ModelRunner runner = LoadedModel.load(backend, model, kvCacheOptions.spec(model.config(), weightBytes,
                    backend.kvElementBytes(model.layers().getFirst().wq().dtype()), backend, scheduler, useful, err), streaming,
                    modelOptions, progress);
                 Speculation speculation = speculative.inHubCache(modelOptions.hubCache()).open(backend, LoadedModel.of(model, runner), tokenizer, progress).orElse(null);
                 ServingEngine engine = ServingEngine.start(runner, tokenizer, scheduler, speculation)) {
                long start = System.nanoTime();
                List<RequestOutcome> outcomes = engine.generateTokens(encoded, constrained(params, tokenizer, model));
                double seconds = (System.nanoTime() - start) / 1e9;
                long promptCount = 0;
                long generated = 0;
                int failed = 0;
                int cutShort = 0;
                List<Double> ttfts = new ArrayList<>();
                for (int i = 0; i < outcomes.size(); i++) {
                    switch (outcomes.get(i)) {
                        case RequestOutput r -> {
                            out.printf("--- request %d: %d prompt tokens, %d generated (%s), TTFT %.1f ms, end to end %.1f ms%n%s%n",
                                    i + 1, r.promptTokenCount(), r.generatedTokenCount(), r.finishReason().apiName(),
                                    r.timings().ttftMillis(), r.timings().e2eMillis(), r.text());
                            if (r.finishReason() == FinishReason.LENGTH && r.generatedTokenCount() < maxTokens) {
                                cutShort++;
                            }
                            promptCount += r.promptTokenCount();
                            generated += r.generatedTokenCount();
                            ttfts.add(r.timings().ttftMillis());
                        }
                        case RequestError e -> {
                            out.printf("--- request %d: error: %s%n", i + 1, e.message());
                            failed++;
                        }
                    }
                }
                if (cutShort > 0) {
                    err.printf("ember: warning: %d of the requests stopped short of %d new tokens: their prompts filled the "
                            + "model's context of %d tokens%n", cutShort, maxTokens, context);
                }
                err.printf("[%s] requests: %d (%d failed), prompt tokens: %d, generated tokens: %d, wall time: %.2f s, "
                                + "throughput: %.1f generated tokens/s (%.1f tokens/s with prompts), median TTFT: %.1f ms "
                                + "(with the JVM's warm-up), backend: %s, sampling: %s%n",
                        model.name(), outcomes.size(), failed, promptCount, generated, seconds, generated / seconds,
                        (promptCount + generated) / seconds,
                        Stats.of(ttfts.stream().mapToDouble(Double::doubleValue).toArray()).median(), runner.deviceName() + weightType(),
                        sampling.description() + held());
                if (speculation != null) {
                    err.println("[" + model.name() + "] " + engine.inspect(e -> speculated(speculation, e)).substring(2));
                }
                return failed == 0 ? 0 : 1;
            }
        }
    }

    /** The summary's words on speculation: the draft, its acceptance rate and the tokens a verification added. */
    static String speculated(Speculation speculation, LlmEngine engine) {
        if (speculation == null) {
            return "";
        }
        SpeculationStats s = engine.scheduler().speculation();
        return String.format(Locale.ROOT, ", speculative: %s, gamma %d, %d of %d drafted tokens accepted (%.1f%%), %.2f tokens per verification",
                speculation.proposer().describe(), speculation.gamma(), s.accepted(), s.proposed(), 100 * s.acceptanceRate(),
                s.meanAcceptedLength());
    }

    /**
     * The prompt's ids; with --chat, of the conversation as the model's chat template writes it, or (said once on
     * {@code log}) as plain {@code role: text} lines where the model has none.
     */
    private int[] promptTokens(Tokenizer tokenizer, String prompt, Path dir, PrintStream log) {
        if (!chat) {
            return tokenizer.encode(prompt);
        }
        if (!tokenizer.hasChatTemplate() && !warnedNoTemplate) {
            log.println("ember: warning: " + dir + " has no chat template (tokenizer_config.json's chat_template); --chat "
                    + "writes the conversation as plain \"user: ...\" and \"assistant:\" lines");
            warnedNoTemplate = true;
        }
        List<ChatMessage> messages = new ArrayList<>();
        if (system != null) {
            messages.add(new ChatMessage("system", system));
        }
        messages.add(new ChatMessage("user", prompt));
        // A template writes its own special tokens (a BOS); the plain fallback does not, so the tokenizer adds them.
        return tokenizer.encode(tokenizer.applyChatTemplate(messages, true), !tokenizer.hasChatTemplate());
    }
}
