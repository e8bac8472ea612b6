package dev.ember.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.bench.BenchCommand;
import dev.ember.bench.BenchHeader;
import dev.ember.bench.MonitorOptions;
import dev.ember.bench.ReportedBenchmark;
import dev.ember.bench.ResultTable;
import dev.ember.cli.CommandRuns;
import dev.ember.cli.ModelOptions;
import dev.ember.model.ModelConfig;
import dev.ember.cli.PresetOption;
import dev.ember.monitor.NvmlDevice;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * {@code ember report --out DIR}: the standard suite in one command, as seed 000's run_report.py and 003's run_all.sh
 * do. It runs every {@code ember bench} subcommand this build has (found from {@link BenchCommand}'s subcommands, not
 * from a list), each on the chosen model and backend with the output, monitor and trace options it takes and the
 * workload it asks for as a {@link ReportedBenchmark}; then draws the charts its results call for and writes
 * {@code report.md}, which holds the hardware, every command run, each result as a table and each chart.
 */
@Command(name = "report", mixinStandardHelpOptions = true,
        description = "Run the standard benchmark suite (every `ember bench` command of this build) and write its CSVs, "
                + "charts and a Markdown report (report.md) with the hardware and every command used.")
public final class ReportCommand implements Callable<Integer> {

    @Spec
    CommandLine.Model.CommandSpec commandSpec;

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    PresetOption preset;

    @Mixin
    MonitorOptions monitorOptions;

    @Option(names = "--out", defaultValue = "reports", paramLabel = "DIR", description = "where everything goes; default: ${DEFAULT-VALUE}")
    Path out;

    @Option(names = "--trace", description = "also write each benchmark's Chrome trace (NAME_trace.json)")
    boolean trace;

    @Option(names = "--quick", description = "a smoke run with the smallest workloads (for CI and a first look); "
            + "default: on a GPU the reference workloads, on the CPU each benchmark's CPU defaults (about a minute and a half "
            + "with the default model on two cores)")
    boolean quick;

    @Option(names = "--only", split = ",", paramLabel = "NAME", description = "run only these bench commands")
    List<String> only;

    /** One benchmark's run: its command line, how it went, what it wrote and what it printed. */
    record Step(String name, List<String> arguments, int exitCode, double seconds, List<Path> files, String console) {
        String commandLine() {
            return "ember " + arguments.stream().map(ReportCommand::quote).collect(Collectors.joining(" "));
        }
    }

    @Override
    public Integer call() {
        PrintStream log = System.err;
        ModelConfig config = preset.modelConfig(modelOptions);
        try {
            Files.createDirectories(out);
        } catch (IOException e) {
            throw new EmberException("cannot create " + out + ": " + e.getMessage());
        }
        String device;
        boolean gpu;
        try (Backend backend = modelOptions.openBackend(log)) {
            device = backend.deviceName();
            gpu = backend.onGpu();
        }
        Map<String, CommandLine> benchmarks = benchmarks();
        if (benchmarks.isEmpty()) {
            throw new EmberException(only != null ? "no bench command named " + only + " in this build (it has "
                    + benchNames() + ")" : "this build has no bench commands");
        }
        List<Step> steps = new ArrayList<>();
        ReportedBenchmark.Suite suite = new ReportedBenchmark.Suite(config.maxPositions(), quick, gpu);
        long start = System.nanoTime();
        for (Map.Entry<String, CommandLine> b : benchmarks.entrySet()) {
            List<String> arguments = arguments(b.getKey(), b.getValue(), suite);
            log.printf(Locale.ROOT, "[report] %d/%d: ember %s%n", steps.size() + 1, benchmarks.size(), String.join(" ", arguments));
            Step step = run(b.getKey(), arguments);
            steps.add(step);
            log.printf(Locale.ROOT, "[report] %d/%d: bench %s %s in %.1f s (%.0f s so far)%n", steps.size(), benchmarks.size(),
                    step.name(), step.exitCode() == 0 ? "done" : "FAILED", step.seconds(), (System.nanoTime() - start) / 1e9);
        }
        String chartsUnavailable = Charts.whyUnavailable();
        Map<Path, List<Path>> charts = new LinkedHashMap<>();
        if (chartsUnavailable == null) {
            for (Step s : steps) {
                for (Path f : s.files()) {
                    chart(f).ifPresent(pngs -> charts.put(f, pngs));
                }
            }
        } else {
            log.println("[report] no charts: " + chartsUnavailable);
        }
        Path markdown = out.resolve("report.md");
        ResultTable.writeText(markdown, markdown(preset.given() ? preset.name() + " (random bf16 weights)" : modelOptions.modelDirectory().toString(), config, device, steps, charts, chartsUnavailable));
        System.out.println("[report] wrote " + markdown);
        return steps.stream().allMatch(s -> s.exitCode() == 0) ? 0 : 1;
    }

