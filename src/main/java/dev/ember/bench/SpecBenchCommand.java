package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.StepCounters;
import dev.ember.bench.client.Arrivals;
import dev.ember.bench.client.ClientRequest;
import dev.ember.bench.client.Datasets;
import dev.ember.cli.CommandRuns;
import dev.ember.cli.ConsoleProgress;
import dev.ember.cli.SpeculativeOptions;
import dev.ember.engine.Speculation;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.ModelConfig;
import dev.ember.monitor.GpuMonitor;
import dev.ember.monitor.GpuReport;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.tokenizer.Tokenizer;
import dev.ember.trace.Trace;
import dev.ember.trace.TraceRecorder;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code ember bench spec}, seed 001's benchmark: speculative decoding against the target's plain decoding on the same
 * requests, a fixed number of prompts all at once or requests arriving at a rate for a duration, through one engine
 * with at most {@code --batch-size} requests running. Beside each measured speed-up it prints the one that the measured
 * per-token acceptance alpha and the measured cost ratio c of a draft step to a target step predict (Leviathan et al.
 * 2023), so that what the implementation loses to overhead shows. Writes 001's four files.
 */
@Command(name = "spec", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Speculative decoding against plain decoding (seed 001): TTFT, latency, throughput, acceptance rate,",
                "speed-up measured and predicted from the measured acceptance and draft/target cost ratio; 001's four files."})
public final class SpecBenchCommand implements Callable<Integer> {
    /** The columns of every row: one per run kind (the target, or speculation at one gamma). */
    static final List<String> COLUMNS = List.of("mode", "draft", "gamma", "batch_size", "requests", "runs", "prompt_tokens",
            "generated_tokens", "total_tokens", "duration_s", "throughput_tok_s", "total_throughput_tok_s", "ttft_ms_mean",
            "ttft_ms_p50", "ttft_ms_p99", "e2e_latency_ms_mean", "e2e_latency_ms_p50", "e2e_latency_ms_p99", "tpot_ms_mean",
            "acceptance_rate", "alpha", "mean_accepted_length", "drafted_tokens", "accepted_tokens", "verifications",
            "plain_decodes", "time_drafting_pct", "time_target_pct", "time_host_pct", "cost_ratio_c", "verify_cost_ratio",
            "speedup", "predicted_speedup", "predicted_speedup_with_verify_cost", "identical_to_target", "engine_steps",
            "step_us_mean", "target_await_us_per_step", "draft_await_us_per_step", "host_us_per_step", "host_schedule_us_per_step",
            "host_drafting_us_per_step", "host_submit_us_per_step", "host_retire_us_per_step", "host_other_us_per_step",
            "host_idle_us_per_step", "target_prepare_us_per_step", "target_launch_us_per_step", "target_runner_other_us_per_step",
            "draft_prepare_us_per_step", "draft_launch_us_per_step", "draft_runner_other_us_per_step", "target_choose_us_per_step",
            "target_capture_us_per_step", "draft_choose_us_per_step", "draft_capture_us_per_step", "target_runner_steps",
            "target_eager_steps", "draft_runner_steps", "draft_eager_steps");
    static final String RESULTS = "benchmark_results.json";
    static final String SPECULATIVE = "benchmark_results_speculative.json";
    static final String TARGET = "benchmark_results_target.json";
    static final String CHART_PREFIX = "benchmark_results";
    /** Prompt lengths of the random prompts of a preset (no tokenizer). */
    private static final int RANDOM_PROMPT_MIN = 16;
    private static final int RANDOM_PROMPT_MAX = 64;

