package dev.ember.nativelib;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Finds and opens the NVIDIA libraries: the one place that looks them up, for the CUDA backend (the driver,
 * cuBLASLt, CUPTI), the GPU monitor (NVML) and {@link Nvtx}. Not every GPU host lists them in the dynamic loader's cache, so
 * the usual install locations are searched first; {@value #DIR_VARIABLE} names one more folder, searched
 * before all others, for unusual installs. Each library is opened once, for the life of the process.
 */
public final class NvidiaLibraries {
    /** A folder holding libcuda / libcublasLt, searched first. */
    static final String DIR_VARIABLE = "EMBER_CUDA_LIB_DIR";

    /** The driver API, installed with the NVIDIA driver itself. */
    public static final List<String> DRIVER = List.of("libcuda.so.1");
    /** cuBLASLt of CUDA 13, or of CUDA 12, whose matmul API is the same. */
    public static final List<String> CUBLAS_LT = List.of("libcublasLt.so.13", "libcublasLt.so.12");
    /** NVML, the driver's management library (power, energy, utilisation, memory, temperature). */
    public static final List<String> NVML = List.of("libnvidia-ml.so.1");
    /** CUPTI, the toolkit's profiling interface: the device's start and end of every kernel ({@code --kernel-timeline}). */
    public static final List<String> CUPTI = List.of("libcupti.so.13", "libcupti.so.12");
    /** NVTX v3 as a shared library (CUDA 13's toolkit ships it): ranges for Nsight Systems. */
    static final List<String> NVTX = List.of("libnvtx3interop.so.1");

    private static final Map<List<String>, Opened> OPENED = new ConcurrentHashMap<>();

    /** A library opened for good, or why it could not be. */
    private record Opened(SymbolLookup lookup, String where, String failure) {
    }

    private NvidiaLibraries() {
    }

    /** The folders searched, in order. */
    static List<Path> searchPath() {
        LinkedHashSet<Path> dirs = new LinkedHashSet<>();
        String override = System.getenv(DIR_VARIABLE);
        if (override != null && !override.isBlank()) {
            dirs.add(Path.of(override));
        }
        String cudaHome = System.getenv("CUDA_HOME");
        if (cudaHome != null && !cudaHome.isBlank()) {
            dirs.add(Path.of(cudaHome, "lib64"));
            dirs.add(Path.of(cudaHome, "targets", "x86_64-linux", "lib"));
            dirs.add(Path.of(cudaHome, "extras", "CUPTI", "lib64"));
        }
        for (String d : List.of("/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/nvidia/lib64",
                "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
                "/usr/local/cuda-13.0/targets/x86_64-linux/lib", "/usr/local/cuda-12/targets/x86_64-linux/lib",
                "/usr/local/cuda/extras/CUPTI/lib64", "/usr/local/cuda/lib", "/usr/local/cuda-13.0/lib")) {
            dirs.add(Path.of(d));
        }
        return List.copyOf(dirs);
    }

    /** Opens the first of {@code names} found, or throws {@link IllegalStateException} saying where it looked. */
    public static SymbolLookup open(List<String> names) {
        Opened o = OPENED.computeIfAbsent(names, NvidiaLibraries::tryOpen);
        if (o.lookup() == null) {
            throw new IllegalStateException(o.failure());
        }
        return o.lookup();
    }

    /** Where the library was opened from, if it was. */
    public static Optional<String> location(List<String> names) {
        Opened o = OPENED.computeIfAbsent(names, NvidiaLibraries::tryOpen);
        return Optional.ofNullable(o.where());
    }

    private static Opened tryOpen(List<String> names) {
        List<String> errors = new ArrayList<>();
        for (String name : names) {
            for (Path dir : searchPath()) {
                Path file = dir.resolve(name);
                if (Files.exists(file)) {
                    try {
                        return new Opened(SymbolLookup.libraryLookup(file, Arena.global()), file.toString(), null);
                    } catch (IllegalArgumentException e) {
                        errors.add(file + ": " + e.getMessage());
                    }
                }
            }
        }
        // Last, the dynamic loader's own search (LD_LIBRARY_PATH, the ldconfig cache).
        for (String name : names) {
            try {
                return new Opened(SymbolLookup.libraryLookup(name, Arena.global()), name + " (dynamic loader)", null);
            } catch (IllegalArgumentException e) {
                // not there either; reported below
            }
        }
        String tried = String.join(" or ", names) + " not found in " + searchPath().size()
                + " usual folders nor by the dynamic loader (set " + DIR_VARIABLE + " to its folder)";
        return new Opened(null, null, errors.isEmpty() ? tried : tried + "; " + String.join("; ", errors));
    }

    /**
     * Rethrows what a downcall into one of these libraries threw: Ember's own exceptions (and errors) as they are,
     * anything else wrapped. {@code invokeExact} declares Throwable; every binding funnels it through here.
     */
    public static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw new IllegalStateException("native call failed", t);
    }
}
