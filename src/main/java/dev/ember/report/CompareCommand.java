package dev.ember.report;

import dev.ember.EmberException;
import dev.ember.bench.ResultTable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code ember compare A.csv B.csv}: seed 003's compare step. Rows of the two files are matched on their key columns
 * (the parameters that vary between rows, such as {@code prompt_len}; or {@code --key}), and each metric of each
 * matched row is shown for A and B with the ratio B/A, printed and written as a Markdown table.
 */
@Command(name = "compare", mixinStandardHelpOptions = true,
        description = "Compare two result files (CSV or JSON): each metric of each matching row, and the ratio B/A, "
                + "as a Markdown table.")
public final class CompareCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "A", description = "the baseline result file")
    Path a;

    @Parameters(index = "1", paramLabel = "B", description = "the result file compared with it")
    Path b;

    @Option(names = "--key", split = ",", paramLabel = "COLUMN",
            description = "columns that match rows; default: the parameters that vary between rows")
    List<String> keys;

    @Option(names = "--out", paramLabel = "FILE",
            description = "where the Markdown goes; default: compare_<A>_vs_<B>.md beside B")
    Path out;

    @Override
    public Integer call() {
        ResultFile baseline = ResultFile.read(a);
        ResultFile other = ResultFile.read(b);
        String markdown = markdown(baseline, other, keys);
        Path file = out != null ? out : b.toAbsolutePath().resolveSibling(
                "compare_" + baseline.label() + "_vs_" + other.label() + ".md");
        System.out.print(markdown);
        ResultTable.writeText(file, markdown);
        System.out.println("\n[compare] wrote " + file);
        return 0;
    }

    /** The comparison as Markdown: a line naming the files, then one table row per matched row and metric. */
    static String markdown(ResultFile a, ResultFile b, List<String> keyColumns) {
        List<String> keys = keyColumns != null ? keyColumns : union(a.keys(), b.keys());
        for (String k : keys) {
            if (!a.has(k) || !b.has(k)) {
                throw new EmberException("key column " + k + " is not in both " + a.path() + " and " + b.path());
            }
        }
        List<String> metrics = a.metrics().stream().filter(b.metrics()::contains).toList();
        if (metrics.isEmpty()) {
            throw new EmberException(a.path() + " and " + b.path() + " share no numeric metric columns");
        }
        Map<List<String>, Map<String, String>> bRows = new LinkedHashMap<>();
        for (Map<String, String> row : b.rows()) {
            bRows.putIfAbsent(key(row, keys), row);
        }
        List<String> columns = new ArrayList<>(keys);
        columns.addAll(List.of("metric", "A", "B", "B/A"));
        List<List<String>> rows = new ArrayList<>();
        int matched = 0;
        for (Map<String, String> rowA : a.rows()) {
            Map<String, String> rowB = bRows.get(key(rowA, keys));
            if (rowB == null) {
                continue;
            }
            matched++;
            for (String m : metrics) {
                double va = ResultFile.parse(rowA.get(m));
                double vb = ResultFile.parse(rowB.get(m));
                List<String> line = new ArrayList<>(key(rowA, keys));
                line.add(m);
                line.add(show(rowA.get(m)));
                line.add(show(rowB.get(m)));
                line.add(Double.isNaN(va) || Double.isNaN(vb) || va == 0 ? "—" : String.format(Locale.ROOT, "%.3f", vb / va));
                rows.add(line);
            }
        }
        if (matched == 0) {
            throw new EmberException("no row of " + a.path() + " matches a row of " + b.path() + " on " + keys);
        }
        return "A: `" + a.path() + "`  \nB: `" + b.path() + "`  \n"
                + (keys.isEmpty() ? "one row each" : "rows matched on " + String.join(", ", keys)) + "\n\n"
                + Markdown.table(columns, rows);
    }

    private static List<String> union(List<String> x, List<String> y) {
        LinkedHashSet<String> all = new LinkedHashSet<>(x);
        all.addAll(y);
        return List.copyOf(all);
    }

    private static List<String> key(Map<String, String> row, List<String> keys) {
        return keys.stream().map(k -> row.getOrDefault(k, "")).toList();
    }

    private static String show(String cell) {
        return cell == null || cell.isEmpty() ? "—" : cell;
    }
}