    private static Set<String> benchNames() {
        return new CommandLine(new BenchCommand()).getSubcommands().entrySet().stream()
                .filter(e -> e.getValue().getCommand() instanceof ReportedBenchmark).map(Map.Entry::getKey)
                .collect(Collectors.toCollection(TreeSet::new));
    }

    /**
     * The bench subcommands of this build that run in-process ({@link ReportedBenchmark}s: not {@code client}, which
     * drives a server someone else started), in their declared order, less those not in --only.
     */
    private Map<String, CommandLine> benchmarks() {
        Map<String, CommandLine> found = new LinkedHashMap<>();
        new CommandLine(new BenchCommand()).getSubcommands().forEach((name, cl) -> {
            if (cl.getCommand() instanceof ReportedBenchmark && (only == null || only.contains(name))) {
                found.put(name, cl);
            }
        });
        return found;
    }

    /** The model options as arguments: --preset NAME in place of --model where a preset was asked for. */
    private List<String> modelArguments() {
        List<String> args = new ArrayList<>(modelOptions.toArguments());
        if (preset.given()) {
            args.set(0, "--preset");
            args.set(1, preset.name());
        }
        return args;
    }

    /** The arguments for one benchmark: those of its options the report knows, then its own suite workload. */
    private List<String> arguments(String name, CommandLine command, ReportedBenchmark.Suite suite) {
        CommandLine.Model.CommandSpec spec = command.getCommandSpec();
        List<String> args = new ArrayList<>(List.of("bench", name));
        List<String> model = modelArguments();
        for (int i = 0; i < model.size(); i += 2) {
            if (spec.findOption(model.get(i)) != null) {
                args.add(model.get(i));
                args.add(model.get(i + 1));
            }
        }
        String stem = "bench_" + name;
        if (spec.findOption("--out-dir") != null && spec.findOption("--out-name") != null) {
            args.addAll(List.of("--out-dir", out.toString(), "--out-name", stem));
        } else {
            for (String[] option : new String[][] {{"--csv", ".csv"}, {"--output", ".csv"}, {"--json", ".json"}}) {
                if (spec.findOption(option[0]) != null) {
                    args.addAll(List.of(option[0], out.resolve(stem + option[1]).toString()));
                }
            }
        }
        if (monitorOptions.enabled() && spec.findOption("--monitor") != null) {
            args.add("--monitor");
        }
        if (trace && spec.findOption("--trace") != null) {
            args.addAll(List.of("--trace", out.resolve(stem + "_trace.json").toString()));
        }
        if (command.getCommand() instanceof ReportedBenchmark reported) {
            args.addAll(reported.reportArguments(suite));
        }
        return args;
    }

