package dev.ember.bench.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.Backends;
import dev.ember.bench.BenchHeader;
import dev.ember.bench.DeviceDefaults;
import dev.ember.bench.MonitorOptions;
import dev.ember.bench.ResultTable;
import dev.ember.bench.TraceOptions;
import dev.ember.cli.ConsoleProgress;
import dev.ember.monitor.GpuMonitor;
import dev.ember.monitor.GpuReport;
import dev.ember.tokenizer.Tokenizer;
import dev.ember.trace.Trace;
import dev.ember.trace.TraceRecorder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code ember bench client}: drives an OpenAI-compatible server over HTTP as {@code vllm bench serve} does and
 * reports TTFT, TPOT, ITL, end-to-end latency and client-side queueing, request and token throughput and goodput.
 */
@Command(name = "client", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Load an OpenAI-compatible server (Ember's, vLLM's, SGLang's) with streamed requests, as vllm bench serve does.",
                "Poisson or gamma arrivals or a concurrency cap; TTFT, TPOT, ITL, E2E latency and queueing; throughput and goodput.",
                "Defaults: vLLM's 1000 requests of 1024 tokens where this host has a GPU, 32 of 256 where it has none (a server "
                        + "here then runs on the CPU); prompts shortened to fit the server's context (its max_model_len)."})
