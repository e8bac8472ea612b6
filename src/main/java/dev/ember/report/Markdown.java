package dev.ember.report;

import java.util.List;
import java.util.Map;

/** Markdown tables of result rows. */
final class Markdown {
    private Markdown() {
    }

    static String table(List<String> columns, List<? extends List<String>> rows) {
        StringBuilder out = new StringBuilder();
        out.append('|');
        for (String c : columns) {
            out.append(' ').append(cell(c)).append(" |");
        }
        out.append("\n|");
        out.append(" --- |".repeat(columns.size()));
        out.append('\n');
        for (List<String> row : rows) {
            out.append('|');
            for (String v : row) {
                out.append(' ').append(cell(v)).append(" |");
            }
            out.append('\n');
        }
        return out.toString();
    }

    /** The whole file as a table; unmeasured cells are shown as an em dash. */
    static String table(ResultFile file) {
        List<List<String>> rows = file.rows().stream().map((Map<String, String> r) ->
                file.columns().stream().map(c -> r.getOrDefault(c, "").isEmpty() ? "—" : r.get(c)).toList()).toList();
        return table(file.columns(), rows);
    }

    private static String cell(String s) {
        return s.replace("|", "\\|").replace("\n", " ");
    }
}