    /** The prompts without --dataset: Bible verses (the shipped model has read the King James Bible among its texts) and plain English. */
    static final List<String> BUILT_IN_PROMPTS = List.of(
            "In the beginning God created the heaven and the earth. And the earth was without form, and void;",
            "And the LORD said unto Moses,",
            "The LORD is my shepherd; I shall not want. He maketh me to lie down in green pastures:",
            "Blessed are the poor in spirit: for theirs is the kingdom of heaven.",
            "And it came to pass in those days, that there went out a decree from Caesar Augustus,",
            "Honour thy father and thy mother:",
            "For God so loved the world,",
            "Now the serpent was more subtil than any beast of the field which the LORD God had made.",
            "And Jesus answering said unto them,",
            "To every thing there is a season, and a time to every purpose under the heaven:",
            "Hear, O Israel:",
            "And he spake a parable unto them, saying,",
            "The quick brown fox jumps over the lazy dog, and then",
            "Once upon a time there was a king who had three sons.",
            "Speculative decoding drafts several tokens with a small model and verifies them",
            "The city stood on a hill above the river, and in the morning");

    @Mixin
    EngineOptions engineOptions;

    @Mixin
    SpeculativeOptions speculativeOptions;

    @Mixin
    MonitorOptions monitorOptions;

    @Mixin
    TraceOptions traceOptions;

    @Option(names = "--num-prompts", paramLabel = "N",
            description = "prompts, all submitted at the start (001's NUM_PROMPTS); default: 8 unless --request-rate")
    Integer numPrompts;

    @Option(names = "--request-rate", paramLabel = "PER_SECOND",
            description = "instead of --num-prompts: requests arriving as a Poisson process of this rate for --duration seconds (001's AUTO_RATE)")
    Double requestRate;

    @Option(names = "--duration", paramLabel = "SECONDS", description = "with --request-rate: how long requests arrive (001's AUTO_DURATION)")
    Double duration;

    @Option(names = "--batch-size", defaultValue = "4", description = "most requests running at once; default: ${DEFAULT-VALUE}")
    int batchSize;

    @Option(names = "--max-batch-length", defaultValue = "512", paramLabel = "TOKENS",
            description = "longest sequence, prompt plus generated tokens; longer prompts are cut to their first "
                    + "max-batch-length - gen-len tokens; default: ${DEFAULT-VALUE}")
    int maxBatchLength;

    @Option(names = "--gen-len", defaultValue = "100", description = "tokens generated per request (EOS ignored); default: ${DEFAULT-VALUE}")
    int genLen;

    @Option(names = "--gamma", split = ",", paramLabel = "N",
            description = "tokens drafted per step: one value, or a sweep (1,2,4,8) with a chart; default: --num-speculative-tokens (4)")
    List<String> gammaValues;

    @Option(names = "--speculative", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "run speculative decoding (--no-speculative: the target alone); default: on")
    boolean speculative;

    @Option(names = "--target", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "run the target's plain decoding for comparison (--no-target: speculation alone); default: on")
    boolean target;

    @Option(names = "--dataset", paramLabel = "FILE|DIR",
            description = "prompts from a ShareGPT file (JSON lines or array: sharegpt_gpt4.jsonl, sharegpt_V3_format.jsonl, "
                    + "sharegpt_zh_38K_format.jsonl), or a directory holding those three (001's SHAREGPT_DIR: the ones "
                    + "there, together); default: built-in prompts")
    Path dataset;

    @Option(names = "--temperature", defaultValue = "0",
            description = "sampling temperature; 0 = greedy, where the speculative output is checked to be the target's; default: ${DEFAULT-VALUE}")
    float temperature;

    @Option(names = "--runs", defaultValue = "3", description = "timed runs of each kind after a warm-up; medians; default: ${DEFAULT-VALUE}")
    int runs;

    @Option(names = "--seed", defaultValue = "0", description = "seed of the dataset's order, arrivals, random prompts and sampling; default: ${DEFAULT-VALUE}")
    long seed;

    @Option(names = "--out-dir", defaultValue = "spec-results", paramLabel = "DIR",
            description = "where 001's four files (and the chart of a sweep) go; default: ${DEFAULT-VALUE}")
    Path outDir;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** The requests: prompt ids, arrival times in seconds from the start, and where the prompts came from. */
    record Workload(List<int[]> prompts, double[] arrivals, String describe) {
        long promptTokens() {
            return prompts.stream().mapToLong(p -> p.length).sum();
        }

