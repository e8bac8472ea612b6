package dev.ember.nativelib;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * NVTX ranges for Nsight Systems, through CUDA 13's {@code libnvtx3interop.so.1} bound with java.lang.foreign: the
 * thread's nested ranges ({@code nvtxRangePushA} / {@code nvtxRangePop}) and instant marks ({@code nvtxMarkA}).
 * Without a tool attached (nsys sets {@value #INJECTION_VARIABLE} to its injection library) the library's functions
 * return at once, so ranges cost a downcall each; {@link #OFF} costs nothing at all.
 *
 * <p>Range names are few and constant (stages, layers, step kinds, kernels): each is copied to native memory once, on
 * its first use, and kept for the life of the process, so pushing a known name allocates nothing.
 */
public final class Nvtx {
    /** The variable through which a tool (nsys, Nsight Compute) injects itself into NVTX. */
    public static final String INJECTION_VARIABLE = "NVTX_INJECTION64_PATH";
    /** What {@code nvtxRangePushA} and {@code nvtxRangePop} return when no tool is attached. */
    public static final int NO_PUSH_POP_TRACKING = -2;

    /** No ranges: every call returns at once. */
    public static final Nvtx OFF = new Nvtx(false);
    private static final Nvtx ON = new Nvtx(true);
    private static final Map<String, MemorySegment> NAMES = new ConcurrentHashMap<>();

    private final boolean enabled;

    private Nvtx(boolean enabled) {
        this.enabled = enabled;
    }

    /**
     * Ranges when {@code requested} or a tool is attached and the library is found; otherwise {@link #OFF}. Says on
     * {@code log}, in one line, which it is whenever ranges were wanted.
     */
    public static Nvtx open(boolean requested, PrintStream log) {
        if (!requested && !toolAttached()) {
            return OFF;
        }
        Optional<String> missing = whyUnavailable();
        if (missing.isPresent()) {
            log.println("ember: NVTX ranges off: " + missing.get());
            return OFF;
        }
        log.println("ember: NVTX ranges on, through " + NvidiaLibraries.location(NvidiaLibraries.NVTX).orElseThrow()
                + (toolAttached() ? " (a tool is attached)" : " (no tool attached: they go nowhere)"));
        return ON;
    }

    /** Whether a tool has asked the NVTX library to call it (nsys profile with NVTX tracing, say). */
    public static boolean toolAttached() {
        String path = System.getenv(INJECTION_VARIABLE);
        return path != null && !path.isBlank();
    }

    /** Why the NVTX library cannot be used here, or empty when it can. */
    public static Optional<String> whyUnavailable() {
        try {
            NvidiaLibraries.open(NvidiaLibraries.NVTX);
            return Optional.empty();
        } catch (IllegalStateException e) {
            return Optional.of(e.getMessage());
        }
    }

    public boolean enabled() {
        return enabled;
    }

    /**
     * Opens a range named {@code name} on the calling thread, nested in the ones open; returns its depth from 0, or
     * {@link #NO_PUSH_POP_TRACKING} without a tool (and when off).
     */
    public int push(String name) {
        if (!enabled) {
            return NO_PUSH_POP_TRACKING;
        }
        try {
            return (int) Binding.nvtxRangePushA.invokeExact(nativeName(name));
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    /** Closes the calling thread's innermost range; returns its depth, or {@link #NO_PUSH_POP_TRACKING}. */
    public int pop() {
        if (!enabled) {
            return NO_PUSH_POP_TRACKING;
        }
        try {
            return (int) Binding.nvtxRangePop.invokeExact();
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    /** Marks an instant named {@code name} on the calling thread's timeline. */
    public void mark(String name) {
        if (!enabled) {
            return;
        }
        try {
            Binding.nvtxMarkA.invokeExact(nativeName(name));
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    private static MemorySegment nativeName(String name) {
        MemorySegment s = NAMES.get(name);
        return s != null ? s : NAMES.computeIfAbsent(name, n -> Arena.global().allocateFrom(n));
    }

    /** The downcall handles, bound on first use so that {@link #OFF} never needs the library. */
    private static final class Binding {
        private static final Linker LINKER = Linker.nativeLinker();
        private static final SymbolLookup LIB = NvidiaLibraries.open(NvidiaLibraries.NVTX);

        /** {@code int nvtxRangePushA(const char *message)}. */
        static final MethodHandle nvtxRangePushA = bind("nvtxRangePushA", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        /** {@code int nvtxRangePop(void)}. */
        static final MethodHandle nvtxRangePop = bind("nvtxRangePop", FunctionDescriptor.of(JAVA_INT));
        /** {@code void nvtxMarkA(const char *message)}. */
        static final MethodHandle nvtxMarkA = bind("nvtxMarkA", FunctionDescriptor.ofVoid(ADDRESS));

        private static MethodHandle bind(String name, FunctionDescriptor descriptor) {
            return LINKER.downcallHandle(LIB.find(name).orElseThrow(() ->
                    new IllegalStateException("libnvtx3interop has no symbol " + name)), descriptor);
        }
    }
}
