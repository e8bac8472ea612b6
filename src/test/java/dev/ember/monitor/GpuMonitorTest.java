package dev.ember.monitor;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class GpuMonitorTest {

    @Test
    void withoutNvmlTheMonitorSaysWhyAndTakesNoFigures() {
        String why = NvmlDevice.whyUnavailable(0);
        try (GpuMonitor monitor = GpuMonitor.start(0, Duration.ofMillis(5), dev.ember.trace.Trace.OFF)) {
            if (why != null) {
                assertTrue(why.startsWith("no NVML: "), why);
                assertFalse(monitor.isSampling());
                assertEquals(why, monitor.unavailableReason().orElseThrow());
                GpuMonitor.Checkpoint a = monitor.checkpoint();
                assertTrue(monitor.between(a, monitor.checkpoint()).isEmpty());
                GpuReport report = monitor.stop();
                assertEquals(new GpuReport.Unavailable(why), report);
                assertEquals(false, report.toMap(10, true).get("available"));
                assertEquals(why, report.toMap(10, true).get("reason"));
                assertTrue(report.measuredSummary().isEmpty());
            } else {
                // On a GPU host: real samples, positive power, an energy figure.
                System.out.println("NVML present: sampling GPU 0");
                GpuReport report = monitor.stop();
                GpuSummary s = report.measuredSummary().orElseThrow();
                assertTrue(s.samples() >= 2);
                assertTrue(s.meanPowerWatts() > 0, "power " + s.meanPowerWatts());
                assertTrue(s.peakMemUsedBytes() > 0);
            }
        }
    }

    @Test
    void anUnaskedMonitorIsOff() {
        try (GpuMonitor monitor = GpuMonitor.off()) {
            assertInstanceOf(GpuReport.Off.class, monitor.stop());
        }
    }

    @Test
    void theSummaryTakesEnergyFromTheCounterWhereThereIsOne() {
        long s = 1_000_000_000L;
        List<GpuSample> window = List.of(
                new GpuSample(0, 100, 5_000, 50, 20, 1000, 40),
                new GpuSample(s, 300, 205_000, 70, 40, 3000, 60),
                new GpuSample(2 * s, 200, 455_000, 90, 60, 2000, 50));
        GpuSummary counter = GpuSummary.of(window, 0, 2 * s, 5_000, 455_000, 10_000);
        assertEquals(EnergySource.COUNTER, counter.energySource());
        assertEquals(450.0, counter.energyJoules(), 1e-9);
        assertEquals(200.0, counter.meanPowerWatts(), 1e-9);
        assertEquals(300.0, counter.peakPowerWatts());
        assertEquals(70.0, counter.meanGpuUtilPct(), 1e-9);
        assertEquals(3000, counter.peakMemUsedBytes());
        assertEquals(20.0, counter.meanMemUsedPct(), 1e-9);
        assertEquals(60.0, counter.peakTemperatureC());
        assertEquals(2.0, counter.durationSeconds());
        assertEquals(45.0, counter.energyPerTokenJoules(10), 1e-9);

        // No counter: trapezoids over the power samples, (100+300)/2 + (300+200)/2 = 450 J, and the source says so.
        GpuSummary integrated = GpuSummary.of(window, 0, 2 * s, -1, -1, 10_000);
        assertEquals(EnergySource.INTEGRATED_POWER, integrated.energySource());
        assertEquals(450.0, integrated.energyJoules(), 1e-9);
        assertEquals("integrated_power_samples", integrated.toMap(10).get("energy_source"));
    }

    @Test
    void unsupportedReadingsStayEmpty() {
        List<GpuSample> window = List.of(new GpuSample(0, Double.NaN, -1, Double.NaN, Double.NaN, -1, Double.NaN));
        GpuSummary s = GpuSummary.of(window, 0, 1, -1, -1, 0);
        assertTrue(Double.isNaN(s.energyJoules()));
        assertNull(s.toMap(5).get("power_mean_w"));
        assertNull(s.toMap(5).get("mem_used_peak_bytes"));
        assertNull(s.toMap(5).get("energy_per_output_token_j"));
    }
}