    /** Runs one benchmark in this process, its console both shown and kept. */
    private Step run(String name, List<String> arguments) {
        Set<Path> before = listing();
        PrintStream savedOut = System.out;
        PrintStream savedErr = System.err;
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        long start = System.nanoTime();
        int code;
        try {
            System.setOut(new PrintStream(new Tee(savedOut, console), true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(new Tee(savedErr, console), true, StandardCharsets.UTF_8));
            code = CommandRuns.executeFromRoot(commandSpec, arguments.toArray(String[]::new));
        } catch (RuntimeException e) {
            System.err.println("ember: error: " + e);
            code = 1;
        } finally {
            System.setOut(savedOut);
            System.setErr(savedErr);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        List<Path> files = listing().stream().filter(p -> !before.contains(p)).sorted().toList();
        return new Step(name, arguments, code, seconds, files, console.toString(StandardCharsets.UTF_8));
    }

    private Set<Path> listing() {
        try (Stream<Path> files = Files.list(out)) {
            return files.collect(Collectors.toCollection(TreeSet::new));
        } catch (IOException e) {
            throw new EmberException("cannot list " + out + ": " + e.getMessage());
        }
    }

    /** The charts a result file calls for (CSV files and {@code _gpu.json} rows), if any. */
    private java.util.Optional<List<Path>> chart(Path file) {
        String name = file.getFileName().toString();
        if (!name.endsWith(".csv") && !name.endsWith("_gpu.json")) {
            return java.util.Optional.empty();
        }
        ResultFile result = ResultFile.read(file);
        Charts.Kind kind = Charts.Kind.detect(result);
        if (kind == null || result.rows().isEmpty()) {
            return java.util.Optional.empty();
        }
        try {
            return java.util.Optional.of(Charts.draw(kind, List.of(result), out, result.label()));
        } catch (RuntimeException | LinkageError | InternalError e) {
            // Charts are optional: a runtime without fonts or AWT's native parts must not cost the suite's results.
            System.err.println("[report] no chart of " + file + ": " + e);
            return java.util.Optional.empty();
        }
    }

    private String markdown(String model, ModelConfig config, String device, List<Step> steps, Map<Path, List<Path>> charts,
                            String chartsUnavailable) {
        StringBuilder md = new StringBuilder();
        md.append("# Ember benchmark report\n\n");
        md.append("Ember ").append(BenchHeader.currentVersion()).append(", ").append(Instant.now()).append(quick ? " (quick run)" : "")
                .append(". Made by `ember report ").append(String.join(" ", reportArguments())).append("`.\n\n");
        md.append("## Hardware\n\n");
        md.append(Markdown.table(List.of("what", "value"), hardware(device, steps)));
        md.append("\n## Model\n\n");
        md.append(Markdown.table(List.of("what", "value"), List.of(
                List.of(preset.given() ? "preset" : "directory", model),
                List.of("architecture", config.architecture().toString()),
                List.of("layers", String.valueOf(config.numLayers())),
                List.of("hidden size", String.valueOf(config.hiddenSize())),
                List.of("vocabulary", String.valueOf(config.vocabSize())),
                List.of("context", String.valueOf(config.maxPositions())))));
        if (chartsUnavailable != null) {
            md.append("\nNo charts: ").append(chartsUnavailable).append(".\n");
        }
        for (Step s : steps) {
            md.append("\n## ember bench ").append(s.name()).append("\n\n");
            md.append("```sh\n").append(s.commandLine()).append("\n```\n\n");
            md.append(s.exitCode() == 0 ? "Completed" : "**Failed** (exit " + s.exitCode() + ")")
                    .append(String.format(Locale.ROOT, " in %.1f s.", s.seconds()));
            if (s.exitCode() != 0) {
                md.append(" Its last lines:\n\n```\n").append(tail(s.console(), 15)).append("\n```\n");
            }
            md.append('\n');
            for (Path f : s.files()) {
                String name = f.getFileName().toString();
                if (name.endsWith(".csv") || name.endsWith("_gpu.json")) {
                    ResultFile result = ResultFile.read(f);
                    md.append("\n### ").append(name).append("\n\n");
                    if (name.endsWith("_gpu.json")) {
                        md.append(gpuLine(f)).append("\n\n");
                    }
                    if (!result.rows().isEmpty()) {
                        md.append(Markdown.table(result));
                    }
                    for (Path png : charts.getOrDefault(f, List.of())) {
                        String chart = png.getFileName().toString();
                        md.append("\n![").append(chart).append("](").append(chart).append(")  \n[SVG](")
                                .append(chart, 0, chart.length() - 4).append(".svg)\n");
                    }
                }
            }
            List<String> others = s.files().stream().map(f -> f.getFileName().toString())
                    .filter(n -> !n.endsWith(".csv") && !n.endsWith("_gpu.json")).toList();
            if (!others.isEmpty()) {
                md.append("\nAlso written: ").append(others.stream().map(n -> "`" + n + "`").collect(Collectors.joining(", ")))
                        .append(".\n");
            }
        }
        md.append(bubbleSection(config));
        md.append("\n## Commands\n\n```sh\n");
        for (Step s : steps) {
            md.append(s.commandLine()).append('\n');
        }
        md.append("```\n");
        return md.toString();
    }

    /** Prefill chunk lengths the bubble model is worked for: seed 000's example (128) and a long chunk (512). */
    private static final int[] BUBBLE_CHUNKS = {128, 512};

    /**
     * Seed 000's bubble model ({@link PipelineBubble}) over two stages, from bench phase's per-layer prefill times and,
     * where bench p2p measured a link, its peer-to-peer bandwidth at its largest copy (one chunk's activations are its
     * tokens' hidden states in bf16); written to pipeline_bubble.csv. Empty where bench phase left no results.
     */
    private String bubbleSection(ModelConfig config) {
        Path phase = out.resolve("bench_phase.csv");
        if (!Files.isRegularFile(phase) || config.numLayers() < 2) {
            return "";
        }
        ResultFile layers = ResultFile.read(phase);
        double linkGBps = 0;
        Path p2p = out.resolve("bench_p2p.csv");
        if (Files.isRegularFile(p2p)) {
            ResultFile copies = ResultFile.read(p2p);
            double largest = 0;
            for (Map<String, String> row : copies.rows()) {
                double size = copies.value(row, "data_size_bytes");
                if ("p2p".equals(row.get("method")) && size >= largest) {
                    largest = size;
                    linkGBps = copies.value(row, "bandwidth_gbps");
                }
            }
        }
        ResultTable table = ResultTable.of("prompt_len", "stages", "split", "stage_ms", "chunk_len", "chunks", "transfer_ms",
                "overlapped_ms", "sequential_ms", "overlapped_utilisation", "sequential_utilisation");
        Map<Integer, List<Map<String, String>>> byPrompt = layers.rows().stream()
                .collect(Collectors.groupingBy(r -> (int) layers.value(r, "prompt_len"), java.util.TreeMap::new, Collectors.toList()));
        for (Map.Entry<Integer, List<Map<String, String>>> prompt : byPrompt.entrySet()) {
            double[] layerMs = prompt.getValue().stream().sorted(java.util.Comparator.comparingDouble(r -> layers.value(r, "layer_id")))
                    .mapToDouble(r -> layers.value(r, "prefill_time_ms")).toArray();
            for (int chunkLen : BUBBLE_CHUNKS) {
                int chunks = (prompt.getKey() + chunkLen - 1) / chunkLen;
                double transferMs = linkGBps > 0 ? (double) Math.min(chunkLen, prompt.getKey()) * config.hiddenSize() * 2 / (linkGBps * 1e6) : 0;
                PipelineBubble b = PipelineBubble.of(layerMs, 2, chunks, transferMs);
                table.add(prompt.getKey(), 2, Arrays.stream(b.split()).mapToObj(String::valueOf).collect(Collectors.joining("+")),
                        Arrays.stream(b.stageMs()).mapToObj(v -> String.format(Locale.ROOT, "%.3f", v)).collect(Collectors.joining("+")),
                        chunkLen, chunks, transferMs, b.overlappedMs(), b.sequentialMs(), b.overlappedUtilisation(),
                        b.sequentialUtilisation());
            }
        }
        table.writeCsv(out.resolve("pipeline_bubble.csv"));
        return "\n## Pipeline bubble model (seed 000)\n\n"
                + "What two pipeline stages would keep busy on a chunked prefill, from each layer's time measured alone by bench "
                + "phase (the layers split where the slower stage is fastest) and "
                + (linkGBps > 0 ? String.format(Locale.ROOT, "bench p2p's peer-to-peer bandwidth (%.1f GB/s at its largest copy) "
                + "for one chunk's activations (its tokens' hidden states in bf16)", linkGBps)
                : "no link time (bench p2p measured none here)")
                + ". Overlapped, chunks follow one another through the stages; sequential, each crosses both before the next. "
                + "A pipeline run to compare with is bench stage's with --pipeline-parallel-size (threads on the CPU; two GPUs "
                + "on a multi-GPU host). Written to `pipeline_bubble.csv`.\n\n"
                + Markdown.table(ResultFile.read(out.resolve("pipeline_bubble.csv")));
    }

    private List<String> reportArguments() {
        List<String> args = new ArrayList<>(modelArguments());
        args.addAll(List.of("--out", out.toString()));
        if (monitorOptions.enabled()) {
            args.add("--monitor");
        }
        if (trace) {
            args.add("--trace");
        }
        if (quick) {
            args.add("--quick");
        }
        if (only != null) {
            args.addAll(List.of("--only", String.join(",", only)));
        }
        return args;
    }

    private List<List<String>> hardware(String device, List<Step> steps) {
        List<List<String>> rows = new ArrayList<>();
        rows.add(List.of("backend device", device));
        rows.add(List.of("CPU", procField("/proc/cpuinfo", "model name").orElse(System.getProperty("os.arch"))
                + ", " + Runtime.getRuntime().availableProcessors() + " cores"));
        procField("/proc/meminfo", "MemTotal").ifPresent(m -> rows.add(List.of("memory", m)));
        rows.add(List.of("OS", System.getProperty("os.name") + " " + System.getProperty("os.version")));
        rows.add(List.of("Java", System.getProperty("java.vm.name") + " " + Runtime.version()));
        try (NvmlDevice gpu = NvmlDevice.open(0)) {
            rows.add(List.of("GPU (NVML)", gpu.name() + ", " + String.format(Locale.ROOT, "%.1f GiB",
                    gpu.memoryTotalBytes() / (double) (1L << 30)) + ", driver " + gpu.driverVersion()));
        } catch (EmberException e) {
            rows.add(List.of("GPU (NVML)", e.getMessage()));
        }
        // The ceilings the benchmarks measured at their start, from the first results JSON that has them.
        for (Step s : steps) {
            for (Path f : s.files()) {
                JsonNode header = jsonHeader(f);
                if (header != null && header.hasNonNull("copy_bandwidth_gbps")) {
                    rows.add(List.of("measured copy bandwidth", String.format(Locale.ROOT, "%.1f GB/s (ember bench %s)",
                            header.get("copy_bandwidth_gbps").asDouble(), s.name())));
                    if (header.hasNonNull("matmul_tflops")) {
                        rows.add(List.of("measured matmul rate", String.format(Locale.ROOT, "%.3f TFLOP/s (ember bench %s)",
                                header.get("matmul_tflops").asDouble(), s.name())));
                    }
                    return rows;
                }
            }
        }
        return rows;
    }

    private static JsonNode jsonHeader(Path file) {
        if (!file.getFileName().toString().endsWith(".json")) {
            return null;
        }
        try {
            return new ObjectMapper().readTree(file.toFile()).get("header");
        } catch (IOException e) {
            return null;
        }
    }

    private static String gpuLine(Path gpuJson) {
        try {
            JsonNode gpu = new ObjectMapper().readTree(gpuJson.toFile()).get("gpu");
            if (gpu == null || !gpu.path("available").asBoolean()) {
                return "GPU monitor: " + (gpu == null ? "no data" : gpu.path("reason").asText());
            }
            JsonNode s = gpu.get("summary");
            return String.format(Locale.ROOT, "GPU monitor on %s: power mean %.1f W, peak %.1f W; energy %.1f J (%s); "
                            + "energy per output token %s J; GPU utilisation %.0f%%; peak temperature %.0f C.",
                    gpu.path("device").asText(), s.path("power_mean_w").asDouble(Double.NaN),
                    s.path("power_peak_w").asDouble(Double.NaN), s.path("energy_j").asDouble(Double.NaN),
                    s.path("energy_source").asText(), s.path("energy_per_output_token_j").asText("—"),
                    s.path("gpu_util_mean_pct").asDouble(Double.NaN), s.path("temperature_peak_c").asDouble(Double.NaN));
        } catch (IOException e) {
            return "GPU monitor: cannot read " + gpuJson + ": " + e.getMessage();
        }
    }

    private static java.util.Optional<String> procField(String file, String field) {
        try (Stream<String> lines = Files.lines(Path.of(file))) {
            return lines.filter(l -> l.startsWith(field)).findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim());
        } catch (IOException | java.io.UncheckedIOException e) {
            return java.util.Optional.empty();
        }
    }

    private static String tail(String text, int lines) {
        List<String> all = text.lines().toList();
        return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    }

    static String quote(String arg) {
        return arg.matches("[A-Za-z0-9_./=,:+-]+") ? arg : "'" + arg.replace("'", "'\\''") + "'";
    }

    /** Copies what a benchmark prints to the console and to the report's record of it. */
    private static final class Tee extends OutputStream {
        private final OutputStream first;
        private final OutputStream second;

        Tee(OutputStream first, OutputStream second) {
            this.first = first;
            this.second = second;
        }

        @Override
        public void write(int b) throws IOException {
            first.write(b);
            second.write(b);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            first.write(b, off, len);
            second.write(b, off, len);
        }

        @Override
        public void flush() throws IOException {
            first.flush();
            second.flush();
        }
    }
}
