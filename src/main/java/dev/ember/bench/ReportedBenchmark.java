package dev.ember.bench;

import java.util.List;

/**
 * A benchmark that tells {@code ember report} how to run it in the standard suite. The report passes the model,
 * output, monitor and trace options a command has by itself; a benchmark adds here the workload that suits a report
 * (prompt lengths within the model's context, iteration counts that keep the suite within minutes: on the CPU, about a
 * minute and a half in all with the default model).
 */
public interface ReportedBenchmark {

    /**
     * @param contextLength the model's context, in tokens
     * @param quick         a smoke run (CI, tests): the smallest workload that still exercises every column
     * @param gpu           whether the suite runs on a GPU; on the CPU a benchmark's own CPU defaults suit a report
     */
    record Suite(int contextLength, boolean quick, boolean gpu) {
    }

    /** The arguments beyond model, output, monitor and trace options. */
    List<String> reportArguments(Suite suite);
}
