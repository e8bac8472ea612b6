package dev.ember.bench;

import dev.ember.trace.Trace;
import dev.ember.trace.TraceRecorder;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;

/**
 * {@code --trace FILE}, for any benchmark to include as a picocli {@code @Mixin}: a Chrome trace of the run's steps and,
 * where the benchmark profiles stages, of the runner's stages and layers.
 */
public final class TraceOptions {

    @Option(names = "--trace", paramLabel = "FILE",
            description = "write a Chrome trace-event JSON of the run's steps (and of the runner's stages and layers "
                    + "where the benchmark profiles them) to FILE; open it in Perfetto (ui.perfetto.dev). bench spec "
                    + "writes each timed pass (the target alone, each gamma, each run) as a process of its own, named "
                    + "after it, one after another on one timeline")
    Path file;

    /** A recorder when {@code --trace} was given, else {@link Trace#OFF}. */
    public Trace open() {
        return file == null ? Trace.OFF : new TraceRecorder();
    }

    /** Whether {@code --trace} was given. */
    public boolean given() {
        return file != null;
    }

    /** Writes {@code passes}' recorders to the {@code --trace} file, a process each named by its key, and says where on {@code log}. */
    public void write(Map<String, TraceRecorder> passes, PrintStream log) {
        if (file != null) {
            TraceRecorder.write(file, passes);
            log.println("ember: trace of " + passes.values().stream().mapToInt(r -> r.events().size()).sum() + " events in "
                    + passes.size() + " passes written to " + file);
        }
    }

    /** Writes what {@code trace} recorded to the {@code --trace} file, and says where on {@code log}. */
    public void write(Trace trace, PrintStream log) {
        if (file != null && trace instanceof TraceRecorder recorder) {
            recorder.write(file);
            log.println("ember: trace of " + recorder.events().size() + " events written to " + file);
        }
    }
}
