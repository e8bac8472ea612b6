package dev.ember.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A benchmark's results read back: a CSV as {@code ember bench} writes it, the {@code results} rows of its JSON
 * (the {@code _gpu.json} files included), or a JSON object of one run as one row ({@code ember bench infer}'s). Cells
 * stay text; an empty cell is a value that was not measured.
 *
 * <p>Columns are told apart by name: a <em>metric</em> is a measured figure, named by its unit ({@code _ms},
 * {@code _us}, {@code _s}, {@code _gbps}, {@code tflops}, {@code _pct}, {@code _j}, {@code _w}, ...) or by a
 * statistic ({@code _mean}, {@code _p50}, {@code _p95}); every other column is a workload parameter, and those of
 * them that vary between rows ({@code prompt_len}, {@code phase}, {@code batch_size}) are the rows' keys.
 */
public record ResultFile(Path path, List<String> columns, List<Map<String, String>> rows) {
    private static final Pattern METRIC = Pattern.compile(
            ".*(_ms|_us|_s|_gbps|tflops|bandwidth|_pct|_j|_w|_c)(_(mean|min|max|p\\d+))?|.*_(mean|min|max|p\\d+)|mem_used.*");

    public ResultFile {
        columns = List.copyOf(columns);
        rows = List.copyOf(rows);
    }

    public static ResultFile read(Path path) {
        if (!Files.isRegularFile(path)) {
            throw new EmberException("no result file " + path);
        }
        String name = path.getFileName().toString();
        try {
            if (name.endsWith(".csv")) {
                return readCsv(path, Files.readString(path));
            }
            if (name.endsWith(".json")) {
                return readJson(path, new ObjectMapper().readTree(path.toFile()));
            }
        } catch (IOException e) {
            throw new EmberException("cannot read " + path + ": " + e.getMessage());
        }
        throw new EmberException(path + " is neither a .csv nor a .json result file");
    }

    private static ResultFile readCsv(Path path, String text) {
        List<List<String>> lines = parseCsv(text);
        if (lines.isEmpty() || lines.getFirst().isEmpty()) {
            throw new EmberException(path + " has no header line");
        }
        List<String> columns = lines.getFirst();
        List<Map<String, String>> rows = new ArrayList<>();
        for (int i = 1; i < lines.size(); i++) {
            List<String> cells = lines.get(i);
            if (cells.size() == 1 && cells.getFirst().isEmpty()) {
                continue;
            }
            if (cells.size() != columns.size()) {
                throw new EmberException(path + " line " + (i + 1) + " has " + cells.size() + " cells for "
                        + columns.size() + " columns");
            }
            Map<String, String> row = new LinkedHashMap<>();
            for (int c = 0; c < columns.size(); c++) {
                row.put(columns.get(c), cells.get(c));
            }
            rows.add(row);
        }
        return new ResultFile(path, columns, rows);
    }

    /** RFC 4180 CSV: cells with commas, quotes or line breaks are quoted, quotes inside doubled. */
    static List<List<String>> parseCsv(String text) {
        List<List<String>> lines = new ArrayList<>();
        List<String> line = new ArrayList<>();
        StringBuilder cell = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < text.length(); i++) {
            char ch = text.charAt(i);
            if (quoted) {
                if (ch == '"' && i + 1 < text.length() && text.charAt(i + 1) == '"') {
                    cell.append('"');
                    i++;
                } else if (ch == '"') {
                    quoted = false;
                } else {
                    cell.append(ch);
                }
            } else if (ch == '"') {
                quoted = true;
            } else if (ch == ',') {
                line.add(cell.toString());
                cell.setLength(0);
            } else if (ch == '\n' || ch == '\r') {
                if (ch == '\r' && i + 1 < text.length() && text.charAt(i + 1) == '\n') {
                    i++;
                }
                line.add(cell.toString());
                cell.setLength(0);
                lines.add(line);
                line = new ArrayList<>();
            } else {
                cell.append(ch);
            }
        }
        if (!cell.isEmpty() || !line.isEmpty()) {
            line.add(cell.toString());
            lines.add(line);
        }
        return lines;
    }

    private static ResultFile readJson(Path path, JsonNode root) {
        if (root.isObject() && !root.has("results")) {
            return oneRun(path, root);
        }
        JsonNode results = root.isArray() ? root : root.get("results");
        if (results == null || !results.isArray()) {
            throw new EmberException(path + " has no \"results\" array");
        }
        Set<String> columns = new LinkedHashSet<>();
        List<Map<String, String>> rows = new ArrayList<>();
        for (JsonNode r : results) {
            Map<String, String> row = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = r.properties().iterator(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> field = it.next();
                columns.add(field.getKey());
                row.put(field.getKey(), field.getValue().isNull() ? "" : field.getValue().asText());
            }
            rows.add(row);
        }
        return new ResultFile(path, List.copyOf(columns), rows);
    }

    /**
     * A JSON object of one run ({@code ember bench infer}'s, seed 002's layout) as one row: a nested object's fields
     * become columns named by their path ({@code streaming.bound_tok_s}), so that a chart can reach them; an array
     * stays one cell, its JSON text.
     */
    private static ResultFile oneRun(Path path, JsonNode root) {
        Map<String, String> row = new LinkedHashMap<>();
        flatten("", root, row);
        if (row.isEmpty()) {
            throw new EmberException(path + " holds neither a \"results\" array nor the fields of a run");
        }
        return new ResultFile(path, List.copyOf(row.keySet()), List.of(row));
    }

    private static void flatten(String prefix, JsonNode object, Map<String, String> row) {
        for (Map.Entry<String, JsonNode> field : object.properties()) {
            String column = prefix + field.getKey();
            JsonNode value = field.getValue();
            if (value.isObject()) {
                flatten(column + ".", value, row);
            } else {
                row.put(column, value.isNull() ? "" : value.isArray() ? value.toString() : value.asText());
            }
        }
    }

    /** A short label for charts and tables: the file name without its extension. */
    public String label() {
        String name = path.getFileName().toString();
        int dot = name.lastIndexOf('.');
        return dot > 0 ? name.substring(0, dot) : name;
    }

    public boolean has(String column) {
        return columns.contains(column);
    }

    /** Whether every non-empty cell of {@code column} is a number (and at least one is). */
    public boolean isNumeric(String column) {
        boolean any = false;
        for (Map<String, String> row : rows) {
            String v = row.getOrDefault(column, "");
            if (v.isEmpty()) {
                continue;
            }
            if (Double.isNaN(parse(v))) {
                return false;
            }
            any = true;
        }
        return any;
    }

    public static boolean isMetricName(String column) {
        return METRIC.matcher(column).matches();
    }

    /** The numeric measured columns, in file order. */
    public List<String> metrics() {
        return columns.stream().filter(c -> isMetricName(c) && isNumeric(c)).toList();
    }

    /** The parameter columns whose values differ between rows: what tells one row from another. */
    public List<String> keys() {
        return columns.stream().filter(c -> !isMetricName(c))
                .filter(c -> rows.stream().map(r -> r.getOrDefault(c, "")).distinct().count() > 1).toList();
    }

    /** The cell as a number; NaN when empty or not a number. */
    public static double parse(String cell) {
        if (cell == null || cell.isEmpty()) {
            return Double.NaN;
        }
        try {
            return Double.parseDouble(cell);
        } catch (NumberFormatException e) {
            return Double.NaN;
        }
    }

    public double value(Map<String, String> row, String column) {
        return parse(row.get(column));
    }
}
