package dev.ember.monitor;

import dev.ember.EmberException;
import dev.ember.nativelib.NvidiaLibraries;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * One GPU as NVML sees it, open for reading: power, the energy counter, utilisation, memory and temperature.
 * Reads reuse buffers allocated once, and are synchronized, so a sampling thread and a benchmark thread can share
 * a device. A reading the GPU does not support ({@code NVML_ERROR_NOT_SUPPORTED}) comes back as NaN (or -1 for
 * counts), never as a made-up number; any other failure throws {@link NvmlException}.
 *
 * <p>GPUs are numbered in NVML's order (PCI bus order), which is CUDA's too when {@code CUDA_DEVICE_ORDER=PCI_BUS_ID};
 * on a one-GPU host they agree anyway.
 */
public final class NvmlDevice implements AutoCloseable {
    private final int index;
    private final MemorySegment handle;
    private final String name;
    private final String driverVersion;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment uintOut = arena.allocate(JAVA_INT);
    private final MemorySegment ulongOut = arena.allocate(JAVA_LONG);
    /** nvmlUtilization_t: unsigned int gpu, memory. */
    private final MemorySegment utilization = arena.allocate(2 * JAVA_INT.byteSize(), JAVA_INT.byteAlignment());
    /** nvmlMemory_t: unsigned long long total, free, used. */
    private final MemorySegment memory = arena.allocate(3 * JAVA_LONG.byteSize(), JAVA_LONG.byteAlignment());
    /** nvmlTemperature_v1_t: unsigned int version, sensor type, int temperature. */
    private final MemorySegment temperature = arena.allocate(3 * JAVA_INT.byteSize(), JAVA_INT.byteAlignment());
    private final long memoryTotalBytes;
    private final boolean hasEnergyCounter;
    private boolean closed;

