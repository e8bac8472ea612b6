package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.backend.Backends;
import dev.ember.backend.DeviceLink;
import dev.ember.cli.ConsoleProgress;
import dev.ember.cli.Stats;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code ember bench p2p}: seed 000's {@code ember_p2p_bandwidth}. Copies of each size between two GPUs, device to
 * device ({@code p2p}) and through pinned host memory ({@code staged}, the road where the GPUs have no peer access),
 * each way; a row per size, direction and method with the seed's columns. Each figure is the median over
 * {@code --iters} batches of back-to-back copies (after {@code --warmup} batches), per copy.
 */
@Command(name = "p2p", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"GPU-to-GPU copy time and bandwidth, peer to peer and staged through the host (seed 000's p2p_bandwidth).",
                "--gpus 0,0 measures copies within one GPU."})
public final class P2pBenchCommand implements Callable<Integer> {
    static final List<String> COLUMNS = List.of("data_size_bytes", "transfer_time_us", "bandwidth_gbps", "direction", "method");
    /** Copies queued back to back in one timed batch. */
    private static final int COPIES_PER_BATCH = 10;

    @Option(names = "--gpus", defaultValue = "0,1", paramLabel = "A,B", description = "the two GPUs; default: ${DEFAULT-VALUE}")
    String gpus;

    @Option(names = "--sizes", defaultValue = "1k,10k,100k,1m,10m,100m", paramLabel = "LIST",
            description = "copy sizes, with k, m or g for 2^10, 2^20, 2^30 bytes; default: ${DEFAULT-VALUE}")
    String sizes;

    @Option(names = "--iters", defaultValue = "20", description = "timed batches a figure is the median of; default: ${DEFAULT-VALUE}")
    int iters;

    @Option(names = "--warmup", defaultValue = "3", description = "untimed batches first; default: ${DEFAULT-VALUE}")
    int warmup;

    @Option(names = "--method", defaultValue = "both", paramLabel = "both|p2p|staged", description = "default: ${DEFAULT-VALUE}")
    String method;

    @Option(names = "--direction", defaultValue = "both", paramLabel = "both|a2b|b2a", description = "default: ${DEFAULT-VALUE}")
    String direction;

    @Option(names = "--hidden-sizes", split = ",", paramLabel = "LIST",
            description = "also print the bytes one token's fp16 activations take at these hidden sizes (hidden x 2)")
    List<Integer> hiddenSizes = List.of();

    @Mixin
    ResultFileOptions files = new ResultFileOptions();

    @Override
    public Integer call() {
        EmberException.require(iters >= 1 && warmup >= 0, "--iters must be at least 1, --warmup at least 0");
        int[] pair = parseGpus(gpus);
        List<Long> bytes = parseSizes(sizes);
        List<DeviceLink.Method> methods = methods(method);
        List<Boolean> forward = directions(direction);
        PrintStream out = System.out;
        ConsoleProgress progress = new ConsoleProgress(System.err);
        String why = Backends.whyNotGpu();
        EmberException.require(why == null, "bench p2p measures copies between GPUs, and there is no usable one here: " + why);
        try (Backend backend = Backends.open(Backends.Choice.CUDA, 1);
             DeviceLink link = backend.link(pair[0], pair[1], bytes.stream().mapToLong(Long::longValue).max().orElseThrow())) {
            Map<String, Object> header = new LinkedHashMap<>();
            header.put("benchmark", "bench p2p");
            header.put("device", link.describe());
            header.put("ember_version", BenchHeader.currentVersion());
            header.put("date", Instant.now().toString());
            header.put("workload", COPIES_PER_BATCH + " copies a batch, median over " + iters + " batches after " + warmup);
            out.printf("# ember bench p2p, %s: %s; %s%n", header.get("ember_version"), link.describe(), header.get("workload"));
            ResultTable table = measure(link, bytes, methods, forward, progress);
            table.print(out);
            for (int hidden : hiddenSizes) {
                out.printf(Locale.ROOT, "# hidden %d: %d bytes of fp16 activations per token%n", hidden, 2L * hidden);
            }
            table.writeFiles(files.csv(), files.json(), header);
        }
        return 0;
    }

    /** A row per size, direction and method, in that order of loops. */
    ResultTable measure(DeviceLink link, List<Long> bytes, List<DeviceLink.Method> methods, List<Boolean> forward,
                        ConsoleProgress progress) {
        ResultTable table = new ResultTable(COLUMNS);
        int total = bytes.size() * methods.size() * forward.size(), done = 0;
        for (long size : bytes) {
            for (boolean aToB : forward) {
                for (DeviceLink.Method m : methods) {
                    progress.update("bench p2p", done++, total);
                    for (int w = 0; w < warmup; w++) {
                        link.copyMicros(size, m, aToB, COPIES_PER_BATCH);
                    }
                    double[] micros = new double[iters];
                    for (int i = 0; i < iters; i++) {
                        micros[i] = link.copyMicros(size, m, aToB, COPIES_PER_BATCH);
                    }
                    double median = Stats.of(micros).median();
                    table.add(size, median, size / median / 1e3, aToB ? "a2b" : "b2a", m.label());
                }
            }
        }
        progress.update("bench p2p", total, total);
        return table;
    }

    static int[] parseGpus(String given) {
        String[] parts = given.split(",");
        try {
            EmberException.require(parts.length == 2, "--gpus takes two GPU ids, A,B, not " + given);
            return new int[] {Integer.parseInt(parts[0].strip()), Integer.parseInt(parts[1].strip())};
        } catch (NumberFormatException e) {
            throw new EmberException("--gpus takes two GPU ids, A,B, not " + given);
        }
    }

    /** "1k,10m,2g" as bytes: k, m and g are 2^10, 2^20 and 2^30; a size is at least one byte. */
    static List<Long> parseSizes(String given) {
        List<Long> out = new ArrayList<>();
        for (String part : given.split(",")) {
            String s = part.strip().toLowerCase(Locale.ROOT);
            EmberException.require(!s.isEmpty(), "--sizes: an empty size in " + given);
            int shift = switch (s.charAt(s.length() - 1)) {
                case 'k' -> 10;
                case 'm' -> 20;
                case 'g' -> 30;
                default -> 0;
            };
            String digits = shift == 0 ? s : s.substring(0, s.length() - 1);
            try {
                long value = Long.parseLong(digits);
                EmberException.require(value >= 1, "--sizes: " + part.strip() + " is not a size of at least one byte");
                out.add(Math.multiplyExact(value, 1L << shift));
            } catch (NumberFormatException | ArithmeticException e) {
                throw new EmberException("--sizes: " + part.strip() + " is not a size (a number, optionally with k, m or g)");
            }
        }
        return out;
    }

    static List<DeviceLink.Method> methods(String given) {
        return switch (given) {
            case "both" -> List.of(DeviceLink.Method.P2P, DeviceLink.Method.STAGED);
            case "p2p" -> List.of(DeviceLink.Method.P2P);
            case "staged" -> List.of(DeviceLink.Method.STAGED);
            default -> throw new EmberException("--method takes both, p2p or staged, not " + given);
        };
    }

    static List<Boolean> directions(String given) {
        return switch (given) {
            case "both" -> List.of(true, false);
            case "a2b" -> List.of(true);
            case "b2a" -> List.of(false);
            default -> throw new EmberException("--direction takes both, a2b or b2a, not " + given);
        };
    }
}
