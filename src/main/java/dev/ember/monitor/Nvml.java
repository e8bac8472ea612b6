package dev.ember.monitor;

import dev.ember.nativelib.NvidiaLibraries;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * NVML (libnvidia-ml), the driver's management library, bound through java.lang.foreign: the few queries a
 * benchmark's monitor needs. Each entry point is a {@code static final} downcall handle invoked with
 * {@code invokeExact}; a failing {@code nvmlReturn_t} becomes an {@link NvmlException} naming the call and NVML's
 * own error string. Versioned symbols are bound by the names nvml.h maps them to ({@code nvmlInit_v2},
 * {@code nvmlDeviceGetHandleByIndex_v2}), so these are the functions a C program built against NVML calls.
 *
 * <p>Loading this class opens the library; {@link NvmlDevice#whyUnavailable()} checks that it is there first.
 */
final class Nvml {
    static final int SUCCESS = 0;
    static final int ERROR_NOT_SUPPORTED = 3;
    /** {@code NVML_TEMPERATURE_GPU}: the GPU die sensor. */
    static final int TEMPERATURE_GPU = 0;
    /** {@code NVML_DEVICE_NAME_V2_BUFFER_SIZE}. */
    static final int NAME_BUFFER = 96;
    /** {@code NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE}. */
    static final int DRIVER_VERSION_BUFFER = 80;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIB = NvidiaLibraries.open(NvidiaLibraries.NVML);

    private static final MethodHandle nvmlErrorString = LINKER.downcallHandle(symbol("nvmlErrorString"),
            FunctionDescriptor.of(ADDRESS, JAVA_INT));
    private static final MethodHandle nvmlInit = bind("nvmlInit_v2");
    private static final MethodHandle nvmlShutdown = bind("nvmlShutdown");
    private static final MethodHandle nvmlSystemGetDriverVersion = bind("nvmlSystemGetDriverVersion", ADDRESS, JAVA_INT);
    private static final MethodHandle nvmlDeviceGetCount = bind("nvmlDeviceGetCount_v2", ADDRESS);
    private static final MethodHandle nvmlDeviceGetHandleByIndex = bind("nvmlDeviceGetHandleByIndex_v2", JAVA_INT, ADDRESS);
    private static final MethodHandle nvmlDeviceGetName = bind("nvmlDeviceGetName", ADDRESS, ADDRESS, JAVA_INT);
    /** {@code (device, unsigned int *milliwatts)}. */
    static final MethodHandle nvmlDeviceGetPowerUsage = bind("nvmlDeviceGetPowerUsage", ADDRESS, ADDRESS);
    /** {@code (device, unsigned long long *millijoules)}: the board's energy since the driver loaded; Volta and newer. */
    static final MethodHandle nvmlDeviceGetTotalEnergyConsumption = bind("nvmlDeviceGetTotalEnergyConsumption", ADDRESS, ADDRESS);
    /** {@code (device, nvmlUtilization_t *)}: {@code {unsigned int gpu; unsigned int memory;}}, percent over the last sample period. */
    static final MethodHandle nvmlDeviceGetUtilizationRates = bind("nvmlDeviceGetUtilizationRates", ADDRESS, ADDRESS);
    /** {@code (device, nvmlMemory_t *)}: {@code {unsigned long long total, free, used;}} in bytes. */
    static final MethodHandle nvmlDeviceGetMemoryInfo = bind("nvmlDeviceGetMemoryInfo", ADDRESS, ADDRESS);
    /**
     * {@code (device, nvmlTemperature_v1_t *)}: {@code {unsigned int version; nvmlTemperatureSensors_t sensorType; int
     * temperature;}}; in drivers since CUDA 12.6, null in older ones.
     */
    static final MethodHandle nvmlDeviceGetTemperatureV = bindIfPresent("nvmlDeviceGetTemperatureV", ADDRESS, ADDRESS);
    /** {@code (device, nvmlTemperatureSensors_t, unsigned int *celsius)}: deprecated since CUDA 13.0, for older drivers. */
    static final MethodHandle nvmlDeviceGetTemperature = bindIfPresent("nvmlDeviceGetTemperature", ADDRESS, JAVA_INT, ADDRESS);
    /** {@code nvmlTemperature_v1}: the struct's size with version 1 in the top byte, as NVML_STRUCT_VERSION makes it. */
    static final int TEMPERATURE_V1 = 12 | 1 << 24;

    private Nvml() {
    }

    private static MemorySegment symbol(String name) {
        return LIB.find(name).orElseThrow(() ->
                new IllegalStateException("libnvidia-ml has no symbol " + name + " (driver too old?)"));
    }

    /** A handle for {@code nvmlReturn_t name(args...)}, the shape of every NVML entry point. */
    private static MethodHandle bind(String name, MemoryLayout... args) {
        return LINKER.downcallHandle(symbol(name), FunctionDescriptor.of(JAVA_INT, args));
    }

    /** As {@link #bind}, or null where this driver's NVML lacks the function. */
    private static MethodHandle bindIfPresent(String name, MemoryLayout... args) {
        return LIB.find(name).map(symbol -> LINKER.downcallHandle(symbol, FunctionDescriptor.of(JAVA_INT, args))).orElse(null);
    }

    /** Throws {@link NvmlException} unless {@code result} is NVML_SUCCESS. */
    static void check(int result, String call) {
        if (result != SUCCESS) {
            throw new NvmlException(call, result, errorString(result));
        }
    }

    static String errorString(int result) {
        try {
            MemorySegment text = (MemorySegment) nvmlErrorString.invokeExact(result);
            return text.equals(MemorySegment.NULL) ? "unknown nvmlReturn_t" : text.reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "unknown nvmlReturn_t";
        }
    }

    /** Initialises NVML; every call is matched by one {@link #shutdown()} (NVML counts them). */
    static void init() {
        try {
            check((int) nvmlInit.invokeExact(), "nvmlInit_v2");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void shutdown() {
        try {
            check((int) nvmlShutdown.invokeExact(), "nvmlShutdown");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static String driverVersion() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(DRIVER_VERSION_BUFFER);
            check((int) nvmlSystemGetDriverVersion.invokeExact(out, DRIVER_VERSION_BUFFER), "nvmlSystemGetDriverVersion");
            return out.getString(0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static int deviceCount() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) nvmlDeviceGetCount.invokeExact(out), "nvmlDeviceGetCount_v2");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    /** The opaque {@code nvmlDevice_t} of GPU {@code index}, in NVML's (PCI bus) order. */
    static MemorySegment deviceHandle(int index) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) nvmlDeviceGetHandleByIndex.invokeExact(index, out), "nvmlDeviceGetHandleByIndex_v2(" + index + ")");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static String deviceName(MemorySegment device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(NAME_BUFFER);
            check((int) nvmlDeviceGetName.invokeExact(device, out, NAME_BUFFER), "nvmlDeviceGetName");
            return out.getString(0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }
}