        int longestPrompt() {
            return prompts.stream().mapToInt(p -> p.length).max().orElse(0);
        }
    }

    /** The speed-up Leviathan et al. (2023) predict: (1 - a^(gamma+1)) / ((1 - a)(gamma c + v)), v = 1 in the paper. */
    static double predictedSpeedup(double alpha, int gamma, double c, double v) {
        double tokens = alpha >= 1 ? gamma + 1 : (1 - Math.pow(alpha, gamma + 1)) / (1 - alpha);
        return tokens / (gamma * c + v);
    }

    @Override
    public Integer call() {
        List<Integer> gammas = gammas();
        validate();
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        PrintStream err = System.err;
        Progress progress = new ConsoleProgress(err);
        boolean fromPreset = engineOptions.preset.given();
        int maxGamma = gammas.stream().mapToInt(Integer::intValue).max().orElse(1);
        try (Tokenizer tokenizer = fromPreset ? null : Tokenizer.load(engineOptions.model.modelDirectory())) {
            ModelConfig presetConfig = fromPreset ? engineOptions.preset.config(engineOptions.model) : null;
            Workload workload = workload(tokenizer, presetConfig);
            SchedulerConfig scheduler = engineOptions.scheduler.config(batchSize, SchedulePolicy.DECODE_FIRST);
            int block = KvCacheSpec.DEFAULT_BLOCK_SIZE;
            int running = Math.min(batchSize, workload.prompts().size());
            int longest = workload.longestPrompt() + genLen;
            long kvTokens = (long) running * ((longest + maxGamma + block) / block * block);
            try (BenchEngine bench = BenchEngine.open(engineOptions, scheduler, kvTokens, longest, err, progress)) {
                return run(bench, tokenizer, workload, scheduler, gammas, running, out, err, progress);
            }
        }
    }

    private int run(BenchEngine bench, Tokenizer tokenizer, Workload workload, SchedulerConfig scheduler, List<Integer> gammas,
                    int running, PrintStream out, PrintStream err, Progress progress) {
        ModelConfig config = bench.config();
        EmberException.require(maxBatchLength <= config.maxPositions(), "--max-batch-length " + maxBatchLength
                + " exceeds the model's context of " + config.maxPositions() + " tokens");
        SpeculativeOptions source = speculativeOptions.inHubCache(engineOptions.model.hubCache()).orDefault(defaultDraft(config)).unlimitedUnlessGiven();
        BenchHeader header = bench.header("bench spec");
        header.print(out);
        String sampling = temperature == 0 ? "greedy" : "temperature " + temperature + ", seed " + seed;
        out.printf(Locale.ROOT, "# workload: %s; %d tokens each (EOS ignored), %s; at most %d running, sequences of at most %d tokens%n",
                workload.describe(), genLen, sampling, batchSize, maxBatchLength);
        out.println("# engine: " + bench.describe(scheduler));

        int context = (int) Math.min(maxBatchLength - gammas.stream().mapToInt(Integer::intValue).max().orElse(1) - 1,
                Math.round((double) workload.promptTokens() / workload.prompts().size() + genLen / 2.0));
        Speculation base = speculative ? source.open(bench.backend(), bench.loaded(), tokenizer, progress).orElseThrow() : null;
        try {
            String draft = base == null ? null : base.proposer().describe();
            String placement = base == null || source.ngram() ? null : source.placement(bench.backend()).describe();
            if (draft != null) {
                out.printf("# draft: %s%s; gamma %s%n", draft, placement == null ? "" : ", placement " + placement,
                        gammas.size() == 1 ? gammas.getFirst() : gammas + " (a sweep)");
            }
            warmUp(bench, scheduler, base, gammas, workload, running);
            SpecCost cost = SpecCost.measure(bench, tokenizer, source, speculative ? gammas : List.of(), running,
                    Math.max(1, context), seed, progress);
            out.println("# cost of a step: " + cost.describe());

            GpuMonitor monitor = monitorOptions.start(err, Trace.OFF);
            ResultTable gpuRows = new ResultTable(MonitorOptions.withKeys(List.of("mode", "gamma", "run")));
            List<SpecRuns> measured = timedRuns(bench, scheduler, base, gammas, workload, monitor, gpuRows, progress, err);
            GpuReport gpu = monitor.stop();
            return report(header, bench, workload, scheduler, source, draft, placement, cost, measured, gpu, gpuRows, out, err);
        } finally {
            if (base != null) {
                base.close();
            }
        }
    }

