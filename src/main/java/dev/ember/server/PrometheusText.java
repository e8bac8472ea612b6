package dev.ember.server;

import dev.ember.engine.EngineStats;
import dev.ember.engine.LatencyHistogram;
import dev.ember.engine.ServingEngine;
import dev.ember.engine.ServingMetrics;
import dev.ember.scheduler.FinishReason;
import dev.ember.scheduler.SpeculationStats;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.math.BigDecimal;

/** The engine's metrics in Prometheus' text exposition format (version 0.0.4), for {@code GET /metrics}. */
final class PrometheusText {
    private final StringBuilder out = new StringBuilder(8192);
    private final String modelLabel;

    private PrometheusText(String modelName) {
        this.modelLabel = "model_name=\"" + escape(modelName) + "\"";
    }

    /** What the HTTP layer holds now: requests being answered, and open connections. */
    record ServerGauges(int requestsInFlight, int openConnections) {
    }

    static String render(ServingEngine engine, String modelName, ServerGauges server) {
        EngineStats stats = engine.stats();
        ServingMetrics m = engine.metrics();
        PrometheusText p = new PrometheusText(modelName);
        p.single("ember_num_requests_running", "gauge", "Requests in the running batch.", stats.running());
        p.single("ember_num_requests_waiting", "gauge", "Requests waiting to run (queued or preempted).", stats.waiting());
        p.single("ember_kv_cache_usage_ratio", "gauge", "Share of KV-cache blocks in use (1 = full), prefix-cached blocks included.",
                stats.kvCacheUsage());
        p.single("ember_kv_cache_blocks", "gauge", "KV-cache blocks in all.", stats.kvBlocksTotal());
        p.single("ember_prefix_cache_blocks", "gauge", "KV-cache blocks held by the prefix cache.", stats.prefixCachedBlocks());
        p.single("ember_prefix_cache_hit_rate", "gauge", "Share of looked-up prompt tokens found in the prefix cache.",
                stats.prefixHitRate());
        p.single("ember_num_preemptions_total", "counter", "Requests preempted (to be recomputed) for want of KV blocks.",
                stats.preemptions());
        p.single("ember_engine_steps_total", "counter", "Engine steps run.", stats.steps());
        p.single("ember_prompt_tokens_total", "counter", "Prompt tokens of requests accepted.", m.promptTokens());
        p.single("ember_generation_tokens_total", "counter", "Tokens generated.", m.generationTokens());
        p.header("ember_request_success_total", "counter", "Requests that finished, by finish reason.");
        for (FinishReason reason : FinishReason.values()) {
            p.sample("ember_request_success_total", "finished_reason=\"" + reason.apiName() + "\"", m.finishedRequests(reason));
        }
        p.single("ember_request_failure_total", "counter", "Requests rejected by the engine, cancelled or cut off.", m.failedRequests());
        p.histogram("ember_time_to_first_token_seconds", "Time from arrival to the first generated token.", m.timeToFirstToken());
        p.histogram("ember_inter_token_latency_seconds", "Time between consecutive generated tokens of a request.",
                m.interTokenLatency());
        p.histogram("ember_e2e_request_latency_seconds", "Time from arrival to the end of a request.", m.endToEndLatency());
        p.histogram("ember_request_queue_time_seconds", "Time from arrival to the first step that scheduled the request.",
                m.queueTime());
        if (engine.speculativeTokens() > 0) {
            p.speculation(stats.speculation(), engine.speculativeTokens());
        }
        p.single("ember_http_requests_in_flight", "gauge", "Completion requests handed to the engine and not yet answered in full.",
                server.requestsInFlight());
        p.single("ember_http_connections_open", "gauge", "Open HTTP connections.", server.openConnections());
        MemoryUsage heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
        p.single("ember_jvm_heap_used_bytes", "gauge", "Java heap in use (garbage not yet collected included).", heap.getUsed());
        p.single("ember_jvm_heap_committed_bytes", "gauge", "Java heap committed by the JVM.", heap.getCommitted());
        return p.out.toString();
    }

    /**
     * vLLM's speculative-decoding counters, under its names: from them its PromQL gives the acceptance rate
     * (accepted / draft tokens), the mean acceptance length (1 + accepted / drafts: the verification's own token
     * counted, as vLLM does) and the acceptance rate at each position (accepted at it / drafts).
     */
    private void speculation(SpeculationStats.Snapshot s, int positions) {
        single("ember_spec_decode_num_drafts_total", "counter", "Drafts verified (a sequence's drafted tokens in one step).",
                s.verifications());
        single("ember_spec_decode_num_draft_tokens_total", "counter", "Drafted tokens verified.", s.proposed());
        single("ember_spec_decode_num_accepted_tokens_total", "counter", "Drafted tokens accepted.", s.accepted());
        header("ember_spec_decode_num_accepted_tokens_per_pos_total", "counter", "Drafted tokens accepted, by position in the draft.");
        for (int position = 0; position < positions; position++) {
            sample("ember_spec_decode_num_accepted_tokens_per_pos_total", "position=\"" + position + "\"", s.acceptedAt(position));
        }
    }

    private void single(String name, String type, String help, double value) {
        header(name, type, help);
        sample(name, null, value);
    }

    private void header(String name, String type, String help) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    }

    private void histogram(String name, String help, LatencyHistogram.Snapshot h) {
        header(name, "histogram", help);
        double[] bounds = h.upperBoundsSeconds();
        long[] counts = h.cumulativeCounts();
        for (int i = 0; i < bounds.length; i++) {
            sample(name + "_bucket", "le=\"" + number(bounds[i]) + "\"", counts[i]);
        }
        sample(name + "_bucket", "le=\"+Inf\"", h.count());
        sample(name + "_sum", null, h.sumSeconds());
        sample(name + "_count", null, h.count());
    }

    private void sample(String name, String labels, double value) {
        out.append(name).append('{').append(modelLabel);
        if (labels != null) {
            out.append(',').append(labels);
        }
        out.append("} ").append(number(value)).append('\n');
    }

    private static String number(double value) {
        if (Double.isNaN(value)) {
            return "NaN";
        }
        if (Double.isInfinite(value)) {
            return value > 0 ? "+Inf" : "-Inf";
        }
        if (value == Math.rint(value) && Math.abs(value) < 1e15) {
            return Long.toString((long) value);
        }
        return BigDecimal.valueOf(value).toPlainString();
    }

    private static String escape(String label) {
        return label.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }
}
