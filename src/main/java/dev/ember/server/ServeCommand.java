package dev.ember.server;

import dev.ember.EmberException;
import dev.ember.model.GenerationConfig;
import dev.ember.backend.Backend;
import dev.ember.backend.ModelRunner;
import dev.ember.cli.ConsoleProgress;
import dev.ember.cli.KvCacheOptions;
import dev.ember.cli.SchedulerOptions;
import dev.ember.cli.PresetOption;
import dev.ember.cli.LoadedModel;
import dev.ember.cli.ModelOptions;
import dev.ember.cli.OptionText;
import dev.ember.engine.ServingEngine;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.tokenizer.Tokenizer;
import dev.ember.engine.Speculation;
import dev.ember.cli.SpeculativeOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code ember serve}: the OpenAI-compatible server, until interrupted (SIGINT, SIGTERM), then a graceful drain. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, "
                + "/v1/models, /health, /metrics) on Jetty.")
public final class ServeCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Parameters(arity = "0..1", paramLabel = "MODEL", description = "the model directory, as `vllm serve MODEL` takes it "
            + "(the same as --model DIR)")
    Path positionalModel;

    @Mixin
    KvCacheOptions kvCacheOptions;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "address to listen on; default: ${DEFAULT-VALUE}")
    String host;

    @Option(names = "--port", defaultValue = "8000", description = "port to listen on; default: ${DEFAULT-VALUE}")
    int port;

    @Option(names = "--api-key", description = "require the header Authorization: Bearer KEY on every request")
    String apiKey;

    @Option(names = "--served-model-name", arity = "1..*", paramLabel = "NAME",
            description = "the model's name in the API, and further names requests may give it (as vLLM takes several); "
                    + "default: the model directory's name")
    List<String> servedModelNames;

    @Option(names = "--max-num-seqs", defaultValue = "256", description = "most requests in a step (batch size); default: ${DEFAULT-VALUE}")
    int maxNumSeqs;

    @Option(names = "--seed", paramLabel = "N", description = "seeds the draws of requests that give no seed of their own: "
            + "the same requests sent in the same order to a server started again draw the same tokens (vLLM's --seed); "
            + "default: a random seed a request")
    Long seed;

    @Mixin
    SchedulerOptions schedulerOptions;

    @Mixin
    PresetOption preset;

    @Mixin
    SpeculativeOptions speculative;

    @Mixin
    VllmServeOptions vllmOptions;

    @Option(names = "--tokenizer", paramLabel = "DIR",
            description = "directory of the tokenizer.json to use (or a Hub id in the local cache); default: the model's "
                    + "(needed with --preset)")
    Path tokenizerDirectory;

    @Option(names = "--warmup-requests", defaultValue = "256", paramLabel = "N",
            description = "requests the server sends itself before it reports ready (/health 200), to compile the paths "
                    + "a burst of clients takes; 0: none; default: ${DEFAULT-VALUE}")
    int warmupRequests;

    @Option(names = "--max-request-bytes", defaultValue = "" + OpenAiServer.Config.DEFAULT_MAX_REQUEST_BYTES,
            description = "largest request body accepted (larger ones get a 413); default: ${DEFAULT-VALUE}")
    int maxRequestBytes;

    @Option(names = "--drain-timeout", defaultValue = "60",
            description = "seconds a shutdown waits for requests in flight; default: ${DEFAULT-VALUE}")
    int drainSeconds;

    @Option(names = "--header-timeout", defaultValue = "10", paramLabel = "SECONDS",
            description = "a request head must arrive whole within this after its first byte; default: ${DEFAULT-VALUE}")
    double headerSeconds;

    @Option(names = "--body-timeout", defaultValue = "30", paramLabel = "SECONDS",
            description = "a request body must arrive whole within this after its head; default: ${DEFAULT-VALUE}")
    double bodySeconds;

    @Option(names = "--idle-timeout", defaultValue = "60", paramLabel = "SECONDS",
            description = "a connection that neither sends nor takes a byte for this long is closed; default: ${DEFAULT-VALUE}")
    double idleSeconds;

    @Option(names = "--allowed-origins", split = ",", paramLabel = "ORIGIN",
            description = "origins browsers may call from (CORS), comma-separated or a JSON list; * for any; default: none")
    List<String> allowedOrigins = new ArrayList<>();

    @Option(names = "--reasoning-parser", paramLabel = "NAME",
            description = "split a chat answer's thinking (<think>...</think>) into reasoning_content, as vLLM's parser of "
                    + "the same name does: qwen3 or deepseek_r1; default: none, the thinking stays in the content")
    String reasoningParser;

    @Option(names = "--generation-config", paramLabel = "auto|vllm|DIR", defaultValue = "auto",
            description = "where a request's sampling defaults come from, as in vLLM: auto, the model's generation_config.json "
                    + "(temperature, top_k, top_p, min_p, repetition_penalty it sets); vllm, OpenAI's and vLLM's own; a "
                    + "folder, the generation_config.json in it; default: ${DEFAULT-VALUE}")
    String generationConfig;

    @Option(names = "--override-generation-config", paramLabel = "JSON",
            description = "sampling defaults set over --generation-config's, as vLLM's option: a JSON object of temperature, "
                    + "top_k, top_p, min_p, repetition_penalty")
    String overrideGenerationConfig;

    @Option(names = "--tool-call-parser", paramLabel = "NAME",
            description = "the format tool calls are read in, as vLLM's parser of the same name: hermes, llama3_json or mistral; "
                    + "default: the one the model's chat template teaches")
    String toolCallParser;

    @Option(names = "--enable-auto-tool-choice",
            description = "accepted for vLLM's command lines: tool_choice \"auto\" needs nothing turned on here")
    boolean enableAutoToolChoice;

    @Option(names = "--chat-template", paramLabel = "TEMPLATE",
            description = "a Jinja chat template in place of the model's (a file, or the template itself): for a model that "
                    + "ships none, or to change it; default: the model's tokenizer_config.json")
    String chatTemplate;

    /**
     * The sampling values requests that leave them out take: those the generation_config.json of
     * {@code --generation-config} sets (auto: the model's, {@code modelDir}, none for a preset; a folder: the one in it;
     * vllm: none), with {@code --override-generation-config}'s over them; said on {@code err}, as vLLM says it.
     */
    Map<String, Double> samplingDefaults(Path modelDir, PrintStream err) {
        Path dir = switch (generationConfig) {
            case "vllm" -> null;
            case "auto" -> modelDir;
            default -> Path.of(generationConfig);
        };
        Map<String, Double> defaults = new LinkedHashMap<>(dir == null ? Map.of() : GenerationConfig.read(dir).requestDefaults());
        Map<String, Double> overrides = GenerationConfig.overrides(overrideGenerationConfig);
        defaults.putAll(overrides);
        if (!defaults.isEmpty()) {
            err.println("ember: requests that leave them out sample with " + defaults.entrySet().stream()
                    .map(e -> e.getKey() + " " + (e.getKey().equals("top_k") ? String.valueOf(e.getValue().intValue())
                            : String.valueOf(e.getValue().floatValue())))
                    .collect(java.util.stream.Collectors.joining(", "))
                    + ", from " + (overrides.isEmpty() ? "" : "--override-generation-config" + (dir == null ? "" : " over "))
                    + (dir == null ? "" : dir == modelDir ? "the model's generation_config.json (--generation-config vllm leaves "
                    + "it out)" : dir.resolve(GenerationConfig.FILE_NAME).toString()));
        }
        return defaults;
    }

    @Override
    public Integer call() throws InterruptedException {
        PrintStream err = System.err;
        EmberException.require(generationConfig.equals("auto") || generationConfig.equals("vllm")
                || Files.isDirectory(Path.of(generationConfig)), "--generation-config " + generationConfig
                + " is not one of auto, vllm, nor a folder");
        GenerationConfig.overrides(overrideGenerationConfig);  // a malformed override is said before the model loads
        modelOptions.positionalModel(positionalModel);
        SchedulerConfig scheduler = schedulerOptions.config(maxNumSeqs, SchedulePolicy.DECODE_FIRST);
        vllmOptions.check(scheduler.prefixCaching());
        Path tokenizerDir = tokenizerDirectory != null ? modelOptions.hubModel(tokenizerDirectory)
                : preset.given() ? null : modelOptions.modelDirectory();
        if (tokenizerDir == null) {
            throw new EmberException("--preset " + preset.name() + " has random weights and no tokenizer: give --tokenizer DIR "
                    + "(a tokenizer.json of the same vocabulary)");
        }
        ConsoleProgress progress = new ConsoleProgress(err);
        try (Tokenizer tokenizer = chatTemplate == null ? Tokenizer.load(tokenizerDir) : loadWithTemplate(tokenizerDir, chatTemplate);
             Backend backend = modelOptions.openBackend(err);
             LoadedModel loaded = LoadedModel.open(modelOptions, preset, backend, (config, weightBytes, kvBytes) ->
                     kvCacheOptions.spec(config, weightBytes, kvBytes, backend, scheduler,
                             (long) scheduler.maxRunning() * config.maxPositions(), err), progress, err);
             Speculation speculation = speculative.inHubCache(modelOptions.hubCache()).open(backend, loaded, tokenizer, progress).orElse(null);
             ServingEngine engine = ServingEngine.start(loaded.runner(), tokenizer, scheduler, speculation)) {
            if (tokenizer.vocabSize() > loaded.config().vocabSize()) {
                throw new EmberException("the tokenizer in " + tokenizerDir + " has " + tokenizer.vocabSize()
                        + " tokens, more than the model's vocabulary of " + loaded.config().vocabSize());
            }
            ModelRunner runner = loaded.runner();
            String name = servedModelNames != null ? servedModelNames.getFirst() : preset.given() ? preset.name() : loaded.name();
            List<String> aliases = servedModelNames == null ? List.of() : servedModelNames.subList(1, servedModelNames.size());
            OpenAiServer server = OpenAiServer.start(engine, new OpenAiServer.Config(host, port, apiKey, name,
                    maxRequestBytes, Duration.ofSeconds(drainSeconds), new OpenAiServer.Timeouts(seconds(headerSeconds),
                    seconds(bodySeconds), seconds(idleSeconds)), origins(allowedOrigins), reasoningParser, toolCallParser,
                    samplingDefaults(preset.given() ? null : modelOptions.modelDirectory(), err), aliases, seed,
                    vllmOptions.maxLogprobs));
            CountDownLatch stopped = new CountDownLatch(1);
            Thread hook = new Thread(() -> {
                err.println("ember: shutting down: draining requests in flight (at most " + drainSeconds + " s)");
                server.close();
                engine.stopNow(Duration.ofSeconds(10));
                stopped.countDown();
            }, "ember-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            if (warmupRequests > 0) {
                long start = System.nanoTime();
                int answered = server.warmUp(warmupRequests, Math.min(64, scheduler.maxRunning()), WARMUP_LIMIT);
                err.printf("ember: warmed up with %d requests in %.1f s%n", answered, (System.nanoTime() - start) / 1e9);
            }
            err.printf("ember: serving %s as \"%s\" on %s (%s, context %d tokens)%s%n", loaded.name(), name, server.baseUrl(),
                    runner.deviceName(), engine.contextLength(), apiKey != null ? ", API key required" : "");
            stopped.await();
        }
        return 0;
    }

    /** The most time the warm-up may take (a large model on the CPU); no request is sent after it. */
    private static final Duration WARMUP_LIMIT = Duration.ofSeconds(30);

    private static Duration seconds(double seconds) {
        return Duration.ofNanos(Math.round(seconds * 1e9));
    }

    /** vLLM takes a JSON list ({@code ["*"]}); a comma-separated list works too. */
    static List<String> origins(List<String> given) {
        List<String> out = new ArrayList<>();
        for (String item : given) {
            String origin = item.strip().replaceAll("^\\[|\\]$", "").strip().replaceAll("^\"|\"$", "");
            if (!origin.isEmpty()) {
                out.add(origin);
            }
        }
        return out;
    }

    /** The tokenizer with the chat template of {@code given}: the template's own text, or a file holding it. */
    private static Tokenizer loadWithTemplate(Path dir, String given) {
        String origin = given.contains("{") ? "--chat-template" : given;
        return Tokenizer.load(dir, OptionText.read("--chat-template", given, text -> text.contains("{"), "a Jinja template"), origin);
    }
}
