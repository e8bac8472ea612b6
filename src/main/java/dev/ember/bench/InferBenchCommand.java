package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.backend.KvCacheMemory;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.streaming.DiskBandwidth;
import dev.ember.backend.streaming.ScheduleShape;
import dev.ember.backend.streaming.StreamingMode;
import dev.ember.backend.streaming.StreamingPlan;
import dev.ember.backend.streaming.StreamingReport;
import dev.ember.backend.streaming.StreamingSettings;
import dev.ember.cli.ConsoleProgress;
import dev.ember.cli.LoadedModel;
import dev.ember.cli.ModelOptions;
import dev.ember.cli.PresetOption;
import dev.ember.cli.PromptsFile;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.RequestListener;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.ModelConfig;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.scheduler.Sequence;
import dev.ember.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.time.Instant;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

/**
 * {@code ember bench infer}: seed 002's bench_infer.py. One batch of prompts (the first {@code --batch-size} of
 * {@code --prompts}, or random ones) runs {@code --warmup-rounds} times untimed and once timed through the engine, with
 * the weights held or streamed as {@code --mode} and the streaming knobs say; it prints 002's summary block and
 * writes its JSON. Beside the decode rate it prints the streaming bound: the bytes every step streams over the
 * bandwidths they move at (pinned host-to-device copies, and for {@code mixed} the disk), measured at the start; the
 * disk, whose speed varies, is measured again after each timed round and the bound takes the mean of the two.
 * {@code --batch-sizes} repeats the timed batch at each size, the first prompts of the largest batch; each keeps 002's
 * JSON of one run, in a file of its own named as the suffix {@code -bN} says, so that {@code ember plot} draws the
 * sweep (decode rate against batch size, per mode) from them as from runs made one at a time.
 */
@Command(name = "infer", mixinStandardHelpOptions = true,
        description = {"One batch through the engine with the weights whole on the device or streamed (seed 002's bench_infer):",
                "TTFT, prefill, first decode step, decode and end-to-end times, tokens/s beside the streaming bound, and JSON."})
