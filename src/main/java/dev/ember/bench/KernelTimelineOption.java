package dev.ember.bench;

import dev.ember.backend.Backend;
import dev.ember.backend.KernelRecorder;
import dev.ember.backend.KernelSpan;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code --kernel-timeline FILE}, for a benchmark to include as a picocli {@code @Mixin}: the GPU's kernels recorded
 * through CUPTI during one more run of the workload after the timed ones (so that recording slows none of them), each
 * with the device's own start and end (captured graphs' nodes included, overlapping where programmatic dependent launch
 * lets them), written to FILE and summarized ({@link KernelTimeline}). What Nsight Systems would show, where it is not
 * installed.
 */
public final class KernelTimelineOption {
    /** Kernels listed in the printed summary; the file has every one. */
    private static final int LISTED = 25;

    @Option(names = "--kernel-timeline", paramLabel = "FILE",
            description = "record the GPU's kernels through CUPTI during one more run after the timed ones: each kernel's start "
                    + "and end on the device to FILE (CSV), and a summary of where a step's device time went, between kernels "
                    + "and in each")
    Path file;

    public boolean given() {
        return file != null;
    }

    /** Fails now, naming why, where {@code backend} cannot record kernels (the CPU; no CUPTI), rather than after the runs. */
    public void check(Backend backend) {
        if (file != null) {
            try (KernelRecorder probe = backend.recordKernels()) {
                probe.stop();
            }
        }
    }

    /** A recorder when asked for, else null. */
    public KernelRecorder start(Backend backend) {
        return file != null ? backend.recordKernels() : null;
    }

    /** Stops {@code recorder} (if any), writes its kernels to the file and prints their summary, {@code graphSteps} steps replayed from graphs. */
    public void finish(KernelRecorder recorder, long graphSteps, PrintStream out, PrintStream log) {
        if (recorder == null) {
            return;
        }
        List<KernelSpan> spans = recorder.stop();
        KernelTimeline.writeCsv(file, spans);
        log.println("ember: " + spans.size() + " kernels of the recorded run written to " + file);
        for (KernelTimeline part : KernelTimeline.split(spans, graphSteps)) {
            part.print(out, LISTED);
        }
    }
}