    private NvmlDevice(int index) {
        this.index = index;
        try {
            int count = Nvml.deviceCount();
            if (index < 0 || index >= count) {
                throw new EmberException("NVML sees " + count + " GPU(s); there is no GPU " + index);
            }
            this.handle = Nvml.deviceHandle(index);
            this.name = Nvml.deviceName(handle);
            this.driverVersion = Nvml.driverVersion();
            readMemory();
            this.memoryTotalBytes = memory.get(JAVA_LONG, 0);
            this.hasEnergyCounter = probeEnergyCounter();
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Opens GPU {@code index}; throws an {@link EmberException} reading {@code "no NVML: <reason>"} where the library,
     * the driver or the GPU is missing.
     */
    public static NvmlDevice open(int index) {
        String missing = libraryMissing();
        if (missing != null) {
            throw new EmberException("no NVML: " + missing);
        }
        try {
            Nvml.init();
        } catch (EmberException e) {
            throw new EmberException("no NVML: " + e.getMessage(), e);
        } catch (ExceptionInInitializerError e) {
            // A library without an entry point this class binds: too old a driver.
            throw new EmberException("no NVML: " + e.getCause().getMessage(), e);
        } catch (NoClassDefFoundError e) {
            throw new EmberException("no NVML: its bindings failed to load earlier in this process", e);
        }
        try {
            return new NvmlDevice(index);
        } catch (EmberException e) {
            Nvml.shutdown();
            throw new EmberException("no NVML: " + e.getMessage(), e);
        }
    }

    /** Null where GPU {@code index} can be read through NVML, else one line saying why not. Never throws. */
    public static String whyUnavailable(int index) {
        try (NvmlDevice ignored = open(index)) {
            return null;
        } catch (EmberException e) {
            return e.getMessage();
        }
    }

    private static String libraryMissing() {
        try {
            NvidiaLibraries.open(NvidiaLibraries.NVML);
            return null;
        } catch (IllegalStateException e) {
            return e.getMessage();
        }
    }

    public int index() {
        return index;
    }

    /** The GPU's marketing name, e.g. "NVIDIA H100 80GB HBM3". */
    public String name() {
        return name;
    }

    public String driverVersion() {
        return driverVersion;
    }

    public long memoryTotalBytes() {
        return memoryTotalBytes;
    }

    /** Whether the GPU keeps a total-energy counter (Volta and newer); without one, energy is integrated from power. */
    public boolean hasEnergyCounter() {
        return hasEnergyCounter;
    }

    /** Whether the counter answers; one that is refused (no permission on a virtual GPU, say) counts as absent. */
    private boolean probeEnergyCounter() {
        try {
            return readEnergy() >= 0;
        } catch (NvmlException e) {
            return false;
        }
    }

    /** Every reading at once, stamped with {@link System#nanoTime()}. */
    public synchronized GpuSample sample() {
        ensureOpen();
        long now = System.nanoTime();
        double powerWatts = readPowerMilliwatts() / 1e3;
        long energy = hasEnergyCounter ? readEnergy() : -1;
        double gpuUtil = Double.NaN;
        double memUtil = Double.NaN;
        if (readUtilization()) {
            gpuUtil = Integer.toUnsignedLong(utilization.get(JAVA_INT, 0));
            memUtil = Integer.toUnsignedLong(utilization.get(JAVA_INT, JAVA_INT.byteSize()));
        }
        long used = readMemory() ? memory.get(JAVA_LONG, 2 * JAVA_LONG.byteSize()) : -1;
        double temperature = readTemperature();
        return new GpuSample(now, powerWatts, energy, gpuUtil, memUtil, used, temperature);
    }

    /** The board's energy counter in millijoules since the driver loaded, or -1 where the GPU has none. */
    public synchronized long energyMillijoules() {
        ensureOpen();
        return hasEnergyCounter ? readEnergy() : -1;
    }

    /** Device memory in use by all processes, in bytes (nvidia-smi's memory.used); -1 where not supported. */
    public synchronized long memoryUsedBytes() {
        ensureOpen();
        return readMemory() ? memory.get(JAVA_LONG, 2 * JAVA_LONG.byteSize()) : -1;
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("NVML device " + index + " is closed");
        }
    }

    private static boolean supported(int result, String call) {
        if (result == Nvml.ERROR_NOT_SUPPORTED) {
            return false;
        }
        Nvml.check(result, call);
        return true;
    }

    private double readPowerMilliwatts() {
        try {
            return supported((int) Nvml.nvmlDeviceGetPowerUsage.invokeExact(handle, uintOut), "nvmlDeviceGetPowerUsage")
                    ? Integer.toUnsignedLong(uintOut.get(JAVA_INT, 0)) : Double.NaN;
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    private long readEnergy() {
        try {
            return supported((int) Nvml.nvmlDeviceGetTotalEnergyConsumption.invokeExact(handle, ulongOut),
                    "nvmlDeviceGetTotalEnergyConsumption") ? ulongOut.get(JAVA_LONG, 0) : -1;
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    private boolean readUtilization() {
        try {
            return supported((int) Nvml.nvmlDeviceGetUtilizationRates.invokeExact(handle, utilization), "nvmlDeviceGetUtilizationRates");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    private boolean readMemory() {
        try {
            return supported((int) Nvml.nvmlDeviceGetMemoryInfo.invokeExact(handle, memory), "nvmlDeviceGetMemoryInfo");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    private double readTemperature() {
        try {
            if (Nvml.nvmlDeviceGetTemperatureV != null) {
                temperature.set(JAVA_INT, 0, Nvml.TEMPERATURE_V1);
                temperature.set(JAVA_INT, 4, Nvml.TEMPERATURE_GPU);
                return supported((int) Nvml.nvmlDeviceGetTemperatureV.invokeExact(handle, temperature),
                        "nvmlDeviceGetTemperatureV") ? temperature.get(JAVA_INT, 8) : Double.NaN;
            }
            if (Nvml.nvmlDeviceGetTemperature != null) {
                return supported((int) Nvml.nvmlDeviceGetTemperature.invokeExact(handle, Nvml.TEMPERATURE_GPU, uintOut),
                        "nvmlDeviceGetTemperature") ? Integer.toUnsignedLong(uintOut.get(JAVA_INT, 0)) : Double.NaN;
            }
            return Double.NaN;
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            arena.close();
            Nvml.shutdown();
        }
    }
}
