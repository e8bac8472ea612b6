package dev.ember.bench;

import java.util.List;

/**
 * A benchmark that tells {@code ember report} how to run it in the standard suite. The report passes the model,
 * output, monitor and trace options a command has by itself; a benchmark adds here the workload that suits a report
 * (prompt lengths within the model's context, iteration counts that keep the suite within minutes).
 */
public interface ReportedBenchmark {

    /**
     * @param contextLength the model's context, in tokens
     * @param quick         a smoke run (CI, tests): the smallest workload that still exercises every column
     */
    record Suite(int contextLength, boolean quick) {
    }

    /** The arguments beyond model, output, monitor and trace options. */
    List<String> reportArguments(Suite suite);
}