    /**
     * The timed runs: in each round the target alone (unless --no-target), then speculation at each gamma (unless
     * --no-speculative), so that a slower or faster spell of the machine falls on all kinds alike; a GPU window each.
     */
    private List<SpecRuns> timedRuns(BenchEngine bench, SchedulerConfig scheduler, Speculation base, List<Integer> gammas,
                                     Workload workload, GpuMonitor monitor, ResultTable gpuRows, Progress progress,
                                     PrintStream err) {
        List<Integer> kinds = kinds(base, gammas);
        List<List<SpecPass>> passes = new ArrayList<>();
        kinds.forEach(k -> passes.add(new ArrayList<>()));
        Map<String, TraceRecorder> traces = new LinkedHashMap<>();  // --trace: each pass's spans, in the order run
        for (int r = 0; r < runs; r++) {
            for (int k = 0; k < kinds.size(); k++) {
                Integer gamma = kinds.get(k);
                Speculation speculation = speculationAt(base, gamma);
                String label = "bench spec: " + (gamma == null ? "target" : "speculative, gamma " + gamma) + (runs > 1 ? ", run " + (r + 1) : "");
                GpuMonitor.Checkpoint from = monitor.checkpoint();
                SpecPass pass = SpecPass.run(bench, scheduler, speculation, workload.prompts(), workload.arrivals(),
                        this::samplingParams, label, progress, traceOptions.given());
                passes.get(k).add(pass);
                if (pass.trace() != null) {
                    traces.put((gamma == null ? "target" : "gamma " + gamma) + ", run " + (r + 1), pass.trace());
                }
                int run = r + 1;
                monitor.between(from, monitor.checkpoint()).ifPresent(s -> gpuRows.add(MonitorOptions.windowGpuRow(
                        pass.generatedTokens(), s, gamma == null ? "target" : "speculative", gamma, run)));
            }
        }
        traceOptions.write(traces, err);
        List<SpecRuns> measured = new ArrayList<>();
        for (int k = 0; k < kinds.size(); k++) {
            Integer gamma = kinds.get(k);
            measured.add(new SpecRuns(gamma == null ? "target" : "speculative",
                    gamma == null ? null : base.proposer().describe(), gamma, passes.get(k)));
        }
        return measured;
    }

    /** The draft when none is asked for: the shipped draft of the default model, else the target's first quarter of layers. */
    private String defaultDraft(ModelConfig config) {
        if (!engineOptions.preset.given() && !engineOptions.model.modelGiven()) {
            return engineOptions.model.defaultDraftDirectory().toString();
        }
        return "self:" + Math.max(1, config.numLayers() / 4);
    }

    private List<Integer> gammas() {
        boolean numGiven = spec.commandLine().getParseResult().hasMatchedOption("--num-speculative-tokens");
        if (gammaValues == null) {
            return List.of(speculativeOptions.gamma());
        }
        EmberException.require(!numGiven, "give --gamma or --num-speculative-tokens, not both");
        List<Integer> gammas = new ArrayList<>();
        for (String value : gammaValues) {
            int g;
            try {
                g = Integer.parseInt(value.strip());
            } catch (NumberFormatException e) {
                throw new EmberException("--gamma takes whole numbers of drafted tokens, such as 4 or 1,2,4,8; not \"" + value + "\"");
            }
            EmberException.require(g >= 1, "--gamma values must be at least 1, got " + g);
            EmberException.require(!gammas.contains(g), "--gamma " + g + " is given twice");
            gammas.add(g);
        }
        return List.copyOf(gammas);
    }

