package dev.ember.bench.client;

import dev.ember.EmberException;

/**
 * Service-level bounds for goodput, in milliseconds, each optional (NaN when not set): a request counts as good
 * when it meets every bound that is set. Written {@code ttft:MS,tpot:MS,e2el:MS}, any subset.
 */
public record Slo(double ttftMillis, double tpotMillis, double e2elMillis) {

    public static Slo parse(String text) {
        double ttft = Double.NaN;
        double tpot = Double.NaN;
        double e2el = Double.NaN;
        for (String part : text.split(",")) {
            String[] kv = part.trim().split(":", 2);
            double ms;
            try {
                ms = kv.length == 2 ? Double.parseDouble(kv[1]) : Double.NaN;
            } catch (NumberFormatException e) {
                ms = Double.NaN;
            }
            if (!(ms > 0)) {
                throw new EmberException("--slo \"" + text + "\": each bound is NAME:MILLISECONDS with a positive number, as ttft:500,tpot:50,e2el:10000");
            }
            switch (kv[0].trim()) {
                case "ttft" -> ttft = ms;
                case "tpot" -> tpot = ms;
                case "e2el" -> e2el = ms;
                default -> throw new EmberException("--slo: unknown bound \"" + kv[0].trim() + "\" (ttft, tpot, e2el)");
            }
        }
        return new Slo(ttft, tpot, e2el);
    }

    /** Whether {@code r} (a succeeded request) meets every bound set; a one-token request has no TPOT to miss. */
    public boolean meets(RequestOutcome r) {
        return within(r.ttftMillis(), ttftMillis) && within(r.tpotMillis(), tpotMillis) && within(r.e2elMillis(), e2elMillis);
    }

    private static boolean within(double value, double bound) {
        return Double.isNaN(bound) || Double.isNaN(value) || value <= bound;
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder();
        append(s, "ttft", ttftMillis);
        append(s, "tpot", tpotMillis);
        append(s, "e2el", e2elMillis);
        return s.toString();
    }

    private static void append(StringBuilder s, String name, double ms) {
        if (!Double.isNaN(ms)) {
            s.append(s.isEmpty() ? "" : ",").append(name).append(':').append(ms);
        }
    }
}
