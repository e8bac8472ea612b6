package dev.ember.report;

import dev.ember.EmberException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code ember plot FILE...}: PNG and SVG charts of result files, one series per file. */
@Command(name = "plot", mixinStandardHelpOptions = true,
        description = {"Draw PNG and SVG charts of result files (CSV or JSON): latency against prompt length, throughput "
                + "against batch size, stage breakdown as stacked bars, energy per output token, speculative speed-up against gamma, "
                + "bench infer's decode tokens/s against batch size per weight mode beside its streaming bound.",
                "A result of one point (one workload: bench e2e, offline, serve) becomes bars of its throughput and latency, "
                        + "with their values."})
public final class PlotCommand implements Callable<Integer> {

    @Parameters(arity = "1..*", paramLabel = "FILE", description = "result files; several are drawn as series of one chart")
    List<Path> files;

    @Option(names = "--kind", defaultValue = "auto",
            description = "auto (from the first file's columns), latency, throughput, stages, energy, bars, speedup or modes; default: ${DEFAULT-VALUE}")
    String kind;

    @Option(names = "--out-dir", paramLabel = "DIR", description = "where the charts go; default: beside the first file")
    Path outDir;

    @Option(names = "--out-prefix", paramLabel = "NAME", description = "chart file name prefix; default: the first file's name")
    String prefix;

    @Override
    public Integer call() {
        List<ResultFile> results = files.stream().map(ResultFile::read).toList();
        ResultFile first = results.getFirst();
        Charts.Kind chosen = chosenKind(first);
        Path dir = outDir != null ? outDir : first.path().toAbsolutePath().getParent();
        for (Path png : Charts.draw(chosen, results, dir, prefix != null ? prefix : first.label())) {
            String name = png.getFileName().toString();
            System.out.println("[plot] wrote " + png + " and " + png.resolveSibling(name.substring(0, name.length() - 4) + ".svg"));
        }
        return 0;
    }

    private Charts.Kind chosenKind(ResultFile first) {
        if (!kind.equalsIgnoreCase("auto")) {
            try {
                return Charts.Kind.valueOf(kind.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new EmberException("unknown chart kind \"" + kind + "\" (auto, latency, throughput, stages, energy, bars, speedup or modes)");
            }
        }
        Charts.Kind detected = Charts.Kind.detect(first);
        if (detected == null) {
            List<String> numeric = first.columns().stream().filter(first::isNumeric).toList();
            throw new EmberException("no chart fits the columns of " + first.path() + " (its numeric columns: "
                    + (numeric.isEmpty() ? "none" : String.join(", ", numeric)) + "); each kind needs: " + Charts.Kind.NEEDS);
        }
        return detected;
    }
}
