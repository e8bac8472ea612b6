package dev.ember.bench;

import dev.ember.backend.KernelSpan;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Where the device's time went among the kernels a recorder saw ({@code --kernel-timeline}), for kernels replayed from
 * graphs (the decode steps) or launched alone (prefill and the rest): the window from the first start to the last end,
 * the time some kernel ran (the union of their spans: kernels overlap under programmatic dependent launch), the time
 * none did, and per kernel its launches and device time, a step's share of each where the caller knows the steps.
 * Under programmatic dependent launch a kernel's span includes the time its blocks waited for the kernel before it, so
 * each kernel is also given what it added to the window: its exposed time (the part of its span past every earlier
 * kernel's end) and the idle time just before it started (no kernel running); these add up to the window.
 *
 * @param what     which kernels, for the heading
 * @param steps    the steps they belong to (for per-step figures), or 0 where unknown
 * @param window   nanoseconds from the first kernel's start to the last one's end
 * @param busy     of it, nanoseconds in which at least one kernel ran
 * @param summed   the kernels' durations added up: more than {@code busy} by the time kernels overlapped
 * @param kernels  per kernel name: launches, summed duration, exposed and idle-before time, the most of the window first
 */
record KernelTimeline(String what, long steps, long window, long busy, long summed, List<Kernel> kernels) {

    /**
     * One kernel name's launches, their summed device time, the part of it no earlier kernel overlapped ({@code exposed})
     * and the idle time just before them ({@code idleBefore}): what they cost the window is exposed + idleBefore.
     */
    record Kernel(String name, long launches, long nanos, long exposed, long idleBefore) {
        long windowShare() {
            return exposed + idleBefore;
        }
    }

    /** The timeline of {@code spans} (any order), labelled {@code what}, over {@code steps} steps (0: unknown). */
    static KernelTimeline of(String what, List<KernelSpan> spans, long steps) {
        List<KernelSpan> sorted = spans.stream().sorted(Comparator.comparingLong(KernelSpan::startNanos)).toList();
        long busy = 0, summed = 0, coveredTo = Long.MIN_VALUE;
        Map<String, long[]> byName = new LinkedHashMap<>();
        for (KernelSpan k : sorted) {
            summed += k.durationNanos();
            long idle = coveredTo == Long.MIN_VALUE ? 0 : Math.max(0, k.startNanos() - coveredTo);
            long exposed = Math.max(0, k.endNanos() - Math.max(k.startNanos(), coveredTo));
            busy += exposed;
            coveredTo = Math.max(coveredTo, k.endNanos());
            long[] totals = byName.computeIfAbsent(k.name(), n -> new long[4]);
            totals[0]++;
            totals[1] += k.durationNanos();
            totals[2] += exposed;
            totals[3] += idle;
        }
        long window = sorted.isEmpty() ? 0 : coveredTo - sorted.getFirst().startNanos();
        List<Kernel> kernels = new ArrayList<>();
        byName.forEach((name, t) -> kernels.add(new Kernel(name, t[0], t[1], t[2], t[3])));
        kernels.sort(Comparator.comparingLong(Kernel::windowShare).reversed().thenComparing(Kernel::name));
        return new KernelTimeline(what, steps, window, busy, summed, List.copyOf(kernels));
    }

    /** The kernels of captured graphs (a decode step's) and those launched alone, each summarized, the empty left out. */
    static List<KernelTimeline> split(List<KernelSpan> spans, long graphSteps) {
        List<KernelTimeline> parts = new ArrayList<>();
        List<KernelSpan> inGraphs = spans.stream().filter(k -> k.graph() != 0).toList();
        List<KernelSpan> alone = spans.stream().filter(k -> k.graph() == 0).toList();
        if (!inGraphs.isEmpty()) {
            parts.add(of("replayed from graphs (decode steps)", inGraphs, graphSteps));
        }
        if (!alone.isEmpty()) {
            parts.add(of("launched alone (prefill and eager steps)", alone, 0));
        }
        return parts;
    }

    /** Prints the summary and the {@code top} kernels that cost the window most (all with top <= 0). */
    void print(PrintStream out, int top) {
        out.printf(Locale.ROOT, "# kernel timeline (CUPTI, the device's clock), kernels %s: %.3f ms from the first start to "
                        + "the last end, some kernel running %.3f ms of it (%.1f%%), none %.3f ms; %.3f ms more of kernel time "
                        + "than that, where kernels overlapped%n", what, window / 1e6, busy / 1e6, percent(busy, window),
                (window - busy) / 1e6, (summed - busy) / 1e6);
        if (steps > 0) {
            out.printf(Locale.ROOT, "#   a step of %d: %.1f us, kernels running %.1f us, none %.1f us%n", steps,
                    window / 1e3 / steps, busy / 1e3 / steps, (window - busy) / 1e3 / steps);
        }
        double per = steps > 0 ? steps : 1;
        String unit = steps > 0 ? "_a_step" : "_total";
        ResultTable table = ResultTable.of("kernel", "launches", "us_each", "us" + unit, "exposed_us" + unit,
                "idle_before_us" + unit, "share_of_window");
        for (Kernel k : top > 0 ? kernels.subList(0, Math.min(top, kernels.size())) : kernels) {
            table.add(k.name(), k.launches(), round(k.nanos() / 1e3 / k.launches()), round(k.nanos() / 1e3 / per),
                    round(k.exposed() / 1e3 / per), round(k.idleBefore() / 1e3 / per), round(percent(k.windowShare(), window)));
        }
        table.print(out);
    }

    /** Every span, one line each, times from the first start: name, stream, graph, start_us, end_us, duration_us. */
    static void writeCsv(Path file, List<KernelSpan> spans) {
        long origin = spans.stream().mapToLong(KernelSpan::startNanos).min().orElse(0);
        ResultTable table = ResultTable.of("kernel", "stream", "graph", "start_us", "end_us", "duration_us");
        spans.stream().sorted(Comparator.comparingLong(KernelSpan::startNanos)).forEach(k -> table.add(k.name(), k.stream(),
                k.graph(), round((k.startNanos() - origin) / 1e3), round((k.endNanos() - origin) / 1e3), round(k.durationNanos() / 1e3)));
        table.writeCsv(file);
    }

    private static double percent(long part, long whole) {
        return whole == 0 ? 0 : 100.0 * part / whole;
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }
}
