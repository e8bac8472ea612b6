package dev.ember.bench;

import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * One timed round of {@code ember bench infer}, as seed 002 reports it. The prefill is the steps until every request
 * has its first token (their time is the TTFT, less the engine's time before the first step); the first decode is the
 * time from there until every request has its second token, the decode until the last token.
 *
 * @param prefillTokens tokens of every prompt
 * @param decodeTokens  tokens generated after each request's first
 */
record InferTimes(long prefillTokens, long decodeTokens, long generatedTokens, double ttftMs, double prefillMs,
                  double firstTokenDecodeMs, double decodeMs, double e2eMs) {

    double throughputTokS() {
        return decodeMs > 0 ? decodeTokens / (decodeMs / 1e3) : 0;
    }

    double endToEndTokS() {
        return e2eMs > 0 ? generatedTokens / (e2eMs / 1e3) : 0;
    }

    /** 002's summary block. */
    void printSummary(PrintStream out) {
        out.println("=== Benchmark Summary ===");
        line(out, "ttft_ms", ttftMs);
        line(out, "prefill_ms", prefillMs);
        line(out, "first_token_decode_ms", firstTokenDecodeMs);
        line(out, "decode_ms", decodeMs);
        line(out, "e2e_ms", e2eMs);
        out.printf(Locale.ROOT, "%25s: %.2f%n", "throughput_tok_s", throughputTokS());
        out.printf(Locale.ROOT, "%25s: %.2f%n", "end_to_end_tok_s", endToEndTokS());
    }

    private static void line(PrintStream out, String name, double value) {
        out.printf(Locale.ROOT, "%25s: %.3f%n", name, value);
    }

    /** The times in 002's JSON order. */
    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("prefill_tokens_total", prefillTokens);
        m.put("decode_tokens_total", decodeTokens);
        m.put("prefill_ms", prefillMs);
        m.put("first_token_decode_ms", firstTokenDecodeMs);
        m.put("ttft_ms", ttftMs);
        m.put("decode_ms", decodeMs);
        m.put("e2e_ms", e2eMs);
        m.put("throughput_tok_s", throughputTokS());
        m.put("end_to_end_tok_s", endToEndTokS());
        return m;
    }
}