    private void validate() {
        EmberException.require(speculative || target, "nothing to run: --no-speculative and --no-target together");
        EmberException.require((requestRate == null) == (duration == null), "--request-rate and --duration go together");
        EmberException.require(requestRate == null || numPrompts == null,
                "give --num-prompts, or --request-rate with --duration, not both");
        EmberException.require(numPrompts == null || numPrompts >= 1, "--num-prompts must be at least 1, got " + numPrompts);
        EmberException.require(requestRate == null || (requestRate > 0 && Double.isFinite(requestRate)),
                "--request-rate must be a positive number of requests per second, got " + requestRate);
        EmberException.require(duration == null || (duration > 0 && Double.isFinite(duration)),
                "--duration must be a positive number of seconds, got " + duration);
        EmberException.require(batchSize >= 1, "--batch-size must be at least 1, got " + batchSize);
        EmberException.require(genLen >= 2, "--gen-len must be at least 2 (the first token comes with the prompt; speculation drafts the rest), got " + genLen);
        EmberException.require(maxBatchLength > genLen, "--max-batch-length (" + maxBatchLength
                + ") must leave room for a prompt beside --gen-len (" + genLen + ")");
        EmberException.require(temperature >= 0 && Float.isFinite(temperature), "--temperature must be 0 or more, got " + temperature);
        EmberException.require(runs >= 1, "--runs must be at least 1, got " + runs);
    }

    /** The prompts (built-in, a ShareGPT file, or random ids for a preset), cut to fit, and when each arrives. */
    Workload workload(Tokenizer tokenizer, ModelConfig presetConfig) {
        double[] arrivals = arrivals();
        int count = arrivals.length;
        int room = maxBatchLength - genLen;
        List<int[]> prompts = new ArrayList<>(count);
        String from;
        if (tokenizer == null) {
            EmberException.require(dataset == null, "--dataset needs a model with a tokenizer (--model), not a preset's random weights");
            SplittableRandom random = new SplittableRandom(seed);
            int ids = Math.min(presetConfig.vocabSize(), Datasets.DEFAULT_RANDOM_VOCABULARY);
            for (int i = 0; i < count; i++) {
                prompts.add(random.ints(random.nextInt(RANDOM_PROMPT_MIN, RANDOM_PROMPT_MAX + 1), 0, ids).toArray());
            }
            from = "random token ids";
        } else if (dataset != null) {
            // A fixed count takes that many conversations; requests arriving at a rate take the file's in turn.
            List<ClientRequest> requests = requestRate == null ? Datasets.shareGpt(dataset, count, tokenizer, genLen, seed)
                    : Datasets.shareGptUpTo(dataset, count, tokenizer, genLen, seed);
            EmberException.require(!requests.isEmpty(), dataset + " has no usable conversation");
            for (int i = 0; i < count; i++) {
                prompts.add(tokenizer.encode(((ClientRequest.Text) requests.get(i % requests.size()).prompt()).text()));
            }
            from = "ShareGPT prompts of " + dataset;
        } else {
            for (int i = 0; i < count; i++) {
                prompts.add(tokenizer.encode(BUILT_IN_PROMPTS.get(i % BUILT_IN_PROMPTS.size())));
            }
            from = "built-in prompts";
        }
        int cut = 0;
        for (int i = 0; i < prompts.size(); i++) {
            if (prompts.get(i).length > room) {
                prompts.set(i, Arrays.copyOf(prompts.get(i), room));
                cut++;
            }
        }
        String timing = requestRate == null ? count + " " + from + " all at the start"
                : String.format(Locale.ROOT, "%d %s arriving at %s per second (Poisson) for %s s", count, from, requestRate, duration);
        return new Workload(List.copyOf(prompts), arrivals, timing + (cut > 0 ? ", " + cut + " cut to " + room + " tokens" : ""));
    }

