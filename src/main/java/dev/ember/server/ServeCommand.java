package dev.ember.server;

import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.backend.ModelRunner;
import dev.ember.cli.ConsoleProgress;
import dev.ember.cli.KvCacheOptions;
import dev.ember.cli.ModelOptions;
import dev.ember.engine.ServingEngine;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code ember serve}: the OpenAI-compatible server, until interrupted (SIGINT, SIGTERM), then a graceful drain. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, "
                + "/v1/models, /health, /metrics).")
public final class ServeCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    KvCacheOptions kvCacheOptions;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "address to listen on; default: ${DEFAULT-VALUE}")
    String host;

    @Option(names = "--port", defaultValue = "8000", description = "port to listen on; default: ${DEFAULT-VALUE}")
    int port;

    @Option(names = "--api-key", description = "require the header Authorization: Bearer KEY on every request")
    String apiKey;

    @Option(names = "--served-model-name", description = "the model name of the API; default: the model directory's name")
    String servedModelName;

    @Option(names = "--max-num-seqs", defaultValue = "256", description = "most requests in a step (batch size); default: ${DEFAULT-VALUE}")
    int maxNumSeqs;

    @Option(names = "--max-num-batched-tokens", defaultValue = "8192",
            description = "most tokens (prefill chunks and decodes) in a step; default: ${DEFAULT-VALUE}")
    int maxNumBatchedTokens;

    @Option(names = "--chunk-len", defaultValue = "2048",
            description = "most prompt tokens of one request in a step (chunked prefill); default: ${DEFAULT-VALUE}")
    int chunkLen;

    @Option(names = "--schedule-policy", defaultValue = "decode-first",
            description = "decode-first (decodes every step, prompts fill the rest) or prefill-first (waiting prompts "
                    + "run alone, decodes pause); default: ${DEFAULT-VALUE}")
    String schedulePolicy;

    @Option(names = "--no-prefix-cache", description = "do not reuse the KV blocks of identical prompt prefixes")
    boolean noPrefixCache;

    @Option(names = "--max-request-bytes", defaultValue = "" + OpenAiServer.Config.DEFAULT_MAX_REQUEST_BYTES,
            description = "largest request body accepted (larger ones get a 413); default: ${DEFAULT-VALUE}")
    int maxRequestBytes;

    @Option(names = "--drain-timeout", defaultValue = "60",
            description = "seconds a shutdown waits for requests in flight; default: ${DEFAULT-VALUE}")
    int drainSeconds;

    @Override
    public Integer call() throws InterruptedException {
        PrintStream err = System.err;
        SchedulerConfig scheduler = new SchedulerConfig(maxNumSeqs, maxNumBatchedTokens, chunkLen, policy(), !noPrefixCache);
        Path dir = modelOptions.modelDirectory();
        ConsoleProgress progress = new ConsoleProgress(err);
        try (Model model = ModelLoader.load(dir, progress);
             Tokenizer tokenizer = Tokenizer.load(dir);
             Backend backend = modelOptions.openBackend(err);
             ModelRunner runner = backend.load(model, kvCacheOptions.spec(model, backend, scheduler,
                     (long) maxNumSeqs * model.config().maxPositions(), err), progress);
             ServingEngine engine = ServingEngine.start(runner, tokenizer, scheduler)) {
            String name = servedModelName != null ? servedModelName : model.name();
            OpenAiServer server = OpenAiServer.start(engine, new OpenAiServer.Config(host, port, apiKey, name,
                    maxRequestBytes, Duration.ofSeconds(drainSeconds)));
            CountDownLatch stopped = new CountDownLatch(1);
            Thread hook = new Thread(() -> {
                err.println("ember: shutting down: draining requests in flight (at most " + drainSeconds + " s)");
                server.close();
                engine.shutdownNow();
                try {
                    engine.awaitTermination(Duration.ofSeconds(10));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                stopped.countDown();
            }, "ember-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            err.printf("ember: serving %s as \"%s\" on %s (%s, context %d tokens)%s%n", dir, name, server.baseUrl(),
                    runner.deviceName(), engine.contextLength(), apiKey != null ? ", API key required" : "");
            stopped.await();
        }
        return 0;
    }

    private SchedulePolicy policy() {
        return switch (schedulePolicy.toLowerCase(Locale.ROOT)) {
            case "decode-first" -> SchedulePolicy.DECODE_FIRST;
            case "prefill-first" -> SchedulePolicy.PREFILL_FIRST;
            default -> throw new EmberException("unknown schedule policy \"" + schedulePolicy + "\" (decode-first or prefill-first)");
        };
    }
}
