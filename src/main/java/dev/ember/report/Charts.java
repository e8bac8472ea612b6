package dev.ember.report;

import dev.ember.EmberException;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.VectorGraphicsEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.internal.chartpart.Chart;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Charts of result files, drawn with XChart and written as PNG and SVG. The kind of chart follows from the file's
 * columns ({@link Kind#detect}) or is chosen. Several files make several series of one chart (a baseline and a
 * change, say), each named after its file.
 */
public final class Charts {
    static final int WIDTH = 900;
    static final int HEIGHT = 540;
    /** The stage columns of the seeds' stage breakdown, in their order. */
    static final List<String> STAGE_COLUMNS = List.of("embedding_ms", "rmsnorm_ms", "attention_ms", "ffn_ms", "p2p_ms",
            "memcpy_h2d_ms", "memcpy_d2h_ms", "sampling_ms", "lm_head_ms");
    /** {@code ember bench infer}'s weight mode, decode rate and streaming bound, as its JSON names them. */
    static final String MODE = "mode";
    static final String DECODE_RATE = "throughput_tok_s";
    static final String STREAMING_BOUND = "streaming.bound_tok_s";

    /** What a chart shows. */
    public enum Kind {
        /** Latency columns against prompt length. */
        LATENCY,
        /** Throughput columns against batch size. */
        THROUGHPUT,
        /** Each phase's stage times as stacked bars. */
        STAGES,
        /** Energy per output token against the rows' key (prompt length or batch size). */
        ENERGY,
        /**
         * A result of one point (one run, or runs of one workload, averaged): its throughput and its latency columns
         * as bars with their values, one bar per file.
         */
        BARS,
        /** Speculative decoding's speed-up, measured and predicted, against gamma, the tokens drafted per step. */
        SPEEDUP,
        /**
         * {@code ember bench infer} runs, one per file: decode tokens/s against batch size, one series per weight mode,
         * each beside its streaming bound.
         */
        MODES;

        /** The chart a file's columns call for, or null when none fits. */
        public static Kind detect(ResultFile f) {
            if (f.has(MODE) && f.has(STREAMING_BOUND) && f.isNumeric(DECODE_RATE) && f.isNumeric("batch_size")) {
                return MODES;
            }
            if (f.has("phase") && STAGE_COLUMNS.stream().anyMatch(f::has)) {
                return STAGES;
            }
            if (f.has("gamma") && !speedupColumns(f).isEmpty()) {
                return SPEEDUP;
            }
            if (f.has("energy_per_output_token_j") && f.isNumeric("energy_per_output_token_j")) {
                return ENERGY;
            }
            if (f.has("batch_size") && !throughputColumns(f).isEmpty() && distinct(f, "batch_size") > 1) {
                return THROUGHPUT;
            }
            if (f.has("prompt_len") && !latencyColumns(f).isEmpty() && distinct(f, "prompt_len") > 1) {
                return LATENCY;
            }
            if (!throughputColumns(f).isEmpty() || !latencyColumns(f).isEmpty()) {
                return BARS;
            }
            return null;
        }

        /** What each kind needs, for the message when a file fits none. */
        static final String NEEDS = "latency: prompt_len varying and *latency*, ttft_ms, prefill_ms, *_time_ms or wall_ms; "
                + "throughput: batch_size varying and *tok_s or *tokens_per_s; stages: phase and stage columns (embedding_ms "
                + "... lm_head_ms); energy: energy_per_output_token_j; modes: bench infer's JSON (mode, batch_size, throughput_tok_s, "
                + "streaming.bound_tok_s); bars: any throughput or latency column";

        String slug() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    private Charts() {
    }

    /** Null when charts can be drawn in this Java runtime, else why not. */
    public static String whyUnavailable() {
        if (ModuleLayer.boot().findModule("java.desktop").isEmpty()) {
            return "charts need the java.desktop module, which this Java runtime lacks (jlink it in with --add-modules java.desktop)";
        }
        return FontProbe.RESULT;
    }

    /** Whether text can be measured: a host without fonts (or fontconfig) fails inside AWT, once per process. */
    private static final class FontProbe {
        static final String RESULT = probe();

        private static String probe() {
            System.setProperty("java.awt.headless", "true");
            try {
                new java.awt.Font(java.awt.Font.SANS_SERIF, java.awt.Font.PLAIN, 12)
                        .getLineMetrics("Ember", new java.awt.font.FontRenderContext(null, true, true));
                return null;
            } catch (RuntimeException | Error e) {
                return "no fonts on this host (" + e.getMessage() + "); draw the charts elsewhere with `ember plot` on the result files";
            }
        }
    }

    /** The latency columns; a mean is left out where the median beside it is drawn. */
    static List<String> latencyColumns(ResultFile f) {
        List<String> metrics = f.metrics();
        return metrics.stream().filter(c -> c.contains("latency") || c.equals("ttft_ms") || c.equals("prefill_ms")
                        || c.endsWith("_time_ms") || c.equals("wall_ms"))
                .filter(c -> !(c.endsWith("_mean") && metrics.contains(c.substring(0, c.length() - "_mean".length()) + "_p50")))
                .toList();
    }

    static List<String> throughputColumns(ResultFile f) {
        return f.metrics().stream().filter(c -> c.endsWith("tok_s") || c.endsWith("tokens_per_s") || c.endsWith("tok_per_s"))
                .toList();
    }

    /** The speed-up columns, measured and predicted ({@code ember bench spec}). */
    static List<String> speedupColumns(ResultFile f) {
        return f.columns().stream().filter(c -> c.startsWith("speedup") || c.startsWith("predicted_speedup")).toList();
    }

    private static long distinct(ResultFile f, String column) {
        return f.rows().stream().map(r -> r.getOrDefault(column, "")).distinct().count();
    }

    /**
     * Draws {@code files} as one chart of {@code kind} (or, for stages, one per phase) into {@code dir}, each as
     * {@code <prefix>_<kind>[_<phase>].png} and {@code .svg}; returns the PNG files.
     */
    public static List<Path> draw(Kind kind, List<ResultFile> files, Path dir, String prefix) {
        String why = whyUnavailable();
        if (why != null) {
            throw new EmberException(why);
        }
        System.setProperty("java.awt.headless", "true");
        List<Path> written = new ArrayList<>();
        if ((kind == Kind.LATENCY && onePoint(files, "prompt_len")) || (kind == Kind.THROUGHPUT && onePoint(files, "batch_size"))) {
            kind = Kind.BARS;  // one x value: a line would be a single dot
        }
        switch (kind) {
            case LATENCY -> written.add(save(xy(files, "prompt_len", Charts::latencyColumns, "Latency against prompt length",
                    "prompt length (tokens)", "ms"), dir, prefix + "_" + kind.slug()));
            case THROUGHPUT -> written.add(save(xy(files, "batch_size", Charts::throughputColumns,
                    "Throughput against batch size", "batch size", "tokens/s"), dir, prefix + "_" + kind.slug()));
            case ENERGY -> {
                ResultFile first = files.getFirst();
                String x = first.has("prompt_len") ? "prompt_len" : first.has("batch_size") ? "batch_size"
                        : first.keys().stream().filter(first::isNumeric).findFirst().orElseThrow(() ->
                        new EmberException(first.path() + " has no numeric key column to plot energy per token against"));
                written.add(save(xy(files, x, f -> List.of("energy_per_output_token_j"), "Energy per output token",
                        x.replace('_', ' '), "J per token"), dir, prefix + "_" + kind.slug()));
            }
            case SPEEDUP -> written.add(save(speedup(files), dir, prefix + "_" + kind.slug()));
            case MODES -> written.add(save(modes(files), dir, prefix + "_" + kind.slug()));
            case STAGES -> {
                List<String> phases = phases(files);
                if (phases.isEmpty()) {
                    throw new EmberException("no stage breakdown to draw: no rows with a phase in "
                            + files.stream().map(ResultFile::path).toList());
                }
                for (String phase : phases) {
                    written.add(save(stages(files, phase), dir, prefix + "_" + kind.slug() + "_" + phase));
                }
            }
            case BARS -> {
                if (files.stream().anyMatch(f -> !throughputColumns(f).isEmpty())) {
                    written.add(save(bars(files, Charts::throughputColumns, "Throughput", "tokens/s"), dir,
                            prefix + "_" + kind.slug() + "_throughput"));
                }
                if (files.stream().anyMatch(f -> !latencyColumns(f).isEmpty())) {
                    written.add(save(bars(files, Charts::latencyColumns, "Latency", "ms"), dir, prefix + "_" + kind.slug() + "_latency"));
                }
                if (written.isEmpty()) {
                    throw new EmberException("nothing to draw as bars: no throughput or latency columns in "
                            + files.stream().map(ResultFile::path).toList());
                }
            }
        }
        return written;
    }

    /** Whether {@code x} takes at most one value across all the files' rows (or is missing): one point per series. */
    private static boolean onePoint(List<ResultFile> files, String x) {
        return files.stream().flatMap(f -> f.rows().stream().map(r -> f.value(r, x))).filter(v -> !Double.isNaN(v))
                .distinct().count() <= 1;
    }

    /**
     * Bars of each chosen column (categories), one series per file, each bar the mean over the file's rows and
     * labelled with its value.
     */
    private static CategoryChart bars(List<ResultFile> files, Columns columns, String title, String yTitle) {
        CategoryChart chart = new CategoryChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle("")
                .yAxisTitle(yTitle).build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        chart.getStyler().setLegendVisible(files.size() > 1);
        chart.getStyler().setLabelsVisible(true);
        chart.getStyler().setYAxisMin(0.0);
        List<String> categories = files.stream().flatMap(f -> columns.of(f).stream()).distinct().toList();
        double highest = 0;
        for (ResultFile f : files) {
            List<Double> values = new ArrayList<>();
            for (String column : categories) {
                double mean = f.has(column) ? f.rows().stream().mapToDouble(r -> f.value(r, column)).filter(v -> !Double.isNaN(v))
                        .average().orElse(0) : 0;
                values.add(mean);
                highest = Math.max(highest, mean);
            }
            chart.addSeries(f.label(), categories, values);
        }
        // A round top above the tallest bar, so that the axis has ticks between 0 and it, not just the bar's own value.
        chart.getStyler().setYAxisMax(roundAbove(highest));
        return chart;
    }

    /** The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten) at least 5% above {@code value}; 1 for nothing. */
    static double roundAbove(double value) {
        if (!(value > 0)) {
            return 1;
        }
        double target = value * 1.05;
        double power = Math.pow(10, Math.floor(Math.log10(target)));
        for (double step : new double[] {1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10}) {
            if (step * power >= target) {
                return step * power;
            }
        }
        return 10 * power;
    }

    private interface Columns {
        List<String> of(ResultFile f);
    }

    /** Lines of each chosen column against {@code x}; rows with one x are summed over layers, else averaged. */
    private static XYChart xy(List<ResultFile> files, String x, Columns columns, String title, String xTitle,
                              String yTitle) {
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle(xTitle).yAxisTitle(yTitle).build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        chart.getStyler().setMarkerSize(7);
        chart.getStyler().setYAxisMin(0.0);  // times, rates and energies: a zero baseline keeps small differences small
        for (ResultFile f : files) {
            if (!f.has(x)) {
                throw new EmberException(f.path() + " has no column " + x);
            }
            for (String column : columns.of(f)) {
                TreeMap<Double, double[]> points = new TreeMap<>();
                for (Map<String, String> row : f.rows()) {
                    add(points, f.value(row, x), f.value(row, column));
                }
                if (points.isEmpty()) {
                    continue;
                }
                boolean perLayer = f.has("layer_id");
                double[] xs = points.keySet().stream().mapToDouble(Double::doubleValue).toArray();
                double[] ys = points.values().stream().mapToDouble(p -> perLayer ? p[0] : p[0] / p[1]).toArray();
                String name = files.size() > 1 ? f.label() + ": " + column : column;
                chart.addSeries(name, xs, ys);
            }
        }
        if (chart.getSeriesCollection().isEmpty()) {
            throw new EmberException("nothing to plot: no measured values in " + files.stream().map(ResultFile::path).toList());
        }
        return chart;
    }

    /** Speed-up, measured and predicted, against gamma, with the target alone (1x) as a line to beat. */
    private static XYChart speedup(List<ResultFile> files) {
        XYChart chart = xy(files, "gamma", Charts::speedupColumns, "Speculative decoding: speed-up against gamma",
                "gamma (tokens drafted per step)", "speed-up over the target alone (x)");
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        double[] gammas = files.stream().flatMap(f -> f.rows().stream().map(r -> f.value(r, "gamma")))
                .filter(g -> !Double.isNaN(g)).mapToDouble(Double::doubleValue).sorted().toArray();
        chart.addSeries("the target alone (1x)", new double[] {gammas[0], gammas[gammas.length - 1]}, new double[] {1, 1})
                .setMarker(SeriesMarkers.NONE);
        return chart;
    }

    /**
     * Decode tokens/s against batch size, a line per weight mode in the order the modes first come, and each mode's
     * streaming bound as a dashed line of its colour where it has one ({@code full} streams nothing: a bound of 0).
     * Both axes are logarithmic: batch sizes double from 1 to 64, and a mode streamed from the disk decodes hundreds of
     * times slower than one held on the device, so a linear axis would flatten every line but the fastest.
     */
    static XYChart modes(List<ResultFile> files) {
        Map<String, TreeMap<Double, double[]>> rates = new LinkedHashMap<>();
        Map<String, TreeMap<Double, double[]>> bounds = new LinkedHashMap<>();
        for (ResultFile f : files) {
            for (String column : List.of(MODE, "batch_size", DECODE_RATE)) {
                if (!f.has(column)) {
                    throw new EmberException(f.path() + " is no bench infer result: it has no " + column);
                }
            }
            for (Map<String, String> row : f.rows()) {
                String mode = row.get(MODE);
                double batch = f.value(row, "batch_size");
                add(rates.computeIfAbsent(mode, m -> new TreeMap<>()), batch, positive(f.value(row, DECODE_RATE)));
                add(bounds.computeIfAbsent(mode, m -> new TreeMap<>()), batch, positive(f.value(row, STREAMING_BOUND)));
            }
        }
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title("Decode tokens/s against batch size, per weight mode")
                .xAxisTitle("batch size").yAxisTitle("decode tokens/s").build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        chart.getStyler().setMarkerSize(7);
        chart.getStyler().setXAxisLogarithmic(true);
        chart.getStyler().setXAxisLogarithmicDecadeOnly(false);
        chart.getStyler().setYAxisLogarithmic(true);
        Color[] palette = chart.getStyler().getSeriesColors();
        int index = 0;
        for (String mode : rates.keySet()) {
            Color colour = palette[index++ % palette.length];
            XYSeries measured = addLine(chart, mode, rates.get(mode));
            if (measured != null) {
                measured.setLineColor(colour);
                measured.setMarkerColor(colour);
            }
            XYSeries bound = addLine(chart, mode + ": streaming bound", bounds.get(mode));
            if (bound != null) {
                bound.setLineColor(colour);
                bound.setMarkerColor(colour);
                bound.setLineStyle(SeriesLines.DASH_DASH);
                bound.setMarker(SeriesMarkers.PLUS);  // a mode run at one batch size has a bound of one point, no line
            }
        }
        if (chart.getSeriesCollection().isEmpty()) {
            throw new EmberException("nothing to plot: no decode rates in " + files.stream().map(ResultFile::path).toList());
        }
        return chart;
    }

    /**
     * The value, or NaN (no point) for zero or less: a logarithmic axis has no place for it, and a bound of 0 is a
     * mode that streams nothing.
     */
    private static double positive(double value) {
        return value > 0 ? value : Double.NaN;
    }

    /** Adds {@code y} at {@code x} to the sum and count there; a point missing either is left out. */
    private static void add(TreeMap<Double, double[]> points, double x, double y) {
        if (Double.isNaN(x) || Double.isNaN(y)) {
            return;
        }
        double[] sumCount = points.computeIfAbsent(x, k -> new double[2]);
        sumCount[0] += y;
        sumCount[1]++;
    }

    /** The points' means as a series; null (and nothing added) when there are none. */
    private static XYSeries addLine(XYChart chart, String name, TreeMap<Double, double[]> points) {
        if (points.isEmpty()) {
            return null;
        }
        double[] xs = points.keySet().stream().mapToDouble(Double::doubleValue).toArray();
        double[] ys = points.values().stream().mapToDouble(p -> p[0] / p[1]).toArray();
        return chart.addSeries(name, xs, ys);
    }

    private static List<String> phases(List<ResultFile> files) {
        return files.stream().flatMap(f -> f.rows().stream().map(r -> r.getOrDefault("phase", ""))).distinct()
                .filter(p -> !p.isEmpty()).toList();
    }

    /** Stacked bars of the stage times of {@code phase}: one bar per file, one segment per stage. */
    private static CategoryChart stages(List<ResultFile> files, String phase) {
        CategoryChart chart = new CategoryChartBuilder().width(WIDTH).height(HEIGHT)
                .title("Stage breakdown: " + phase).xAxisTitle(files.size() > 1 ? "result file" : "").yAxisTitle("ms").build();
        chart.getStyler().setStacked(true);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        List<String> bars = files.stream().map(ResultFile::label).toList();
        for (String stage : STAGE_COLUMNS) {
            List<Double> values = new ArrayList<>();
            boolean any = false;
            for (ResultFile f : files) {
                double v = f.rows().stream().filter(r -> phase.equals(r.get("phase"))).mapToDouble(r -> f.value(r, stage))
                        .filter(d -> !Double.isNaN(d)).findFirst().orElse(0);
                any |= v > 0;
                values.add(v);
            }
            if (any) {
                chart.addSeries(stage.substring(0, stage.length() - "_ms".length()), bars, values);
            }
        }
        if (chart.getSeriesCollection().isEmpty()) {
            throw new EmberException("no stage times for phase " + phase + " in " + files.stream().map(ResultFile::path).toList());
        }
        return chart;
    }

    private static Path save(Chart<?, ?> chart, Path dir, String name) {
        try {
            Files.createDirectories(dir);
            Path png = dir.resolve(name + ".png");
            BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
            VectorGraphicsEncoder.saveVectorGraphic(chart, dir.resolve(name).toString(), VectorGraphicsEncoder.VectorGraphicsFormat.SVG);
            return png;
        } catch (IOException e) {
            throw new EmberException("cannot write the chart " + dir.resolve(name) + ": " + e.getMessage());
        }
    }
}
