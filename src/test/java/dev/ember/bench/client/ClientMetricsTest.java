package dev.ember.bench.client;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The client's figures from outcomes with known timings. */
class ClientMetricsTest {
    private static final long MS = 1_000_000;
    /** HdrHistogram keeps three significant digits. */
    private static final double PRECISION = 1e-3;

    /** A request sent at {@code sent} ms, due at {@code due} ms, with token events at the given ms and usage counts. */
    private static RequestOutcome outcome(double due, double sent, double[] events, double end, int prompt, int output) {
        long[] e = new long[events.length];
        for (int i = 0; i < e.length; i++) {
            e[i] = (long) (events[i] * MS);
        }
        return new RequestOutcome((long) (due * MS), (long) (sent * MS), new long[][] {e}, (long) (end * MS), prompt, output, null);
    }

    private static void assertNear(double expected, double actual, String what) {
        assertEquals(expected, actual, Math.abs(expected) * PRECISION + 1e-3, what);
    }

    @Test
    void knownGapsGiveKnownPercentilesAndLatencies() {
        // Token events 1, 2, ..., 100 ms apart after a first token at 200 ms: the ITLs are 1..100 ms.
        double[] events = new double[101];
        events[0] = 200;
        for (int i = 1; i <= 100; i++) {
            events[i] = events[i - 1] + i;
        }
        double end = events[100] + 5;
        RequestOutcome r = outcome(0, 50, events, end, 30, 101);
        ClientMetrics m = ClientMetrics.of(List.of(r), 2.0, null);

        assertEquals(100, m.itl().count());
        assertNear(50.5, m.itl().mean(), "mean ITL");
        assertNear(50, m.itl().median(), "median ITL");
        assertNear(90, m.itl().p90(), "p90 ITL");
        assertNear(99, m.itl().p99(), "p99 ITL");
        assertNear(150, m.ttft().median(), "TTFT is from the send, not the arrival");
        assertNear(50, m.queue().median(), "queueing is from the arrival to the send");
        assertNear(end - 50, m.e2el().median(), "end-to-end latency");
        assertNear((end - 50 - 150) / 100.0, m.tpot().median(), "TPOT = (e2el - ttft) / (tokens - 1)");
        assertEquals(30, m.inputTokens());
        assertEquals(101, m.outputTokens());
        assertEquals(0.5, m.requestThroughput(), 1e-12);
        assertEquals(101 / 2.0, m.outputThroughput(), 1e-12);
        assertEquals(131 / 2.0, m.totalTokenThroughput(), 1e-12);
        assertTrue(Double.isNaN(m.goodput()), "no SLO, no goodput");
    }

    @Test
    void percentilesOverManyRequestsAndGoodputAgainstTheSlo() {
        List<RequestOutcome> outcomes = new ArrayList<>();
        // TTFTs of 1..200 ms, two tokens each, the second 10 ms after the first.
        for (int i = 1; i <= 200; i++) {
            outcomes.add(outcome(0, 0, new double[] {i, i + 10}, i + 10, 5, 2));
        }
        outcomes.add(RequestOutcome.failed(0, 0, "HTTP 500: boom"));
        outcomes.add(RequestOutcome.failed(0, 0, "HTTP 500: boom"));
        ClientMetrics m = ClientMetrics.of(outcomes, 4.0, Slo.parse("ttft:50,tpot:20"));

        assertEquals(200, m.completed());
        assertEquals(2, m.failed());
        assertEquals(java.util.Map.of("HTTP 500: boom", 2), m.errors());
        assertNear(100.5, m.ttft().mean(), "mean TTFT");
        assertNear(100, m.ttft().median(), "median TTFT");
        assertNear(180, m.ttft().p90(), "p90 TTFT");
        assertNear(198, m.ttft().p99(), "p99 TTFT");
        assertNear(10, m.tpot().median(), "TPOT");
        assertEquals(50 / 4.0, m.goodput(), 1e-12, "the 50 requests with TTFT <= 50 ms meet both bounds");
        assertEquals(200 / 4.0, m.requestThroughput(), 1e-12);

        ClientMetrics strict = ClientMetrics.of(outcomes, 4.0, Slo.parse("e2el:20"));
        assertEquals(10 / 4.0, strict.goodput(), 1e-12, "e2el = ttft + 10 <= 20 for ttft <= 10");
    }

    @Test
    void sloTextIsCheckedAndUnderstood() {
        Slo slo = Slo.parse("ttft:500,e2el:2000");
        assertEquals(500, slo.ttftMillis());
        assertTrue(Double.isNaN(slo.tpotMillis()));
        assertEquals(2000, slo.e2elMillis());
        assertThrows(dev.ember.EmberException.class, () -> Slo.parse("ttft"));
        assertThrows(dev.ember.EmberException.class, () -> Slo.parse("latency:5"));
        assertThrows(dev.ember.EmberException.class, () -> Slo.parse("tpot:-1"));
    }
}
