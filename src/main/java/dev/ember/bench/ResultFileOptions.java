package dev.ember.bench;

import picocli.CommandLine.Option;

import java.nio.file.Path;

/** {@code --csv FILE} and {@code --json FILE}, for any benchmark to include as a picocli {@code @Mixin}. */
public final class ResultFileOptions {

    @Option(names = "--csv", paramLabel = "FILE", description = "also write the rows as CSV")
    Path csv;

    @Option(names = "--json", paramLabel = "FILE", description = "also write the header and the rows as JSON")
    Path json;

    /** The CSV file asked for, or null. */
    public Path csv() {
        return csv;
    }

    /** The JSON file asked for, or null. */
    public Path json() {
        return json;
    }
}