    /** Seconds from the start at which each request arrives: all at 0, or a Poisson process's arrivals within the duration. */
    private double[] arrivals() {
        if (requestRate == null) {
            return new double[numPrompts == null ? 8 : numPrompts];
        }
        int n = (int) Math.min(1 << 20, Math.ceil(requestRate * duration * 2) + 16);
        double[] times = Arrivals.times(n, requestRate, 1.0, seed);
        while (times[times.length - 1] < duration && n < (1 << 20)) {
            n *= 2;
            times = Arrivals.times(n, requestRate, 1.0, seed);
        }
        return Arrays.stream(times).filter(t -> t < duration).toArray();
    }


    /**
     * An untimed pass of each kind (the target alone, and speculation at every gamma of the sweep), so that the timed
     * ones run compiled code with warm caches and meet no step shape for the first time: the runners' own warm-up
     * chooses their small products, but a runner captures a graph for each new step shape and block-table width (a
     * verification of gamma + 1 tokens, a draft's catch-up) at its first step, and a figure of the steady state leaves
     * those out, as the predicted speed-up does (its step costs are timed after warm rounds).
     * Its requests are the workload's shortest and longest prompts at the timed runs' length and sampling, so that their
     * sequences pass through the block-table widths the timed runs reach.
     */
    private void warmUp(BenchEngine bench, SchedulerConfig scheduler, Speculation base, List<Integer> gammas, Workload workload,
                        int running) {
        List<int[]> prompts = warmUpPrompts(workload.prompts(), running);
        double[] atOnce = new double[prompts.size()];
        bench.runner().warmUp(batchSize, scheduler.maxBatchedTokens(), maxBatchLength);
        if (base != null) {
            base.proposer().warmUp(batchSize, scheduler.maxBatchedTokens(), maxBatchLength);
        }
        for (Integer gamma : kinds(base, gammas)) {
            SpecPass.run(bench, scheduler, speculationAt(base, gamma), prompts, atOnce, this::samplingParams,
                    "bench spec: warm-up", Progress.NONE, false);
        }
    }

    /** The kinds of pass, in the order each round runs them: null for the target alone (unless --no-target), then each gamma. */
    private List<Integer> kinds(Speculation base, List<Integer> gammas) {
        List<Integer> kinds = new ArrayList<>();
        if (target) {
            kinds.add(null);
        }
        if (base != null) {
            kinds.addAll(gammas);
        }
        return kinds;
    }

    /** {@code base} speculating {@code gamma} tokens a round; null (the target alone) for a null gamma. */
    private static Speculation speculationAt(Speculation base, Integer gamma) {
        return gamma == null ? null : new Speculation(base.proposer(), gamma, base.disableAboveBatch());
    }

    /** The {@code running} shortest prompts and the {@code running} longest (all of them where there are no more). */
    static List<int[]> warmUpPrompts(List<int[]> prompts, int running) {
        List<int[]> byLength = prompts.stream().sorted(Comparator.comparingInt(p -> p.length)).toList();
        if (byLength.size() <= 2 * running) {
            return byLength;
        }
        List<int[]> chosen = new ArrayList<>(byLength.subList(0, running));
        chosen.addAll(byLength.subList(byLength.size() - running, byLength.size()));
        return chosen;
    }

    /** Request {@code i}'s sampling in every pass: {@code --gen-len} tokens, EOS ignored, at {@code --temperature}. */
    private SamplingParams samplingParams(int i) {
        return new SamplingParams(temperature, 0, 1f, 0f, 1f, seed + i, genLen, List.of(), true);
    }

