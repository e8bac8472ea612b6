package dev.ember.bench;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;

/** {@code bench spec}'s console summary: a column per kind of run, a line per figure, then how the prediction is made. */
final class SpecSummary {
    private SpecSummary() {
    }

    /**
     * Prints {@code rows} (of {@link SpecBenchCommand#COLUMNS}, one per entry of {@code measured}), the speed-up measured
     * on {@code basis}, and the identity check.
     */
    static void print(PrintStream out, ResultTable rows, List<SpecRuns> measured, String basis, SpecIdentity identity, boolean ngram) {
        List<String> columns = new ArrayList<>();
        columns.add("");
        for (SpecRuns m : measured) {
            columns.add(m.speculates() ? "speculative, gamma " + m.gamma() : "target");
        }
        ResultTable summary = new ResultTable(columns);
        List<Map<String, Object>> maps = rows.toMaps();
        summary.add(line("requests", maps, m -> m.get("requests")));
        summary.add(line("prompt / generated / total tokens", maps, m -> m.get("prompt_tokens") + " / " + m.get("generated_tokens")
                + " / " + m.get("total_tokens")));
        summary.add(line("duration (s)", maps, m -> fixed(m.get("duration_s"), 3)));
        summary.add(line("throughput (generated tokens/s)", maps, m -> fixed(m.get("throughput_tok_s"), 1)));
        summary.add(line("throughput (all tokens/s)", maps, m -> fixed(m.get("total_throughput_tok_s"), 1)));
        summary.add(line("TTFT mean / p50 / p99 (ms)", maps, m -> fixed(m.get("ttft_ms_mean"), 1) + " / " + fixed(m.get("ttft_ms_p50"), 1)
                + " / " + fixed(m.get("ttft_ms_p99"), 1)));
        summary.add(line("end-to-end latency mean / p50 / p99 (ms)", maps, m -> fixed(m.get("e2e_latency_ms_mean"), 1) + " / "
                + fixed(m.get("e2e_latency_ms_p50"), 1) + " / " + fixed(m.get("e2e_latency_ms_p99"), 1)));
        summary.add(line("time per output token, mean (ms)", maps, m -> fixed(m.get("tpot_ms_mean"), 2)));
        boolean speculated = measured.stream().anyMatch(SpecRuns::speculates);
        if (speculated) {
            summary.add(line("acceptance rate (accepted / drafted)", maps, m -> m.get("acceptance_rate") == null ? ""
                    : String.format(Locale.ROOT, "%.1f%% (%s / %s)", 100 * (double) m.get("acceptance_rate"), m.get("accepted_tokens"),
                    m.get("drafted_tokens"))));
            summary.add(line("alpha (per-token acceptance)", maps, m -> fixed(m.get("alpha"), 3)));
            summary.add(line("tokens per verification", maps, m -> fixed(m.get("mean_accepted_length"), 2)));
            summary.add(line("verifications / plain decodes", maps, m -> m.get("verifications") == null ? ""
                    : m.get("verifications") + " / " + m.get("plain_decodes")));
            List<String> positions = new ArrayList<>(List.of("acceptance by position"));
            for (SpecRuns m : measured) {
                positions.add(!m.speculates() ? "" : String.join(" ", Arrays.stream(m.acceptanceByPosition())
                        .mapToObj(a -> String.format(Locale.ROOT, "%.2f", a)).toList()));
            }
            summary.add(positions.toArray());
        }
        summary.add(line("step time: drafting / target / host", maps, m -> fixed(m.get("time_drafting_pct"), 0) + "% / "
                + fixed(m.get("time_target_pct"), 0) + "% / " + fixed(m.get("time_host_pct"), 0) + "%"));
        summary.add(line("per step (us): step = target await + draft awaits + host", maps, m -> fixed(m.get("step_us_mean"), 1)
                + " = " + fixed(m.get("target_await_us_per_step"), 1) + " + " + fixed(m.get("draft_await_us_per_step"), 1) + " + "
                + fixed(m.get("host_us_per_step"), 1)));
        summary.add(line("  host: schedule / drafting / submit / retire / rest", maps, m -> fixed(m.get("host_schedule_us_per_step"), 1)
                + " / " + fixed(m.get("host_drafting_us_per_step"), 1) + " / " + fixed(m.get("host_submit_us_per_step"), 1) + " / "
                + fixed(m.get("host_retire_us_per_step"), 1) + " / " + fixed(m.get("host_other_us_per_step"), 1)));
        summary.add(line("  host with no step in flight", maps, m -> fixed(m.get("host_idle_us_per_step"), 1)));
        boolean counted = maps.stream().anyMatch(m -> m.get("target_prepare_us_per_step") != null);
        if (counted) {
            summary.add(line("  runners: target prepare / launch / other; draft", maps, m -> fixed(m.get("target_prepare_us_per_step"), 1)
                    + " / " + fixed(m.get("target_launch_us_per_step"), 1) + " / " + fixed(m.get("target_runner_other_us_per_step"), 1)
                    + (m.get("draft_prepare_us_per_step") == null ? "" : "; " + fixed(m.get("draft_prepare_us_per_step"), 1) + " / "
                    + fixed(m.get("draft_launch_us_per_step"), 1) + " / " + fixed(m.get("draft_runner_other_us_per_step"), 1))));
            summary.add(line("  runners: target product choice / capture; draft", maps, m -> fixed(m.get("target_choose_us_per_step"), 1)
                    + " / " + fixed(m.get("target_capture_us_per_step"), 1) + (m.get("draft_choose_us_per_step") == null ? ""
                    : "; " + fixed(m.get("draft_choose_us_per_step"), 1) + " / " + fixed(m.get("draft_capture_us_per_step"), 1))));
            summary.add(line("  runners: target steps (eager); draft", maps, m -> m.get("target_runner_steps") + " ("
                    + m.get("target_eager_steps") + ")" + (m.get("draft_runner_steps") == null ? ""
                    : "; " + m.get("draft_runner_steps") + " (" + m.get("draft_eager_steps") + ")")));
        }
        if (speculated) {
            summary.add(line("speed-up, measured (" + basis + ")", maps, m -> times(m.get("speedup"))));
            summary.add(line("speed-up, predicted (Leviathan)", maps, m -> times(m.get("predicted_speedup"))));
            summary.add(line("predicted with the verification's cost", maps, m -> times(m.get("predicted_speedup_with_verify_cost"))));
            summary.add(line("measured / predicted (Leviathan)", maps, m -> percentOf(m.get("speedup"), m.get("predicted_speedup"))));
        }
        String rule = "=".repeat(30);
        out.println();
        out.println(rule + " speculative decoding benchmark " + rule);
        summary.print(out);
        out.println("=".repeat(2 * rule.length() + 32));
        if (speculated) {
            out.println("predicted speed-up = (1 - a^(gamma+1)) / ((1 - a)(gamma c + 1)) (Leviathan et al. 2023), with");
            out.println("  a = alpha, the measured chance that a drafted token is accepted when those before it were");
            out.println("      (accepted / (accepted + verifications with a rejection)),");
            out.println("  c = " + (ngram ? "0 (n-gram lookup runs no model)" : "a draft decode step's time over a target decode step's (above)")
                    + ";");
            out.println("  'with the verification's cost': a verification step's time over a decode step's for the paper's 1");
        }
        out.println("per step: microseconds per engine step (speculating at batch 1, a step is a round: the draft's steps, then the");
        out.println("  verification); host = outside the runners' awaits: scheduling, drafting outside the draft's awaits (its");
        out.println("  chunks, its submits), the target's submit, retiring its tokens, the rest; 'no step in flight': of the host");
        out.println("  time, that from an await's end to the next submit's end, when neither runner has a step queued"
                + (counted ? ";" : ""));
        if (counted) {
            out.println("  runners: the runners' own counters of preparing a step (metadata, upload), launching it, and the rest of");
            out.println("  their host time outside waiting (queuing the copies back and the events, reading the results)");
        }
        out.println("outputs identical to the target's: " + identity.summary());
    }

    private static Object[] line(String label, List<Map<String, Object>> rows, Function<Map<String, Object>, Object> cell) {
        Object[] line = new Object[rows.size() + 1];
        line[0] = label;
        for (int i = 0; i < rows.size(); i++) {
            line[i + 1] = cell.apply(rows.get(i));
        }
        return line;
    }

    private static String fixed(Object value, int decimals) {
        return value instanceof Number n && Double.isFinite(n.doubleValue())
                ? String.format(Locale.ROOT, "%." + decimals + "f", n.doubleValue()) : "";
    }

    /** {@code part} as a whole percentage of {@code whole}: what of the prediction the loop keeps. */
    private static String percentOf(Object part, Object whole) {
        return part instanceof Number p && whole instanceof Number w && Double.isFinite(p.doubleValue() / w.doubleValue())
                ? String.format(Locale.ROOT, "%.0f%%", 100 * p.doubleValue() / w.doubleValue()) : "";
    }

    private static String times(Object value) {
        return value instanceof Number n && Double.isFinite(n.doubleValue()) ? String.format(Locale.ROOT, "%.2fx", n.doubleValue()) : "";
    }
}
