package dev.ember.bench.client;

import org.HdrHistogram.Histogram;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The figures of a client benchmark, from its requests' outcomes: counts, throughputs over the benchmark's
 * duration, goodput against the SLO, and latency summaries. Token counts are the server's {@code usage}.
 *
 * @param durationSeconds from the first scheduled arrival to the end of the last stream
 * @param goodput         requests per second that met every SLO bound; NaN when no SLO was given
 * @param errors          each distinct error of the failed requests, with how many requests had it
 */
public record ClientMetrics(int completed, int failed, double durationSeconds, long inputTokens, long outputTokens,
                            double requestThroughput, double outputThroughput, double totalTokenThroughput, double goodput,
                            Latency ttft, Latency tpot, Latency itl, Latency e2el, Latency queue, Map<String, Integer> errors) {

    /** The latency summaries, by the name their JSON fields take. */
    public static final List<String> LATENCIES = List.of("ttft", "tpot", "itl", "e2el", "queue");

    /**
     * Mean, median, 90th and 99th percentile in milliseconds, from an HdrHistogram of microseconds (three
     * significant digits). A percentile is the smallest recorded value that at least that share of the samples
     * does not exceed. NaN without samples.
     */
    public record Latency(long count, double mean, double median, double p90, double p99) {
        static Latency of(Histogram h) {
            if (h.getTotalCount() == 0) {
                return new Latency(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
            }
            return new Latency(h.getTotalCount(), h.getMean() / 1e3, at(h, 50), at(h, 90), at(h, 99));
        }

        private static double at(Histogram h, double percentile) {
            return h.getValueAtPercentile(percentile) / 1e3;
        }
    }

    public static ClientMetrics of(List<RequestOutcome> outcomes, double durationSeconds, Slo slo) {
        Histogram ttft = histogram();
        Histogram tpot = histogram();
        Histogram itl = histogram();
        Histogram e2el = histogram();
        Histogram queue = histogram();
        int completed = 0;
        int good = 0;
        long input = 0;
        long output = 0;
        Map<String, Integer> errors = new TreeMap<>();
        for (RequestOutcome r : outcomes) {
            if (!r.succeeded()) {
                errors.merge(r.error(), 1, Integer::sum);
                continue;
            }
            completed++;
            input += r.promptTokens();
            output += r.outputTokens();
            record(ttft, r.ttftMillis());
            record(tpot, r.tpotMillis());
            record(e2el, r.e2elMillis());
            record(queue, r.queueMillis());
            for (double gap : r.itlMillis()) {
                record(itl, gap);
            }
            if (slo != null && slo.meets(r)) {
                good++;
            }
        }
        return new ClientMetrics(completed, outcomes.size() - completed, durationSeconds, input, output,
                completed / durationSeconds, output / durationSeconds, (input + output) / durationSeconds,
                slo != null ? good / durationSeconds : Double.NaN,
                Latency.of(ttft), Latency.of(tpot), Latency.of(itl), Latency.of(e2el), Latency.of(queue), errors);
    }

    private static Histogram histogram() {
        return new Histogram(3);
    }

    private static void record(Histogram h, double millis) {
        if (!Double.isNaN(millis)) {
            h.recordValue(Math.max(0, Math.round(millis * 1e3)));
        }
    }

    Latency latency(String name) {
        return switch (name) {
            case "ttft" -> ttft;
            case "tpot" -> tpot;
            case "itl" -> itl;
            case "e2el" -> e2el;
            case "queue" -> queue;
            default -> throw new IllegalArgumentException(name);
        };
    }

    /** The figures as JSON fields, in a fixed order (NaN written as null). */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("duration_s", durationSeconds);
        m.put("completed", completed);
        m.put("failed", failed);
        m.put("total_input_tokens", inputTokens);
        m.put("total_output_tokens", outputTokens);
        m.put("request_throughput", requestThroughput);
        m.put("request_goodput", nullIfNaN(goodput));
        m.put("output_throughput", outputThroughput);
        m.put("total_token_throughput", totalTokenThroughput);
        for (String name : LATENCIES) {
            Latency l = latency(name);
            m.put("mean_" + name + "_ms", nullIfNaN(l.mean()));
            m.put("median_" + name + "_ms", nullIfNaN(l.median()));
            m.put("p90_" + name + "_ms", nullIfNaN(l.p90()));
            m.put("p99_" + name + "_ms", nullIfNaN(l.p99()));
        }
        m.put("errors", errors);
        return m;
    }

    private static Object nullIfNaN(double v) {
        return Double.isNaN(v) ? null : v;
    }
}
