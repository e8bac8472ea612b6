package dev.ember.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.ember.EmberException;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Rows of a benchmark's results under a fixed list of columns (the seeds' CSV headers, exactly), printed as an
 * aligned table and written as CSV or JSON. Numbers are written with the precision a reader needs, not Java's
 * full double expansion; a value that was not measured on this device is written as an empty CSV cell and a
 * JSON null, never as a made-up number.
 */
public final class ResultTable {
    private final List<String> columns;
    private final List<List<Object>> rows = new ArrayList<>();

    public ResultTable(List<String> columns) {
        this.columns = List.copyOf(columns);
    }

    public static ResultTable of(String... columns) {
        return new ResultTable(List.of(columns));
    }

    public List<String> columns() {
        return columns;
    }

    public List<List<Object>> rows() {
        return rows;
    }

    /** Adds a row; values are Strings, Numbers, Booleans or null (not measured), one per column. */
    public ResultTable add(Object... values) {
        if (values.length != columns.size()) {
            throw new IllegalArgumentException("a row of " + values.length + " values for " + columns.size() + " columns " + columns);
        }
        rows.add(java.util.Arrays.asList(values.clone()));
        return this;
    }

    static String format(Object value) {
        return switch (value) {
            case null -> "";
            case Double d when d.isNaN() -> "";
            case Float f when f.isNaN() -> "";
            case Double d -> formatDouble(d);
            case Float f -> formatDouble(f);
            default -> value.toString();
        };
    }

    private static String formatDouble(double d) {
        if (d == Math.rint(d) && Math.abs(d) < 1e15) {
            return Long.toString((long) d);
        }
        double magnitude = Math.abs(d);
        String pattern = magnitude >= 100 ? "%.2f" : magnitude >= 1 ? "%.3f" : "%.5g";
        return String.format(Locale.ROOT, pattern, d);
    }

    public String toCsv() {
        StringBuilder out = new StringBuilder(String.join(",", columns)).append('\n');
        for (List<Object> row : rows) {
            for (int i = 0; i < row.size(); i++) {
                out.append(i == 0 ? "" : ",").append(csvCell(format(row.get(i))));
            }
            out.append('\n');
        }
        return out.toString();
    }

    private static String csvCell(String s) {
        return s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replace("\"", "\"\"") + "\"" : s;
    }

    /** The rows as a list of column-to-value maps, for JSON. */
    public List<Map<String, Object>> toMaps() {
        List<Map<String, Object>> out = new ArrayList<>();
        for (List<Object> row : rows) {
            Map<String, Object> m = new LinkedHashMap<>();
            for (int i = 0; i < columns.size(); i++) {
                Object v = row.get(i);
                m.put(columns.get(i), v instanceof Double d && d.isNaN() || v instanceof Float f && f.isNaN() ? null : v);
            }
            out.add(m);
        }
        return out;
    }

    public void writeCsv(Path file) {
        writeText(file, toCsv());
    }

    /** Writes {@code {"header": header, "results": [rows]}}. */
    public void writeJson(Path file, Map<String, ?> header) {
        writeJson(file, header, Map.of());
    }

    /** Writes {@code {"header": header, "results": [rows]}} followed by further top-level {@code sections}. */
    public void writeJson(Path file, Map<String, ?> header, Map<String, ?> sections) {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("header", header);
        root.put("results", toMaps());
        root.putAll(sections);
        writeJsonValue(file, root);
    }

    /** Writes the CSV to {@code csv} and the JSON to {@code json}, each only when its path is not null. */
    public void writeFiles(Path csv, Path json, Map<String, ?> header) {
        if (csv != null) {
            writeCsv(csv);
        }
        if (json != null) {
            writeJson(json, header);
        }
    }

    /** Writes {@code value} (maps, lists, numbers, strings) as indented JSON, creating the file's folder. */
    public static void writeJsonValue(Path file, Object value) {
        try {
            writeText(file, new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(value));
        } catch (IOException e) {
            throw new EmberException("cannot write " + file + ": " + e.getMessage());
        }
    }

    /** Writes {@code text} to {@code file}, creating its folder; a failure is an error naming the file. */
    public static void writeText(Path file, String text) {
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            Files.writeString(file, text);
        } catch (IOException e) {
            throw new EmberException("cannot write " + file + ": " + e.getMessage());
        }
    }

    /** Prints the rows as an aligned text table. */
    public void print(PrintStream out) {
        int[] width = new int[columns.size()];
        for (int i = 0; i < width.length; i++) {
            width[i] = columns.get(i).length();
            for (List<Object> row : rows) {
                width[i] = Math.max(width[i], format(row.get(i)).length());
            }
        }
        StringBuilder line = new StringBuilder();
        for (int i = 0; i < width.length; i++) {
            line.append(i == 0 ? "" : "  ").append(pad(columns.get(i), width[i]));
        }
        out.println(line);
        for (List<Object> row : rows) {
            line.setLength(0);
            for (int i = 0; i < width.length; i++) {
                line.append(i == 0 ? "" : "  ").append(pad(format(row.get(i)), width[i]));
            }
            out.println(line);
        }
    }

    private static String pad(String s, int width) {
        return s + " ".repeat(width - s.length());
    }
}
