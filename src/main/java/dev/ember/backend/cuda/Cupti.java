package dev.ember.backend.cuda;

import dev.ember.EmberException;
import dev.ember.backend.KernelRecorder;
import dev.ember.backend.KernelSpan;
import dev.ember.nativelib.NvidiaLibraries;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * CUPTI's activity API (libcupti), bound through java.lang.foreign, for one thing: the device's start and end of every
 * kernel ({@code CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL}, which leaves kernels overlapping as they would), captured
 * graphs' nodes included. CUPTI asks for buffers and hands them back full, from its own thread or from a flush, through
 * two callbacks registered once a process; each record is read there ({@link KernelActivity}) and the buffer freed.
 * Every failing call throws a {@link CudaException} naming it.
 */
final class Cupti {
    private static final int SUCCESS = 0, FLUSH_FORCED = 1;
    /** Bytes of each buffer handed to CUPTI; records are 8-byte aligned in it. */
    private static final long BUFFER_BYTES = 8L << 20;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIB = NvidiaLibraries.open(NvidiaLibraries.CUPTI);
    private static final MethodHandle cuptiActivityEnable = bind("cuptiActivityEnable", JAVA_INT);
    private static final MethodHandle cuptiActivityDisable = bind("cuptiActivityDisable", JAVA_INT);
    private static final MethodHandle cuptiActivityRegisterCallbacks = bind("cuptiActivityRegisterCallbacks", ADDRESS, ADDRESS);
    private static final MethodHandle cuptiActivityGetNextRecord = bind("cuptiActivityGetNextRecord", ADDRESS, JAVA_LONG, ADDRESS);
    private static final MethodHandle cuptiActivityFlushAll = bind("cuptiActivityFlushAll", JAVA_INT);
    private static final MethodHandle cuptiGetResultString = bind("cuptiGetResultString", JAVA_INT, ADDRESS);

    /** The buffers CUPTI holds, by address, each with the arena that frees it. */
    private static final Map<Long, Arena> BUFFERS = new HashMap<>();
    /** The kernels read from completed buffers since the recorder opened; null while none records. */
    private static List<KernelSpan> recorded;
    private static boolean registered;

    private Cupti() {
    }

    /**
     * Starts recording kernels; one recorder at a time in a process. Before {@link KernelRecorder#stop}, {@code
     * synchronize} is run: what the device queued must be done before the last buffers are flushed.
     */
    static KernelRecorder start(Runnable synchronize) {
        synchronized (Cupti.class) {
            if (recorded != null) {
                throw new EmberException("a kernel timeline is already being recorded");
            }
            register();
            recorded = new ArrayList<>();
        }
        try {
            call(cuptiActivityEnable, KernelActivity.KIND_CONCURRENT_KERNEL, "cuptiActivityEnable(CONCURRENT_KERNEL)");
        } catch (RuntimeException e) {
            synchronized (Cupti.class) {
                recorded = null;
            }
            throw e;
        }
        return new KernelRecorder() {
            private boolean stopped;

            @Override
            public List<KernelSpan> stop() {
                if (stopped) {
                    throw new IllegalStateException("this kernel timeline was stopped already");
                }
                stopped = true;
                synchronize.run();
                return Cupti.stop();
            }

            @Override
            public void close() {
                if (!stopped) {
                    stop();
                }
            }
        };
    }