public final class InferBenchCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    PresetOption preset;

    @Option(names = "--mode", paramLabel = "MODE",
            description = "full, preload, stream or mixed (the same as --weight-mode); default: full where the weights fit "
                    + "--gpu-weight-budget, else stream or mixed")
    String mode;

    @Option(names = "--prompts", paramLabel = "FILE",
            description = "prompts, one a line (or as PromptsFile reads them); needs --model for its tokenizer; default: random "
                    + "prompts of --prompt-len tokens")
    Path prompts;

    @Option(names = "--prompt-len", defaultValue = "128", description = "tokens of each random prompt; default: ${DEFAULT-VALUE}")
    int promptLen;

    @Option(names = "--batch-size", paramLabel = "N", description = "requests run together; default: 1")
    Integer batchSize;

    @Option(names = "--batch-sizes", split = ",", paramLabel = "N",
            description = "a sweep instead of --batch-size: one timed batch of each size, in one process (the model loaded and "
                    + "the bandwidths measured once); --out-json FILE.json then writes FILE-bN.json per size")
    List<Integer> batchSizes;

    @Option(names = "--max-new-tokens", defaultValue = "32", description = "tokens generated per request; default: ${DEFAULT-VALUE}")
    int maxNewTokens;

    @Option(names = "--max-seq-len", defaultValue = "2048",
            description = "longest sequence; a prompt longer than this less --max-new-tokens keeps its tail; default: ${DEFAULT-VALUE}")
    int maxSeqLen;

    @Option(names = "--temperature", defaultValue = "0.6", description = "sampling temperature, 0 = greedy; default: ${DEFAULT-VALUE}")
    float temperature;

    @Option(names = "--top-p", defaultValue = "0.9", description = "nucleus sampling mass; default: ${DEFAULT-VALUE}")
    float topP;

    @Option(names = "--seed", defaultValue = "0", description = "sampling seed of the first request (the others follow); default: ${DEFAULT-VALUE}")
    long seed;

    @Option(names = "--warmup-rounds", defaultValue = "1", description = "untimed rounds of the batch first; default: ${DEFAULT-VALUE}")
    int warmupRounds;

    @Option(names = "--out-json", paramLabel = "FILE", description = "where 002's JSON goes; default: none")
    Path outJson;

    @Option(names = "--verbose", description = "print the window's prefetches and evictions as they are issued")
    boolean verbose;

    /** The first request's first tokens, printed so that runs in different modes can be compared. */
    private static final int SHOWN_TOKENS = 16;
    private final List<Integer> firstRequestTokens = new ArrayList<>();

    @Override
    public Integer call() {
        PrintStream out = System.out;
        PrintStream err = System.err;
        List<Integer> sizes = sizesToRun();
        int largest = sizes.stream().mapToInt(Integer::intValue).max().orElseThrow();
        validate();
        ConsoleProgress progress = new ConsoleProgress(err);
        StreamingSettings settings = modelOptions.streaming().settings(verbose ? line -> err.println("[stream] " + line) : null);
        if (mode != null) {
            settings = settings.withMode(StreamingMode.parse(mode));
        }
        List<int[]> batch = new ArrayList<>();
        KvCacheSpec[] kv = new KvCacheSpec[1];
        try (Backend backend = modelOptions.openBackend(err);
             LoadedModel loaded = LoadedModel.open(modelOptions, preset, backend, (config, weightBytes, kvBytes) -> {
                 batch.addAll(prompts(config, largest));
                 int longest = batch.stream().mapToInt(p -> p.length).max().orElseThrow();
                 kv[0] = KvCacheSpec.forTokens(config, Math.toIntExact(largest * (long) (longest + maxNewTokens + KvCacheSpec.DEFAULT_BLOCK_SIZE)),
                         KvCacheSpec.DEFAULT_BLOCK_SIZE);
                 return kv[0];
             }, settings, progress, err)) {
            ModelRunner runner = loaded.runner();
            Bound bound = Bound.measure(backend, runner, loaded, progress);
            BenchHeader header = new BenchHeader("infer", backend.deviceName(), loaded.name(),
                    loaded.dtype().name().toLowerCase(Locale.ROOT), BenchHeader.currentVersion(), Instant.now(),
                    backend.measureCeilings(progress));
            header.print(out);
            out.println("[bench infer] " + runner.streaming().map(r -> r.plan().describe() + "; from " + r.source())
                    .orElse("weights: full (every weight on the device)"));
            bound.print(out);
            for (int size : sizes) {
                Path json = outJson == null || batchSizes == null ? outJson : perBatch(outJson, size);
                bound = runBatch(batch.subList(0, size), backend, loaded, bound, kv[0], progress, json, out).next();
            }
        }
        return 0;
    }

    /**
     * One batch: its warm-up rounds and the timed one, 002's summary block, and its JSON where {@code json} is given.
     * Where the disk bounds the mode it is measured again after the timed round; returns the bound the batch used.
     */
    private Bound runBatch(List<int[]> batch, Backend backend, LoadedModel loaded, Bound bound, KvCacheSpec kv,
                          ConsoleProgress progress, Path json, PrintStream out) {
        ModelRunner runner = loaded.runner();
        int size = batch.size();
        if (batchSizes != null) {
            out.println();
            out.println("[bench infer] batch size " + size);
        }
        int longest = batch.stream().mapToInt(p -> p.length).max().orElseThrow();
        // Overlap on a GPU, as served; the CPU computes a submitted step only when it is awaited, with the one
        // submitted after it, so there each step runs alone for the first decode step to have a time of its own.
        SchedulerConfig scheduler = new SchedulerConfig(size, Math.max(2048, longest + size), 2048,
                SchedulePolicy.DECODE_FIRST, false, backend.onGpu());
        LlmEngine engine = LlmEngine.tokensOnly(runner, scheduler);
        for (int round = 0; round < warmupRounds; round++) {
            run(engine, batch);
            progress.update("bench infer: warm-up rounds", round + 1, warmupRounds);
        }
        long bytesBefore = runner.streaming().map(StreamingReport::bytesCopied).orElse(0L);
        InferTimes times = run(engine, batch);
        long bytesStreamed = runner.streaming().map(StreamingReport::bytesCopied).orElse(0L) - bytesBefore;
        Bound timed = bound.readsDisk() ? bound.after(Bound.measureDisk(bound.plan(), loaded)) : bound;
        out.println("[bench infer] request 0's first tokens: " + firstRequestTokens);
        out.println();
        times.printSummary(out);
        double decodeRate = times.throughputTokS();
        if (timed.diskAfter() != null) {
            timed.printDisk(out);
        }
        if (timed.tokensPerSecond(size) > 0) {
            out.printf(Locale.ROOT, "[bench infer] decode %.2f tokens/s = %.1f%% of the streaming bound of %.2f tokens/s%s%n",
                    decodeRate, 100 * decodeRate / timed.tokensPerSecond(size), timed.tokensPerSecond(size),
                    timed.readsDisk() ? String.format(Locale.ROOT, " (disk %.2f GB/s, %s)", timed.diskBytesPerSecond() / 1e9,
                            timed.diskBasis()) : "");
        }
        if (json != null) {
            ResultTable.writeJsonValue(json, json(times, bytesStreamed, timed, loaded, backend, kv, batch));
            out.println("detailed JSON written to " + json);
        }
        return timed;
    }

    /** The batch sizes to run: --batch-sizes, or the one --batch-size (1 when neither is given). */
    private List<Integer> sizesToRun() {
        if (batchSizes != null && batchSize != null) {
            throw new EmberException("give --batch-size or --batch-sizes, not both");
        }
        List<Integer> sizes = batchSizes != null ? List.copyOf(batchSizes) : List.of(batchSize != null ? batchSize : 1);
        if (sizes.isEmpty() || sizes.stream().anyMatch(b -> b < 1)) {
            throw new EmberException("batch sizes must be at least 1: " + sizes);
        }
        return sizes;
    }

    /** {@code FILE.json} for batch size {@code n} of a sweep: {@code FILE-bN.json}, as the results directories name runs. */
    static Path perBatch(Path json, int n) {
        String name = json.getFileName().toString();
        int dot = name.lastIndexOf('.');
        String suffixed = dot > 0 ? name.substring(0, dot) + "-b" + n + name.substring(dot) : name + "-b" + n;
        return json.resolveSibling(suffixed);
    }

    private void validate() {
        if (maxNewTokens < 1 || warmupRounds < 0 || promptLen < 1) {
            throw new EmberException("--max-new-tokens and --prompt-len must be at least 1, --warmup-rounds at least 0");
        }
        if (maxSeqLen <= maxNewTokens) {
            throw new EmberException("--max-seq-len (" + maxSeqLen + ") must be larger than --max-new-tokens (" + maxNewTokens + ")");
        }
    }

    /** {@code count} prompts, each cut to its last max-seq-len - max-new-tokens tokens, as 002 cuts them. */
    private List<int[]> prompts(ModelConfig config, int count) {
        int room = Math.min(maxSeqLen, config.maxPositions()) - maxNewTokens;
        List<int[]> encoded = new ArrayList<>();
        if (prompts != null) {
            if (preset.given()) {
                throw new EmberException("--prompts needs --model: a preset has no tokenizer (random prompts: --prompt-len)");
            }
            List<String> texts = PromptsFile.read(prompts);
            try (Tokenizer tokenizer = Tokenizer.load(modelOptions.modelDirectory())) {
                for (int i = 0; i < count; i++) {
                    encoded.add(tokenizer.encode(texts.get(i % texts.size())));
                }
            }
        } else {
            SplittableRandom random = new SplittableRandom(promptLen);
            for (int i = 0; i < count; i++) {
                encoded.add(random.ints(promptLen, 0, config.vocabSize()).toArray());
            }
        }
        return encoded.stream().map(p -> p.length > room ? Arrays.copyOfRange(p, p.length - room, p.length) : p).toList();
    }

    /** One round: every prompt added, the engine stepped until all are done, the steps' times noted. */
    private InferTimes run(LlmEngine engine, List<int[]> batch) {
        long[] firstId = {-1};
        int[] firstTokens = {0}, secondTokens = {0};
        firstRequestTokens.clear();
        long[] generated = {0};
        RequestListener listener = new RequestListener() {
            @Override
            public void onToken(Sequence sequence, int token, String text) {
                generated[0]++;
                if (firstRequestTokens.size() < SHOWN_TOKENS && sequence.id() == firstId[0]) {
                    firstRequestTokens.add(token);
                }
                if (sequence.generatedCount() == 1) {
                    firstTokens[0]++;
                } else if (sequence.generatedCount() == 2) {
                    secondTokens[0]++;
                }
            }
        };
        long start = System.nanoTime();
        for (int i = 0; i < batch.size(); i++) {
            SamplingParams params = (temperature == 0 ? SamplingParams.greedy(maxNewTokens)
                    : SamplingParams.greedy(maxNewTokens).withTemperature(temperature).withTopP(topP).withSeed(seed + i))
                    .withIgnoreEos(true);
            Sequence added = engine.add(batch.get(i), params, listener);
            if (i == 0) {
                firstId[0] = added.id();
            }
        }
        long firstStep = System.nanoTime(), allFirst = 0, allSecond = 0;
        while (engine.hasWork()) {
            engine.step();
            long now = System.nanoTime();
            if (allFirst == 0 && firstTokens[0] == batch.size()) {
                allFirst = now;
            }
            if (allSecond == 0 && secondTokens[0] == batch.size()) {
                allSecond = now;
            }
        }
        long end = System.nanoTime();
        long prompt = batch.stream().mapToLong(p -> p.length).sum();
        return new InferTimes(prompt, generated[0] - batch.size(), generated[0], (allFirst - start) / 1e6,
                (allFirst - firstStep) / 1e6, allSecond == 0 ? 0 : (allSecond - allFirst) / 1e6, (end - allFirst) / 1e6,
                (end - start) / 1e6);
    }

    private Map<String, Object> json(InferTimes times, long bytesStreamed, Bound bound, LoadedModel loaded, Backend backend,
                                     KvCacheSpec kv, List<int[]> batch) {
        ModelRunner runner = loaded.runner();
        ModelConfig config = loaded.config();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("batch_size", batch.size());
        m.put("max_new_tokens", maxNewTokens);
        m.put("prompt_lens", batch.stream().map(p -> p.length).toList());
        m.putAll(times.toMap());
        Map<String, Object> io = new LinkedHashMap<>();
        io.put("weight_h2d_MBps", times.e2eMs() > 0 ? bytesStreamed / 1e6 / (times.e2eMs() / 1e3) : 0.0);
        io.put("kv_h2d_MBps", 0.0);  // the KV cache stays on the device
        io.put("kv_d2h_MBps", 0.0);
        m.put("io_bw_MBps", io);
        StreamingPlan plan = runner.streaming().map(StreamingReport::plan).orElse(null);
        long kvBytes = kv.tokenCapacity() * kv.bytesPerToken(runner.kvElementBytes());
        long weights = plan != null ? plan.deviceBytes() : loaded.hostModel() != null
                ? backend.planWeights(loaded.hostModel(), StreamingSettings.AUTOMATIC).deviceBytes()
                : config.matrixParameters() * runner.weightElementBytes();
        KvCacheMemory memory = backend.kvCacheMemory(config, 0, runner.kvElementBytes(), 1, 1);
        Map<String, Object> mem = new LinkedHashMap<>();
        mem.put("allocated_GB", (weights + kvBytes) / 1e9);
        mem.put("reserved_GB", backend.onGpu() ? (memory.totalBytes() - memory.freeBytes()) / 1e9 : (weights + kvBytes) / 1e9);
        m.put("gpu_mem_GB", mem);
        m.put("mode", plan != null ? plan.mode().label() : StreamingMode.FULL.label());
        m.put("device", backend.deviceName());
        Map<String, Object> streaming = new LinkedHashMap<>();
        streaming.put("enabled", plan != null);
        runner.streaming().ifPresent(r -> {
            ScheduleShape s = r.plan().shape();
            streaming.put("source", r.source());
            streaming.put("gpu_cached_layers", s.windowLayers());
            streaming.put("gpu_max_groups", 2 * s.windowLayers());
            streaming.put("cpu_cache_layers", s.cachedLayers());
            streaming.put("prefetch_distance", s.prefetchDistance());
            streaming.put("group_prefetch_depth", s.groupPrefetchDepth());
            streaming.put("warmup_layers", s.warmupLayers());
            streaming.put("staging_mb", s.stagingBuffers() * s.stagingBufferBytes() / (double) (1 << 20));
            streaming.put("bytes_per_step", s.bytesPerStep());
            streaming.put("most_groups_in_window", r.mostGroupsInWindow());
        });
        bound.putJson(streaming, batch.size());
        // 002's own object under its own name: streaming on, the layers read from the disk (mixed), the window's groups
        Map<String, Object> wsm = new LinkedHashMap<>();
        wsm.put("enabled", plan != null);
        wsm.put("ssd_enabled", plan != null && plan.mode() == StreamingMode.MIXED);
        wsm.put("gpu_max_groups", streaming.get("gpu_max_groups"));
        m.put("wsm", wsm);
        m.put("streaming", streaming);
        return m;
    }

    /**
     * The streaming bound: a decode step moves every streamed byte once, cached groups at the measured copy bandwidth
     * and staged ones at the slower of it and (for {@code mixed}) the disk; {@code batch} tokens come of each step. The
     * disk varies from minute to minute, so in {@code mixed} it is measured again after the timed round and the bound
     * takes the mean of the two measurements.
     *
     * @param copyBytesPerSecond pinned host-to-device copies (the CPU: host memory copies)
     * @param disk               the disk's read speed measured before the timed round, or null where nothing streams
     * @param diskAfter          the disk measured after it, or null until then (and where the mode reads no disk)
     */
    record Bound(StreamingPlan plan, double copyBytesPerSecond, DiskBandwidth disk, DiskBandwidth diskAfter) {
        static Bound measure(Backend backend, ModelRunner runner, LoadedModel loaded, ConsoleProgress progress) {
            StreamingPlan plan = runner.streaming().map(StreamingReport::plan).orElse(null);
            double copy = backend.measureWeightCopy(progress);
            return new Bound(plan, copy, plan == null ? null : measureDisk(plan, loaded), null);
        }

        /** The disk as the plan's staging reads it, over the model's weight files; null where they are not on a disk. */
        static DiskBandwidth measureDisk(StreamingPlan plan, LoadedModel loaded) {
            return loaded.hostModel() == null || loaded.hostModel().directory() == null ? null
                    : DiskBandwidth.measure(loaded.hostModel().directory(), plan.shape().stagingBufferBytes());
        }

        /** Whether the staged bytes come from the disk, so that the disk bounds them ({@code mixed}). */
        boolean readsDisk() {
            return plan != null && plan.mode() == StreamingMode.MIXED && disk != null;
        }

        /** This bound with the disk measured again after the timed round. */
        Bound after(DiskBandwidth measured) {
            return new Bound(plan, copyBytesPerSecond, disk, measured);
        }

        /** The bound for the next timed round: the measurement after this one is the one before the next. */
        Bound next() {
            return diskAfter == null ? this : new Bound(plan, copyBytesPerSecond, diskAfter, null);
        }

        /** The disk's rate the bound uses: the mean of the measurements before and after, or the one before alone. */
        double diskBytesPerSecond() {
            return diskAfter == null ? disk.bytesPerSecond() : (disk.bytesPerSecond() + diskAfter.bytesPerSecond()) / 2;
        }

        double tokensPerSecond(int batch) {
            if (plan == null) {
                return 0;
            }
            ScheduleShape s = plan.shape();
            long cached = s.cachedLayers() * (s.attentionBytes() + s.mlpBytes());
            long staged = s.bytesPerStep() - cached;
            double stagedRate = readsDisk() ? Math.min(copyBytesPerSecond, diskBytesPerSecond()) : copyBytesPerSecond;
            return batch / (cached / copyBytesPerSecond + staged / stagedRate);
        }

        /** What the bound's disk rate is: said beside the bound where the disk bounds it. */
        String diskBasis() {
            return diskAfter == null ? "measured before the timed round" : "mean of before and after the timed round";
        }

        void print(PrintStream out) {
            out.printf(Locale.ROOT, "[bench infer] measured: weight copies %.2f GB/s%s%n", copyBytesPerSecond / 1e9,
                    disk == null ? "" : ", disk reads " + disk.describe());
            if (plan != null) {
                out.printf(Locale.ROOT, "[bench infer] streaming bound: %.1f MB per step -> %.2f tokens/s per sequence%n",
                        plan.shape().bytesPerStep() / 1e6, tokensPerSecond(1));
            }
        }

        /** The disk measured after the timed round, beside the one before, and their mean that the bound uses. */
        void printDisk(PrintStream out) {
            out.printf(Locale.ROOT, "[bench infer] disk reads before the timed round %.2f GB/s (spans %.2f-%.2f), after %.2f GB/s "
                            + "(spans %.2f-%.2f): the bound uses their mean, %.2f GB/s%n", disk.bytesPerSecond() / 1e9,
                    disk.slowestSpan() / 1e9, disk.fastestSpan() / 1e9, diskAfter.bytesPerSecond() / 1e9,
                    diskAfter.slowestSpan() / 1e9, diskAfter.fastestSpan() / 1e9, diskBytesPerSecond() / 1e9);
        }

        /** The bandwidths and the bound as the JSON's {@code streaming} object carries them. */
        void putJson(Map<String, Object> streaming, int batch) {
            streaming.put("h2d_GBps", copyBytesPerSecond / 1e9);
            streaming.put("disk_GBps", disk == null ? null : diskBytesPerSecond() / 1e9);
            streaming.put("disk_direct_io", disk == null ? null : disk.direct() && (diskAfter == null || diskAfter.direct()));
            streaming.put("disk_GBps_basis", disk == null ? null : diskBasis());
            streaming.put("disk_GBps_before", disk == null ? null : disk.bytesPerSecond() / 1e9);
            streaming.put("disk_GBps_after", diskAfter == null ? null : diskAfter.bytesPerSecond() / 1e9);
            streaming.put("disk_GBps_min_span",
                    disk == null ? null : measurements().mapToDouble(DiskBandwidth::slowestSpan).min().orElseThrow() / 1e9);
            streaming.put("disk_GBps_max_span",
                    disk == null ? null : measurements().mapToDouble(DiskBandwidth::fastestSpan).max().orElseThrow() / 1e9);
            streaming.put("bound_tok_s", tokensPerSecond(batch));
        }

        private Stream<DiskBandwidth> measurements() {
            return Stream.of(disk, diskAfter).filter(Objects::nonNull);
        }
    }
}