    /** A row of {@link #COLUMNS} for {@code m}; speculation's figures are null on the target's. */
    private Object[] row(SpecRuns m, SpecRuns plain, SpecCost cost, SpecIdentity identity, Workload workload, boolean rated) {
        SpecPass p = m.first();
        Integer g = m.gamma();
        boolean s = m.speculates();
        Double speedup = plain == null || !s ? null : rated ? plain.mean(SpecPass::e2eMs) / m.mean(SpecPass::e2eMs)
                : m.throughput() / plain.throughput();
        return new Object[] {m.mode(), m.draft(), g, batchSize, workload.prompts().size(), runs, p.promptTokens(), p.generatedTokens(),
                p.promptTokens() + p.generatedTokens(), m.seconds(), m.throughput(),
                (p.promptTokens() + p.generatedTokens()) / m.seconds(), m.mean(SpecPass::ttftMs),
                m.quantile(SpecPass::ttftMs, 0.5), m.quantile(SpecPass::ttftMs, 0.99), m.mean(SpecPass::e2eMs),
                m.quantile(SpecPass::e2eMs, 0.5), m.quantile(SpecPass::e2eMs, 0.99), m.mean(SpecPass::tpotMs),
                s ? m.acceptanceRate() : null, s ? m.alpha() : null, s ? m.meanAcceptedLength() : null,
                s ? m.sum(SpecPass::proposed) : null, s ? m.sum(SpecPass::accepted) : null,
                s ? m.sum(SpecPass::verifications) : null, s ? m.sum(SpecPass::plainDecodes) : null,
                m.share(SpecStepTimes::draftNanos), m.share(SpecStepTimes::targetNanos), m.hostShare(),
                s ? cost.c() : null, s ? cost.v(g) : null, speedup,
                s ? predictedSpeedup(m.alpha(), g, cost.c(), 1) : null,
                s ? predictedSpeedup(m.alpha(), g, cost.c(), cost.v(g)) : null, identity.of(m),
                m.sum(run -> run.times().steps()), m.microsPerStep(SpecStepTimes::stepNanos), m.microsPerStep(SpecStepTimes::targetNanos),
                m.microsPerStep(SpecStepTimes::draftAwaitNanos), m.microsPerStep(SpecStepTimes::hostNanos),
                m.microsPerStep(SpecStepTimes::scheduleNanos), m.microsPerStep(SpecStepTimes::draftHostNanos),
                m.microsPerStep(SpecStepTimes::submitNanos), m.microsPerStep(SpecStepTimes::retireNanos),
                m.microsPerStep(SpecStepTimes::otherHostNanos), m.microsPerStep(SpecStepTimes::idleNanos),
                m.runnerMicrosPerStep(SpecStepTimes::target, StepCounters::prepareNanos),
                m.runnerMicrosPerStep(SpecStepTimes::target, StepCounters::launchNanos),
                m.runnerMicrosPerStep(SpecStepTimes::target, StepCounters::otherNanos),
                m.runnerMicrosPerStep(SpecStepTimes::draft, StepCounters::prepareNanos),
                m.runnerMicrosPerStep(SpecStepTimes::draft, StepCounters::launchNanos),
                m.runnerMicrosPerStep(SpecStepTimes::draft, StepCounters::otherNanos),
                m.runnerMicrosPerStep(SpecStepTimes::target, StepCounters::chooseNanos),
                m.runnerMicrosPerStep(SpecStepTimes::target, StepCounters::captureNanos),
                m.runnerMicrosPerStep(SpecStepTimes::draft, StepCounters::chooseNanos),
                m.runnerMicrosPerStep(SpecStepTimes::draft, StepCounters::captureNanos),
                m.runnerCount(SpecStepTimes::target, StepCounters::steps), m.runnerCount(SpecStepTimes::target, StepCounters::eagerSteps),
                m.runnerCount(SpecStepTimes::draft, StepCounters::steps), m.runnerCount(SpecStepTimes::draft, StepCounters::eagerSteps)};
    }

