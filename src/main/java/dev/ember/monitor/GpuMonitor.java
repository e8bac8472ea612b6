package dev.ember.monitor;

import dev.ember.EmberException;
import dev.ember.trace.Trace;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.locks.LockSupport;

/**
 * Samples one GPU through NVML on a background thread at a fixed interval while a benchmark runs: power, the energy
 * counter, utilisation, memory in use and temperature. A benchmark {@link #start}s it before its timed work, may take
 * {@link #checkpoint()}s around parts of it (one per prompt length, say) to get a {@link GpuSummary} of each part,
 * and {@link #stop()}s it for the whole run's report.
 *
 * <p>Energy comes from the driver's total-energy counter, read at each checkpoint, where the GPU has one; elsewhere
 * power samples are integrated, and the summary says which. Where NVML is missing the monitor still works as an
 * object: it samples nothing and reports why, so benchmark code has one path.
 */
public final class GpuMonitor implements AutoCloseable {
    /** A point in the run: when, and the energy counter then (-1 where there is none or nothing is sampled). */
    public record Checkpoint(long nanos, long energyMillijoules) {
    }

    private final NvmlDevice device;
    private final GpuReport unavailable;
    private final Trace trace;
    private final long intervalNanos;
    private final List<GpuSample> samples = new ArrayList<>();
    private final Thread sampler;
    private final Checkpoint started;
    private volatile boolean running;
    private volatile String samplingError;
    private GpuReport report;

    private GpuMonitor(NvmlDevice device, GpuReport unavailable, Duration interval, Trace trace) {
        this.device = device;
        this.unavailable = unavailable;
        this.trace = trace;
        this.intervalNanos = interval.toNanos();
        if (device == null) {
            this.sampler = null;
            this.started = new Checkpoint(System.nanoTime(), -1);
            return;
        }
        this.started = checkpoint();
        this.running = true;
        this.sampler = Thread.ofPlatform().daemon().name("ember-gpu-monitor").start(this::sampleLoop);
    }

    /**
     * Starts sampling GPU {@code gpu} (NVML's numbering) every {@code interval}. Where NVML or the GPU is missing it
     * returns a monitor that samples nothing and reports the reason; it never throws for that. Each sample's power and
     * utilisation also go to {@code trace} as counter tracks.
     */
    public static GpuMonitor start(int gpu, Duration interval, Trace trace) {
        if (interval.toNanos() < 1_000_000) {
            throw new EmberException("the monitor interval must be at least 1 ms, got " + interval.toNanos() / 1e9 + " s");
        }
        NvmlDevice device;
        try {
            device = NvmlDevice.open(gpu);
        } catch (EmberException e) {
            return new GpuMonitor(null, new GpuReport.Unavailable(e.getMessage()), interval, trace);
        }
        return new GpuMonitor(device, null, interval, trace);
    }

    /** A monitor that was not asked for: it samples nothing and its report is {@link GpuReport.Off}. */
    public static GpuMonitor off() {
        return new GpuMonitor(null, new GpuReport.Off(), Duration.ofSeconds(1), Trace.OFF);
    }

    /** Whether GPU figures are being taken. */
    public boolean isSampling() {
        return device != null;
    }

    /** Why there are no GPU figures, when there are none. */
    public Optional<String> unavailableReason() {
        return unavailable instanceof GpuReport.Unavailable(String reason) ? Optional.of(reason) : Optional.empty();
    }

    /** The device being sampled, for reading memory in use at a chosen moment. */
    public Optional<NvmlDevice> device() {
        return Optional.ofNullable(device);
    }

    /** Marks this moment: takes a sample now (so every window has both ends) and reads the energy counter. */
    public Checkpoint checkpoint() {
        if (device == null) {
            return new Checkpoint(System.nanoTime(), -1);
        }
        GpuSample s = device.sample();
        synchronized (samples) {
            samples.add(s);
        }
        return new Checkpoint(s.nanos(), s.energyMillijoules());
    }

    /** What the GPU did between two checkpoints; empty where nothing is sampled. */
    public Optional<GpuSummary> between(Checkpoint from, Checkpoint to) {
        if (device == null) {
            return Optional.empty();
        }
        List<GpuSample> window = new ArrayList<>();
        synchronized (samples) {
            for (GpuSample s : samples) {
                if (s.nanos() >= from.nanos() && s.nanos() <= to.nanos()) {
                    window.add(s);
                }
            }
        }
        window.sort((a, b) -> Long.compare(a.nanos(), b.nanos()));
        return Optional.of(GpuSummary.of(window, from.nanos(), to.nanos(), from.energyMillijoules(),
                to.energyMillijoules(), device.memoryTotalBytes()));
    }

    private void sampleLoop() {
        long next = System.nanoTime() + intervalNanos;
        while (running) {
            long wait = next - System.nanoTime();
            if (wait > 0) {
                LockSupport.parkNanos(this, wait);
                continue;
            }
            next += intervalNanos;
            try {
                GpuSample s = device.sample();
                synchronized (samples) {
                    samples.add(s);
                }
                if (trace.enabled()) {
                    trace.counter("gpu_power_w", s.powerWatts());
                    trace.counter("gpu_util_pct", s.gpuUtilPct());
                }
            } catch (RuntimeException e) {
                samplingError = e.getMessage();
                return;
            }
        }
    }

    /** Stops sampling and summarises the whole run, from {@link #start} to now. Later calls return the same report. */
    public synchronized GpuReport stop() {
        if (report != null) {
            return report;
        }
        if (device == null) {
            report = unavailable;
            return report;
        }
        Checkpoint end = checkpoint();
        running = false;
        LockSupport.unpark(sampler);
        try {
            sampler.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        GpuSummary summary = between(started, end).orElseThrow();
        List<GpuSample> all;
        synchronized (samples) {
            all = new ArrayList<>(samples);
        }
        all.sort((a, b) -> Long.compare(a.nanos(), b.nanos()));
        report = new GpuReport.Measured(device.name(), device.driverVersion(), intervalNanos / 1e9, summary,
                List.copyOf(all), samplingError);
        return report;
    }

    @Override
    public synchronized void close() {
        stop();
        if (device != null) {
            device.close();
        }
    }
}