public final class ClientBenchCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--base-url", defaultValue = "http://127.0.0.1:8000", description = "the server; default: ${DEFAULT-VALUE}")
    URI baseUrl;

    @Option(names = "--endpoint", defaultValue = "/v1/completions",
            description = "/v1/completions or /v1/chat/completions; default: ${DEFAULT-VALUE}")
    String endpoint;

    @Option(names = "--model", description = "the model name in each request; default: the first of the server's /v1/models")
    String model;

    @Option(names = "--api-key", description = "bearer token for the server")
    String apiKey;

    @Option(names = "--dataset-name", defaultValue = "random", description = "random, sharegpt or prompts; default: ${DEFAULT-VALUE}")
    String datasetName;

    @Option(names = "--dataset-path", paramLabel = "FILE", description = "the ShareGPT JSON/JSONL file, or the prompts file (one per line)")
    Path datasetPath;

    @Option(names = "--num-prompts", paramLabel = "N",
            description = "requests to send; default: 1000 where this host has a GPU, 32 where it has none")
    Integer numPrompts;

    @Option(names = "--random-input-len", paramLabel = "N", description = "random dataset: prompt tokens; default: 1024 where "
            + "this host has a GPU, 256 where it has none, shortened to fit the server's context")
    Integer randomInputLen;

    @Option(names = "--random-output-len", paramLabel = "N",
            description = "random dataset: max_tokens; default: 128 where this host has a GPU, 64 where it has none")
    Integer randomOutputLen;

    @Option(names = "--random-range-ratio", defaultValue = "0",
            description = "random dataset: lengths uniform in [len (1 - r), len (1 + r)]; default: ${DEFAULT-VALUE}")
    double randomRangeRatio;

    @Option(names = "--random-vocab-size", defaultValue = "" + Datasets.DEFAULT_RANDOM_VOCABULARY,
            description = "random dataset without --tokenizer: token ids sent are below this; default: ${DEFAULT-VALUE}")
    int randomVocabSize;

    @Option(names = "--tokenizer", paramLabel = "DIR",
            description = "model directory whose tokenizer turns random ids into text and measures ShareGPT replies; without it random prompts go as token ids")
    Path tokenizerDir;

    @Option(names = "--output-len", description = "max_tokens of sharegpt (instead of the reply's length) and prompts requests; prompts default: 128")
    Integer outputLen;

    @Option(names = "--request-rate", defaultValue = "inf", description = "requests per second, or inf for all at once; default: ${DEFAULT-VALUE}")
    String requestRateText;

    private double requestRate;

    @Option(names = "--burstiness", defaultValue = "1",
            description = "shape of the gamma-distributed gaps: 1 = Poisson, < 1 burstier, > 1 more regular; default: ${DEFAULT-VALUE}")
    double burstiness;

    @Option(names = "--max-concurrency", description = "most requests in flight; later arrivals queue on the client")
    Integer maxConcurrency;

    @Option(names = "--warmup-requests", paramLabel = "N", description = "requests sent and discarded before the run; "
            + "default: 0 where this host has a GPU, 4 where it has none (a server on the CPU compiles its code meanwhile)")
    Integer warmupRequests;

    @Option(names = "--ignore-eos", negatable = true, description = "ask the server to generate max_tokens whatever the model "
            + "says (vLLM/SGLang/Ember ignore_eos); default: on for the random dataset, whose prompts a model may answer "
            + "with an immediate end of text, off for the others")
    Boolean ignoreEos;

    @Option(names = "--temperature", defaultValue = "0", description = "sampling temperature sent; default: ${DEFAULT-VALUE}")
    double temperature;

    @Option(names = "--n", paramLabel = "N", defaultValue = "1", description = "choices a request (OpenAI's n), each "
            + "streamed; throughput counts every choice's tokens, TPOT and ITL are a choice's; default: ${DEFAULT-VALUE}")
    int n;

    @Option(names = "--logprobs", paramLabel = "N", description = "ask for the top N logprobs of each token (completions: "
            + "logprobs N; chat: logprobs with top_logprobs N) and fail a request whose tokens do not all carry them")
    Integer logprobs;

    @Option(names = "--seed", defaultValue = "0", description = "seed of the dataset and the arrivals; default: ${DEFAULT-VALUE}")
    long seed;

    @Option(names = "--slo", paramLabel = "BOUNDS", description = "goodput bounds in ms, any of ttft:MS,tpot:MS,e2el:MS")
    String slo;

    @Option(names = "--request-timeout", defaultValue = "600", description = "seconds to wait for a response to start; default: ${DEFAULT-VALUE}")
    int requestTimeout;

    @Option(names = "--result-file", paramLabel = "FILE", description = "write the configuration and the figures as JSON")
    Path resultFile;

    @Mixin
    MonitorOptions monitorOptions = new MonitorOptions();

    @Mixin
    TraceOptions traceOptions = new TraceOptions();

    @Override
    public Integer call() {
        DeviceDefaults defaults = new DeviceDefaults(Backends.whyNotGpu() == null);
        boolean defaultInput = randomInputLen == null;
        boolean defaultOutput = randomOutputLen == null;
        numPrompts = defaults.pick("--num-prompts", numPrompts, 1000, 32);
        randomInputLen = defaults.pick("--random-input-len", randomInputLen, 1024, 256);
        randomOutputLen = defaults.pick("--random-output-len", randomOutputLen, 128, 64);
        warmupRequests = defaults.pick("--warmup-requests", warmupRequests, 0, 4);
        ignoreEos = ignoreEos != null ? ignoreEos : datasetName.equalsIgnoreCase("random");
        validate();
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        Progress progress = new ConsoleProgress(System.err);
        Slo bounds = slo != null ? Slo.parse(slo) : null;
        defaults.report(System.err);
        ServedModel served = model == null || datasetName.equalsIgnoreCase("random") ? servedModel(model == null) : null;
        String modelName = model != null ? model : served.id();
        if (served != null && served.maxModelLen() > 0 && datasetName.equalsIgnoreCase("random")) {
            fitContext(served.maxModelLen(), defaultInput, defaultOutput);
        }
        List<ClientRequest> requests;
        try (Tokenizer tokenizer = tokenizerDir != null ? Tokenizer.load(tokenizerDir) : null) {
            requests = dataset(numPrompts + warmupRequests, tokenizer);
        }
        RequestSettings settings = new RequestSettings(n, logprobs != null ? logprobs : RequestSettings.NO_LOGPROBS, ignoreEos,
                temperature);
        try (OpenAiStreamClient client = new OpenAiStreamClient(baseUrl, endpoint, modelName, apiKey, settings,
                Duration.ofSeconds(requestTimeout))) {
            if (client.isChat() && requests.getFirst().prompt() instanceof ClientRequest.TokenIds) {
                throw new EmberException("chat completions take text: give --tokenizer DIR to turn random token ids into text");
            }
            out.printf("# ember bench client, %s: %s, model %s, %d requests (%s), request rate %s, burstiness %s, max concurrency %s,"
                            + " n %d, logprobs %s%n",
                    BenchHeader.currentVersion(), client.uri(), modelName, numPrompts, datasetName, requestRate, burstiness,
                    maxConcurrency != null ? maxConcurrency : "none", n, logprobs != null ? logprobs : "none");
            List<ClientRequest> warmup = requests.subList(0, warmupRequests);
            List<ClientRequest> timed = requests.subList(warmupRequests, requests.size());
            if (!warmup.isEmpty()) {
                LoadRun w = LoadRun.run(client, warmup, new double[warmup.size()], concurrencyCap(), Progress.NONE);
                long failed = w.outcomes().stream().filter(r -> !r.succeeded()).count();
                out.printf("# warm-up: %d requests, %d failed%n", warmup.size(), failed);
            }
            double[] arrivals = Arrivals.times(timed.size(), requestRate, burstiness, seed);
            Trace trace = traceOptions.open();
            LoadRun run;
            GpuReport gpu;
            // The GPU the server runs on, when it is this host's: 001's monitor beside the serving benchmark.
            try (GpuMonitor monitor = monitorOptions.start(System.err, trace)) {
                run = LoadRun.run(client, timed, arrivals, concurrencyCap(), progress);
                gpu = monitor.stop();
            }
            ClientMetrics metrics = ClientMetrics.of(run.outcomes(), run.durationSeconds(), bounds);
            print(out, metrics, bounds);
            if (!(gpu instanceof GpuReport.Off)) {
                out.println(gpu.describe(metrics.outputTokens()));
            }
            if (trace instanceof TraceRecorder recorder) {
                traceRequests(recorder, run.outcomes());
            }
            traceOptions.write(trace, System.err);
            if (resultFile != null) {
                writeResult(resultFile, modelName, client.uri(), bounds, metrics, gpu);
            }
        }
        return 0;
    }

    private void validate() {
        if (numPrompts < 1 || warmupRequests < 0) {
            throw new EmberException("--num-prompts must be at least 1 and --warmup-requests at least 0");
        }
        try {
            requestRate = requestRateText.strip().equalsIgnoreCase("inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(requestRateText);
        } catch (NumberFormatException e) {
            requestRate = Double.NaN;
        }
        if (!(requestRate > 0)) {
            throw new EmberException("--request-rate must be a positive number or inf, not " + requestRateText);
        }
        if (!(burstiness > 0) || Double.isInfinite(burstiness)) {
            throw new EmberException("--burstiness must be a positive number, not " + burstiness);
        }
        if (maxConcurrency != null && maxConcurrency < 1) {
            throw new EmberException("--max-concurrency must be at least 1");
        }
        if (outputLen != null && outputLen < 1) {
            throw new EmberException("--output-len must be at least 1");
        }
        if (n < 1) {
            throw new EmberException("--n must be at least 1");
        }
        if (logprobs != null && logprobs < 0) {
            throw new EmberException("--logprobs must be at least 0");
        }
    }

    private int concurrencyCap() {
        return maxConcurrency != null ? maxConcurrency : 0;
    }

    private List<ClientRequest> dataset(int count, Tokenizer tokenizer) {
        return switch (datasetName.toLowerCase(Locale.ROOT)) {
            case "random" -> Datasets.random(count, randomInputLen, randomOutputLen, randomRangeRatio, tokenizer, randomVocabSize, seed);
            case "sharegpt" -> Datasets.shareGpt(requirePath(), count, tokenizer, outputLen, seed);
            case "prompts" -> Datasets.prompts(requirePath(), count, outputLen != null ? outputLen : 128);
            default -> throw new EmberException("unknown --dataset-name \"" + datasetName + "\" (random, sharegpt or prompts)");
        };
    }

    private Path requirePath() {
        if (datasetPath == null) {
            throw new EmberException("the " + datasetName + " dataset needs --dataset-path FILE");
        }
        return datasetPath;
    }

    /** The first model a server lists at /v1/models, and its context where the server says (vLLM's max_model_len; 0 if not). */
    record ServedModel(String id, int maxModelLen) {
    }

    /**
     * The first model the server lists at /v1/models. Where the list is {@code required} (no --model), a server that
     * cannot say is an error; otherwise the answer is null.
     */
    private ServedModel servedModel(boolean required) {
        URI uri = URI.create(baseUrl.toString().replaceAll("/+$", "") + "/v1/models");
        HttpRequest.Builder request = HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(30)).GET();
        if (apiKey != null) {
            request.header("Authorization", "Bearer " + apiKey);
        }
        String failure;
        try (HttpClient http = HttpClient.newHttpClient()) {
            HttpResponse<String> response = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
            JsonNode first = response.statusCode() == 200 ? JSON.readTree(response.body()).path("data").path(0) : null;
            if (first != null && first.path("id").isTextual()) {
                return new ServedModel(first.get("id").asText(), first.path("max_model_len").asInt(0));
            }
            failure = uri + " answered HTTP " + response.statusCode() + " with no model; give --model NAME";
        } catch (IOException e) {
            failure = "cannot reach " + uri + " (" + (e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName())
                    + "); is the server up? give --base-url";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new EmberException("interrupted");
        }
        if (required) {
            throw new EmberException(failure);
        }
        return null;
    }

    /**
     * Random requests within the server's context of {@code context} tokens: default lengths are shortened to fit (said
     * on stderr: the prompt first, and the output to half the context where even that is not enough), given lengths
     * that cannot fit are an error (the server would refuse every request).
     */
    private void fitContext(int context, boolean defaultInput, boolean defaultOutput) {
        double widest = 1 + Math.max(0, randomRangeRatio);
        int most = (int) Math.floor(context / widest);
        if (defaultInput && defaultOutput && randomOutputLen > most / 2) {
            System.err.println("ember: the default --random-output-len " + randomOutputLen + " shortened to " + most / 2
                    + " so that a request fits the server's context of " + context + " tokens (its max_model_len)");
            randomOutputLen = Math.max(1, most / 2);
        }
        int room = most - randomOutputLen;
        if (randomInputLen <= room) {
            return;
        }
        if (!defaultInput || room < 1) {
            throw new EmberException("--random-input-len " + randomInputLen + " plus --random-output-len " + randomOutputLen
                    + (randomRangeRatio > 0 ? " (up to " + widest + " times each with --random-range-ratio)" : "")
                    + " do not fit the server's context of " + context + " tokens (its max_model_len)");
        }
        System.err.println("ember: the default --random-input-len " + randomInputLen + " shortened to " + room
                + " so that a request fits the server's context of " + context + " tokens (its max_model_len)");
        randomInputLen = room;
    }

    private static void print(PrintStream out, ClientMetrics m, Slo bounds) {
        out.println("============ Serving Benchmark Result ============");
        row(out, "Successful requests:", m.completed());
        row(out, "Failed requests:", m.failed());
        row(out, "Benchmark duration (s):", m.durationSeconds());
        row(out, "Total input tokens:", m.inputTokens());
        row(out, "Total generated tokens:", m.outputTokens());
        row(out, "Request throughput (req/s):", m.requestThroughput());
        if (bounds != null) {
            row(out, "Request goodput (req/s) [" + bounds + "]:", m.goodput());
        }
        row(out, "Output token throughput (tok/s):", m.outputThroughput());
        row(out, "Total token throughput (tok/s):", m.totalTokenThroughput());
        section(out, "Time to First Token", "TTFT", m.ttft());
        section(out, "Time per Output Token (excl. 1st token)", "TPOT", m.tpot());
        section(out, "Inter-token Latency", "ITL", m.itl());
        section(out, "End-to-end Latency", "E2EL", m.e2el());
        section(out, "Client Queueing (arrival to send)", "queue", m.queue());
        out.println("==================================================");
        m.errors().forEach((error, count) -> out.printf("failed x%d: %s%n", count, error));
    }

    private static void section(PrintStream out, String title, String name, ClientMetrics.Latency l) {
        int pad = Math.max(0, 50 - title.length() - 2);
        out.println("-".repeat(pad / 2) + " " + title + " " + "-".repeat(pad - pad / 2));
        row(out, "Mean " + name + " (ms):", l.mean());
        row(out, "Median " + name + " (ms):", l.median());
        row(out, "P90 " + name + " (ms):", l.p90());
        row(out, "P99 " + name + " (ms):", l.p99());
    }

    private static void row(PrintStream out, String label, double value) {
        out.printf(Locale.ROOT, "%-40s %10.2f%n", label, value);
    }

    private static void row(PrintStream out, String label, long value) {
        out.printf(Locale.ROOT, "%-40s %10d%n", label, value);
    }

    /**
     * Each request as spans on request tracks (a track takes requests that do not overlap, first free first):
     * {@code queue} from its arrival to its send, {@code request} from the send to the end of its stream (its output
     * tokens as argument) and inside it {@code first_token}, the time to its first token.
     */
    static void traceRequests(TraceRecorder trace, List<RequestOutcome> outcomes) {
        List<RequestOutcome> bySchedule = outcomes.stream().sorted(Comparator.comparingLong(RequestOutcome::scheduledNanos)).toList();
        List<Long> trackEnds = new ArrayList<>();
        for (RequestOutcome r : bySchedule) {
            int track = 0;
            while (track < trackEnds.size() && trackEnds.get(track) > r.scheduledNanos()) {
                track++;
            }
            if (track == trackEnds.size()) {
                trackEnds.add(r.endNanos());
            } else {
                trackEnds.set(track, r.endNanos());
            }
            String name = "requests " + (track + 1);
            if (r.sentNanos() > r.scheduledNanos()) {
                trace.spanOnTrack(name, Trace.CLIENT, "queue", r.scheduledNanos(), r.sentNanos() - r.scheduledNanos(), null, 0);
            }
            trace.spanOnTrack(name, Trace.CLIENT, r.succeeded() ? "request" : "failed_request", r.sentNanos(),
                    r.endNanos() - r.sentNanos(), "output_tokens", r.outputTokens());
            if (r.succeeded()) {
                trace.spanOnTrack(name, Trace.CLIENT, "first_token", r.sentNanos(), r.firstTokenNanos() - r.sentNanos(), null, 0);
            }
        }
    }

    private void writeResult(Path file, String modelName, URI uri, Slo bounds, ClientMetrics metrics, GpuReport gpu) {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("date", Instant.now().toString());
        root.put("ember_version", BenchHeader.currentVersion());
        root.put("url", uri.toString());
        root.put("model", modelName);
        root.put("dataset", datasetName);
        root.put("num_prompts", numPrompts);
        root.put("request_rate", Double.isInfinite(requestRate) ? "inf" : requestRate);
        root.put("burstiness", burstiness);
        root.put("max_concurrency", maxConcurrency);
        root.put("warmup_requests", warmupRequests);
        root.put("ignore_eos", ignoreEos);
        root.put("n", n);
        root.put("logprobs", logprobs);
        root.put("slo", bounds != null ? bounds.toString() : null);
        root.putAll(metrics.toMap());
        if (!(gpu instanceof GpuReport.Off)) {
            root.put("gpu", gpu.toMap(metrics.outputTokens(), false));
            Map<String, Object> samples = new LinkedHashMap<>();
            samples.put("header", Map.of("benchmark", "bench client", "url", uri.toString(), "model", modelName));
            samples.put("gpu", gpu.toMap(metrics.outputTokens(), true));
            ResultTable.writeJsonValue(MonitorOptions.gpuFile(file), samples);
        }
        ResultTable.writeJsonValue(file, root);
    }
}