    private int report(BenchHeader header, BenchEngine bench, Workload workload, SchedulerConfig scheduler, SpeculativeOptions source,
                       String draft, String placement, SpecCost cost, List<SpecRuns> measured, GpuReport gpu, ResultTable gpuRows, PrintStream out,
                       PrintStream err) {
        SpecRuns plain = measured.getFirst().speculates() ? null : measured.getFirst();
        boolean rated = requestRate != null;
        String basis = rated ? "mean end-to-end latency" : "throughput";
        SpecIdentity identity = SpecIdentity.of(plain, measured, temperature, bench.runner(), workload.prompts());
        ResultTable rows = new ResultTable(COLUMNS);
        ResultTable targetRows = new ResultTable(COLUMNS);
        ResultTable specRows = new ResultTable(COLUMNS);
        Map<String, Object> byPosition = new LinkedHashMap<>();
        for (SpecRuns m : measured) {
            Object[] row = row(m, plain, cost, identity, workload, rated);
            rows.add(row);
            (m.speculates() ? specRows : targetRows).add(row);
            if (m.speculates()) {
                byPosition.put(String.valueOf(m.gamma()), m.acceptanceByPosition());
            }
        }
        SpecSummary.print(out, rows, measured, basis, identity, source.ngram());
        // The target's products at each row count it met (a verification's gamma + 1 among them), as timed on this GPU.
        BenchHeader.printMeasuredChoices(out, bench.runner().measuredChoices());

        Map<String, Object> head = new LinkedHashMap<>(header.toMap());
        Map<String, Object> w = new LinkedHashMap<>();
        w.put("prompts", workload.describe());
        w.put("requests", workload.prompts().size());
        w.put("request_rate", requestRate);
        w.put("duration_s", duration);
        w.put("batch_size", batchSize);
        w.put("max_batch_length", maxBatchLength);
        w.put("gen_len", genLen);
        w.put("temperature", temperature);
        w.put("seed", seed);
        w.put("runs", runs);
        w.put("ignore_eos", true);
        head.put("workload", w);
        head.put("engine", bench.describe(scheduler));
        head.put("draft", draft);
        head.put("placement", placement);
        head.put("speedup_basis", basis);
        head.put("prediction", "(1 - alpha^(gamma+1)) / ((1 - alpha)(gamma c + 1)), Leviathan et al. 2023; alpha = accepted / "
                + "(accepted + verifications with a rejection); with verify cost: v, the verification's time over a decode step's, for 1");
        Map<String, Object> costSection = cost.toMap();
        long outputTokens = measured.stream().mapToLong(m -> m.sum(SpecPass::generatedTokens)).sum();
        Path results = outDir.resolve(RESULTS);
        Path specFile = outDir.resolve(SPECULATIVE);
        Path targetFile = outDir.resolve(TARGET);
        Path gpuFile = MonitorOptions.gpuFile(results);
        Map<String, Object> sections = new LinkedHashMap<>();
        sections.put("cost", costSection);
        sections.put("acceptance_by_position", byPosition);
        sections.put("identical_to_target", identity.summary());
        sections.put("gpu", gpu.toMap(outputTokens, false));
        rows.writeJson(results, head, sections);
        specRows.writeJson(specFile, head, Map.of("cost", costSection, "acceptance_by_position", byPosition,
                "identical_to_target", identity.summary()));
        targetRows.writeJson(targetFile, head);
        gpuRows.writeJson(gpuFile, head, Map.of("gpu", gpu.toMap(outputTokens, true)));
        if (!(gpu instanceof GpuReport.Off)) {
            out.println(gpu.describe(outputTokens));
        }
        out.println("wrote " + results + ", " + specFile + ", " + targetFile + " and " + gpuFile);
        if (specRows.rows().size() > 1) {
            int code = CommandRuns.executeFromRoot(spec, "plot", specFile.toString(), "--kind", "speedup", "--out-dir",
                    outDir.toString(), "--out-prefix", CHART_PREFIX);
            if (code != 0) {
                err.println("ember: the chart of speed-up against gamma was not drawn (above: why)");
            }
        }
        if (identity.differs()) {
            err.println("ember: error: greedy speculative output differs from the target's: " + identity.firstDifference());
            return 1;
        }
        return 0;
    }


}
