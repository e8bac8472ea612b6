package dev.ember.bench;

import dev.ember.backend.KernelSpan;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code --kernel-timeline}'s arithmetic: the busy time is the union of the kernels' spans (overlapping ones counted
 * once), the idle time the rest of the window, the overlap what the summed durations exceed the busy time by; each
 * kernel's exposed time and the idle time before it add up to the window; graph kernels and lone ones apart; every span
 * in the file.
 */
class KernelTimelineTest {
    // Two steps of a graph: a norm, a product overlapping its end (programmatic dependent launch), a gap, a sampler.
    private static final List<KernelSpan> SPANS = List.of(
            new KernelSpan("sample", 9_000, 10_000, 7, 1),
            new KernelSpan("norm", 0, 1_000, 7, 1),
            new KernelSpan("gemv", 800, 4_000, 7, 1),
            new KernelSpan("sample", 4_500, 5_000, 7, 1),
            new KernelSpan("norm", 5_000, 6_000, 7, 1),
            new KernelSpan("gemv", 5_900, 8_500, 7, 1),
            new KernelSpan("prefill", 20_000, 30_000, 3, 0));

    @Test
    void busyIsTheUnionOfTheSpansAndIdleTheRestOfTheWindow() {
        KernelTimeline graphs = KernelTimeline.split(SPANS, 2).getFirst();
        assertEquals(10_000, graphs.window());
        // Covered: [0, 4000], [4500, 8500], [9000, 10000]: 4000 + 4000 + 1000.
        assertEquals(9_000, graphs.busy());
        assertEquals(1_000 + 3_200 + 500 + 1_000 + 2_600 + 1_000, graphs.summed());
        // Exposed: the product past the norm's end (3000 + 2500), each sampler after an idle 500 ns.
        assertEquals(List.of(new KernelTimeline.Kernel("gemv", 2, 5_800, 5_500, 0), new KernelTimeline.Kernel("sample", 2, 1_500, 1_500, 1_000),
                new KernelTimeline.Kernel("norm", 2, 2_000, 2_000, 0)), graphs.kernels());
        assertEquals(graphs.window(), graphs.kernels().stream().mapToLong(KernelTimeline.Kernel::windowShare).sum());

        KernelTimeline alone = KernelTimeline.split(SPANS, 2).get(1);
        assertEquals(List.of(new KernelTimeline.Kernel("prefill", 1, 10_000, 10_000, 0)), alone.kernels());
        assertEquals(10_000, alone.busy());

        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        graphs.print(new PrintStream(bytes, true, StandardCharsets.UTF_8), 2);
        String text = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("some kernel running 0.009 ms of it (90.0%), none 0.001 ms; 0.000 ms more"), text);
        assertTrue(text.contains("a step of 2: 5.0 us, kernels running 4.5 us, none 0.5 us"), text);
        assertTrue(text.contains("gemv") && text.contains("sample") && !text.contains("norm,") && !text.contains("norm "),
                "the top two only: " + text);
    }

    @Test
    void theFileHoldsEverySpanFromTheFirstStart(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("kernels.csv");
        KernelTimeline.writeCsv(file, SPANS);
        List<String> lines = Files.readAllLines(file);
        assertEquals("kernel,stream,graph,start_us,end_us,duration_us", lines.getFirst());
        assertEquals(SPANS.size() + 1, lines.size());
        assertEquals("norm,7,1,0,1,1", lines.get(1));
        assertEquals("prefill,3,0,20,30,10", lines.getLast());
    }
}