    /** Registers the buffer callbacks, once a process (the caller holds the class's lock). */
    private static void register() {
        if (!registered) {
            FunctionDescriptor requested = FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS);
            FunctionDescriptor completed = FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG);
            try {
                MethodHandles.Lookup lookup = MethodHandles.lookup();
                MemorySegment onRequest = LINKER.upcallStub(lookup.findStatic(Cupti.class, "bufferRequested",
                        MethodType.methodType(void.class, MemorySegment.class, MemorySegment.class, MemorySegment.class)),
                        requested, Arena.global());
                MemorySegment onComplete = LINKER.upcallStub(lookup.findStatic(Cupti.class, "bufferCompleted",
                        MethodType.methodType(void.class, MemorySegment.class, int.class, MemorySegment.class, long.class, long.class)),
                        completed, Arena.global());
                check((int) cuptiActivityRegisterCallbacks.invokeExact(onRequest, onComplete), "cuptiActivityRegisterCallbacks");
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            } catch (Throwable t) {
                throw NvidiaLibraries.rethrow(t);
            }
            registered = true;
        }
    }

    /** Flushes every buffer (the device's work so far must be done: the caller synchronizes first) and stops recording. */
    private static List<KernelSpan> stop() {
        List<KernelSpan> kernels;
        try {
            call(cuptiActivityFlushAll, FLUSH_FORCED, "cuptiActivityFlushAll");
        } finally {
            try {
                call(cuptiActivityDisable, KernelActivity.KIND_CONCURRENT_KERNEL, "cuptiActivityDisable(CONCURRENT_KERNEL)");
            } finally {
                synchronized (Cupti.class) {  // a failed flush or disable still lets the next recorder start
                    kernels = recorded;
                    recorded = null;
                }
            }
        }
        kernels.sort(Comparator.comparingLong(KernelSpan::startNanos));
        return kernels;
    }

    /** CUPTI asks for a buffer: {@code *buffer}, {@code *size}, {@code *maxRecords} (0: as many as fit). Never throws. */
    private static void bufferRequested(MemorySegment buffer, MemorySegment size, MemorySegment maxRecords) {
        try {
            Arena arena = Arena.ofShared();
            MemorySegment b = arena.allocate(BUFFER_BYTES, 8);
            synchronized (Cupti.class) {
                BUFFERS.put(b.address(), arena);
            }
            buffer.reinterpret(ADDRESS.byteSize()).set(ADDRESS, 0, b);
            size.reinterpret(8).set(JAVA_LONG, 0, BUFFER_BYTES);
            maxRecords.reinterpret(8).set(JAVA_LONG, 0, 0L);
        } catch (Throwable t) {  // an exception may not leave an upcall: CUPTI then records nothing more
            buffer.reinterpret(ADDRESS.byteSize()).set(ADDRESS, 0, MemorySegment.NULL);
            size.reinterpret(8).set(JAVA_LONG, 0, 0L);
        }
    }

    /** CUPTI hands back a buffer holding {@code validSize} bytes of records: the kernels are read and it is freed. */
    private static void bufferCompleted(MemorySegment context, int stream, MemorySegment buffer, long size, long validSize) {
        try (Arena scratch = Arena.ofConfined()) {
            MemorySegment record = scratch.allocate(ADDRESS);
            List<KernelSpan> kernels = new ArrayList<>();
            // Records until CUPTI says there are no more (CUPTI_ERROR_MAX_LIMIT_REACHED) or one cannot be read.
            while ((int) cuptiActivityGetNextRecord.invokeExact(buffer, validSize, record) == SUCCESS) {
                KernelSpan k = KernelActivity.read(record.get(ADDRESS, 0));
                if (k != null) {
                    kernels.add(k);
                }
            }
            synchronized (Cupti.class) {
                if (recorded != null) {
                    recorded.addAll(kernels);
                }
            }
        } catch (Throwable t) {
            // an exception may not leave an upcall; the buffer's records are lost
        } finally {
            Arena arena;
            synchronized (Cupti.class) {
                arena = BUFFERS.remove(buffer.address());
            }
            if (arena != null) {
                arena.close();
            }
        }
    }

    private static void call(MethodHandle h, int argument, String what) {
        try {
            check((int) h.invokeExact(argument), what);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    private static void check(int result, String what) {
        if (result != SUCCESS) {
            throw new CudaException(what, result, resultName(result));
        }
    }

    private static String resultName(int result) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment text = arena.allocate(ADDRESS);
            if ((int) cuptiGetResultString.invokeExact(result, text) == SUCCESS) {
                return text.get(ADDRESS, 0).reinterpret(Long.MAX_VALUE).getString(0);
            }
        } catch (Throwable t) {
            // fall through to the number
        }
        return "CUPTI error " + result;
    }

    private static MethodHandle bind(String name, MemoryLayout... args) {
        MemorySegment symbol = LIB.find(name).orElseThrow(() -> new IllegalStateException("libcupti has no symbol " + name));
        return LINKER.downcallHandle(symbol, FunctionDescriptor.of(JAVA_INT, args));
    }
}
