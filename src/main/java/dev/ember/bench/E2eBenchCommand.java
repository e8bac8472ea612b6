package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.backend.DeviceCeilings;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.SubmittedStep;
import dev.ember.backend.WorkMarks;
import dev.ember.cli.ConsoleProgress;
import dev.ember.cli.LoadedModel;
import dev.ember.cli.ModelOptions;
import dev.ember.cli.PresetOption;
import dev.ember.cli.Stats;
import dev.ember.monitor.GpuMonitor;
import dev.ember.monitor.GpuReport;
import dev.ember.trace.Trace;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code ember bench e2e}, the seeds' {@code ember_benchmark}: a fixed workload of {@code --decode-batch} random
 * prompts of {@code --prompt-len} tokens, prefilled in steps of at most {@code --chunk-len} tokens, then greedy
 * decoding until each has {@code --gen-len} tokens, through {@link ModelRunner#forwardAndSample} (the engine's step).
 * Prints and writes one row of the seeds' columns, medians over {@code --iters} runs after {@code --warmup}, and
 * beside it the decode speed as a fraction of the bandwidth roofline: the bytes a decode step must read (weights
 * but the embedding table, plus the KV cache) over the copy bandwidth measured on this device at start.
 *
 * <p>Columns: {@code ttft_ms} until the first sequence's first token; {@code prefill_ms} until every prompt is
 * prefilled (and its first token chosen); {@code decode_ms} for the {@code gen_len - 1} decode steps that follow;
 * {@code decode_tok_s} the tokens those steps produced per second.
 */
@Command(name = "e2e", mixinStandardHelpOptions = true, sortOptions = false,
        description = "End-to-end prefill + decode timing (TTFT, prefill, decode tokens/s) beside the bandwidth roofline.")
public final class E2eBenchCommand implements Callable<Integer>, ReportedBenchmark {
    static final List<String> COLUMNS = List.of("mode", "prompt_len", "gen_len", "chunk_len", "batch_size", "ttft_ms",
            "prefill_ms", "decode_ms", "decode_tok_s");

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    PresetOption preset;

    @Mixin
    MonitorOptions monitorOptions;

    @Mixin
    TraceOptions traceOptions;

    @Mixin
    NvtxOption nvtxOption;

    @Option(names = "--prompt-len", defaultValue = "128", description = "prompt tokens per sequence; default: ${DEFAULT-VALUE}")
    int promptLen;

    @Option(names = "--gen-len", defaultValue = "128", description = "tokens generated per sequence (>= 2); default: ${DEFAULT-VALUE}")
    int genLen;

    @Option(names = "--chunk-len", defaultValue = "512", description = "most prompt tokens per prefill step; default: ${DEFAULT-VALUE}")
    int chunkLen;

    @Option(names = "--decode-batch", defaultValue = "1", description = "sequences decoded together; default: ${DEFAULT-VALUE}")
    int decodeBatch;

    @Option(names = "--iters", defaultValue = "3", description = "timed runs (the row holds their medians); default: ${DEFAULT-VALUE}")
    int iters;

    @Option(names = "--warmup", defaultValue = "1", description = "untimed runs first; default: ${DEFAULT-VALUE}")
    int warmup;


    @Mixin
    ResultFileOptions files = new ResultFileOptions();

    @Option(names = "--seed", defaultValue = "1", description = "seed of the prompts; default: ${DEFAULT-VALUE}")
    long seed;

    @Option(names = {"--no-overlap", "--disable-overlap-schedule"},
            description = "await each decode step before submitting the next, rather than preparing step N+1 while the "
                    + "device computes step N (its tokens carried on the device), as the serving engine does")
    boolean noOverlap;

    /** One timed run, in milliseconds. */
    record Run(double ttftMs, double prefillMs, double decodeMs) {
    }

    /** The points of a run that its figures are timed between. */
    enum Point { START, FIRST_TOKEN, PREFILLED, END }

    /** A loaded runner and the host model behind it (none for presets made on the GPU). */
    private record Loaded(String name, DType dtype, ModelRunner runner, Model model) implements AutoCloseable {
        @Override
        public void close() {
            runner.close();
            if (model != null) {
                model.close();
            }
        }
    }

    @Override
    public Integer call() {
        validate();
        PrintStream out = System.out;
        PrintStream err = System.err;
        ConsoleProgress progress = new ConsoleProgress(err);
        try (Backend backend = modelOptions.openBackend(err); LoadedModel loaded = LoadedModel.open(modelOptions, preset, backend, this::kvCache, progress, err)) {
            ModelRunner runner = loaded.runner();
            DeviceCeilings ceilings = backend.measureCeilings(progress);
            BenchHeader header = new BenchHeader("bench e2e", runner.deviceName(), loaded.name(),
                    loaded.dtype().name().toLowerCase(Locale.ROOT), BenchHeader.currentVersion(), Instant.now(), ceilings);
            header.print(out);
            List<Run> runs = new ArrayList<>();
            Trace trace = traceOptions.open();  // the timed runs only
            StepSpans spans = StepSpans.steps(trace, nvtxOption.open(err));
            GpuMonitor monitor = GpuMonitor.off();
            String timing;
            try (WorkMarks marks = backend.workMarks(runner, Point.values().length)) {
                timing = marks.method();
                for (int i = 0; i < warmup + iters; i++) {
                    progress.update("bench e2e", i, warmup + iters);
                    if (i == warmup) {
                        monitor = monitorOptions.start(err, trace);  // the timed runs only
                    }
                    Run r = runOnce(runner, new SplittableRandom(seed + i), i < warmup ? StepSpans.OFF : spans, marks);
                    if (i >= warmup) {
                        runs.add(r);
                    }
                }
            } finally {
                traceOptions.write(trace, err);
            }
            GpuReport gpu = monitor.stop();
            long timedTokens = (long) iters * decodeBatch * genLen;
            progress.update("bench e2e", warmup + iters, warmup + iters);

            int decodeTokens = decodeBatch * (genLen - 1);
            double decodeMs = Stats.of(runs.stream().mapToDouble(Run::decodeMs).toArray()).median();
            double tokensPerSecond = Stats.of(runs.stream().mapToDouble(r -> decodeTokens / (r.decodeMs() / 1e3)).toArray()).median();
            ResultTable table = new ResultTable(COLUMNS).add(decodeBatch == 1 ? "single" : "batch", promptLen, genLen, chunkLen,
                    decodeBatch, Stats.of(runs.stream().mapToDouble(Run::ttftMs).toArray()).median(),
                    Stats.of(runs.stream().mapToDouble(Run::prefillMs).toArray()).median(), decodeMs, tokensPerSecond);
            table.print(out);

            ModelConfig c = runner.config();
            double weightBytes = ModelCost.of(c, loaded.dtype().bytes(), 0).weightBytes();
            double kvBytes = averageKvBytesPerStep(c, runner.kvElementBytes());
            double floorSeconds = ceilings.secondsToMove(weightBytes + kvBytes);
            double rooflineTokensPerSecond = decodeBatch / floorSeconds;
            out.printf(Locale.ROOT, "# decode roofline: %.3f GB of weights + %.3f GB of KV cache per step at %.0f GB/s copy "
                            + "bandwidth = %.1f tokens/s; measured %.1f tokens/s = %.1f%% of the roofline%n",
                    weightBytes / 1e9, kvBytes / 1e9, ceilings.copyBytesPerSecond() / 1e9, rooflineTokensPerSecond,
                    tokensPerSecond, 100 * tokensPerSecond / rooflineTokensPerSecond);
            Map<String, Object> h = new LinkedHashMap<>(header.toMap());
            h.put("decode_weight_bytes_per_step", weightBytes);
            h.put("decode_kv_bytes_per_step", kvBytes);
            h.put("roofline_decode_tok_s", rooflineTokensPerSecond);
            h.put("roofline_ratio", tokensPerSecond / rooflineTokensPerSecond);
            h.put("timing", timing);
            h.put("overlap", !noOverlap);
            MonitorOptions.writeResults(out, files.csv(), files.json(), h, table, gpu, timedTokens,
                    ResultTable.of("iters", "output_tokens").add(iters, timedTokens));
        }
        return 0;
    }

    private void validate() {
        EmberException.require(promptLen >= 1, "--prompt-len must be at least 1");
        EmberException.require(genLen >= 2, "--gen-len must be at least 2 (the first token comes with the prefill; decode makes the rest)");
        EmberException.require(chunkLen >= 1, "--chunk-len must be at least 1");
        EmberException.require(decodeBatch >= 1, "--decode-batch must be at least 1");
        EmberException.require(iters >= 1, "--iters must be at least 1");
        EmberException.require(warmup >= 0, "--warmup must be at least 0");
    }

    /** Room for every sequence of the batch at its full length, within the model's context. */
    private KvCacheSpec kvCache(ModelConfig config, long weightBytes, int kvElementBytes) {
        int total = promptLen + genLen;
        EmberException.require(total <= config.maxPositions(), "--prompt-len + --gen-len = " + total + " exceeds the model's context of "
                + config.maxPositions() + " tokens");
        int blockSize = KvCacheSpec.DEFAULT_BLOCK_SIZE;
        int blocksPerSequence = (total + blockSize - 1) / blockSize;
        return KvCacheSpec.forTokens(config, decodeBatch * blocksPerSequence * blockSize, blockSize);
    }

    /** Bytes of KV cache a decode step reads, averaged over the run's decode steps (contexts prompt+1 .. prompt+gen-1). */
    private double averageKvBytesPerStep(ModelConfig c, int elementBytes) {
        double averageContext = promptLen + genLen / 2.0;
        return decodeBatch * averageContext * 2.0 * c.numLayers() * c.kvDim() * elementBytes;
    }

    /**
     * Prefills every prompt in steps of at most chunk-len tokens, each ending with its tokens on the host, then decodes:
     * step N+1 submitted before step N is awaited, its tokens carried on the device (unless --no-overlap). The run's
     * figures are the times between its {@link Point}s on {@code marks}.
     */
    Run runOnce(ModelRunner runner, SplittableRandom random, StepSpans spans, WorkMarks marks) {
        int vocab = runner.config().vocabSize();
        int blockSize = runner.kvSpec().blockSize();
        BlockTable[] tables = new BlockTable[decodeBatch];
        Sampler[] samplers = new Sampler[decodeBatch];
        int[][] prompts = new int[decodeBatch][];
        SamplingParams greedy = SamplingParams.greedy(genLen).withIgnoreEos(true);
        try {
            for (int i = 0; i < decodeBatch; i++) {
                tables[i] = new BlockTable(blockSize);
                tables[i].reserveOrFail(promptLen + genLen, runner.blockAllocator());
                samplers[i] = new Sampler(greedy, vocab);
                prompts[i] = random.ints(promptLen, 0, vocab).toArray();
            }
            int[] next = new int[decodeBatch];
            int[] tokens = new int[decodeBatch];
            marks.mark(Point.START.ordinal());
            boolean firstToken = false;
            int sequence = 0, position = 0;
            while (sequence < decodeBatch) {
                List<ForwardBatch.Chunk> chunks = new ArrayList<>();
                List<Integer> owners = new ArrayList<>();
                List<Sampler> stepSamplers = new ArrayList<>();
                int stepTokens = 0;
                for (int budget = chunkLen; budget > 0 && sequence < decodeBatch; ) {
                    int n = Math.min(budget, promptLen - position);
                    chunks.add(new ForwardBatch.Chunk(Arrays.copyOfRange(prompts[sequence], position, position + n),
                            position, tables[sequence]));
                    owners.add(sequence);
                    stepSamplers.add(position + n == promptLen ? samplers[sequence] : null);
                    budget -= n;
                    position += n;
                    stepTokens += n;
                    if (position == promptLen) {
                        sequence++;
                        position = 0;
                    }
                }
                long span = spans.begin("prefill_step");
                runner.forwardAndSample(new ForwardBatch(chunks), stepSamplers.toArray(Sampler[]::new), tokens);
                spans.end("prefill_step", span, "tokens", stepTokens);
                for (int i = 0; i < chunks.size(); i++) {
                    if (stepSamplers.get(i) != null) {
                        next[owners.get(i)] = tokens[i];
                        if (!firstToken) {
                            marks.mark(Point.FIRST_TOKEN.ordinal());
                            firstToken = true;
                        }
                    }
                }
            }
            marks.mark(Point.PREFILLED.ordinal());
            ForwardBatch.Chunk[] decode = new ForwardBatch.Chunk[decodeBatch];
            SubmittedStep inFlight = null;
            for (int step = 0; step < genLen - 1; step++) {
                boolean carried = inFlight != null;
                for (int i = 0; i < decodeBatch; i++) {
                    decode[i] = carried ? ForwardBatch.Chunk.carried(i, promptLen + step, tables[i])
                            : new ForwardBatch.Chunk(new int[] {next[i]}, promptLen + step, tables[i]);
                }
                long span = spans.begin("decode_step");
                SubmittedStep submitted = runner.submit(ForwardBatch.of(decode), samplers);
                if (carried) {
                    inFlight.await(next);
                }
                inFlight = submitted;
                if (noOverlap) {
                    inFlight.await(next);
                    inFlight = null;
                }
                spans.end("decode_step", span, "position", promptLen + step);
            }
            if (inFlight != null) {
                inFlight.await(next);
            }
            marks.mark(Point.END.ordinal());
            return new Run(between(marks, Point.START, Point.FIRST_TOKEN), between(marks, Point.START, Point.PREFILLED),
                    between(marks, Point.PREFILLED, Point.END));
        } finally {
            for (BlockTable t : tables) {
                if (t != null) {
                    t.release(runner.blockAllocator());
                }
            }
        }
    }

    private static double between(WorkMarks marks, Point from, Point to) {
        return marks.millisBetween(from.ordinal(), to.ordinal());
    }

    /** Issue 4's batch-1 workload, shortened to fit the model; a few tokens when quick. */
    @Override
    public List<String> reportArguments(Suite suite) {
        if (suite.quick()) {
            return List.of("--prompt-len", "32", "--gen-len", "8", "--iters", "1", "--warmup", "1");
        }
        int prompt = Math.min(128, suite.contextLength() / 4);
        int gen = Math.min(256, suite.contextLength() / 2);
        return List.of("--prompt-len", String.valueOf(prompt), "--gen-len", String.valueOf(gen), "--iters", "3", "--warmup", "1");
    }
}
