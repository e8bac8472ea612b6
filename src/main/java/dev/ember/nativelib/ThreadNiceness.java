package dev.ember.nativelib;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Locale;
import java.util.Optional;

/**
 * The calling thread's nice value, through the C library's {@code setpriority(2)} on the thread's own id (Linux
 * schedules threads as tasks, each with a nice value of its own). Threads that do bulk computation raise theirs, so that
 * when the cores are contended the threads that answer within a deadline (a server's acceptor and request threads, the
 * JIT compiler that makes them fast) run first, and when nothing else wants the cores the computation runs at full
 * speed as before. Raising one's own nice value needs no privilege. Elsewhere than Linux, or without the calls, it does
 * nothing and says so by its result.
 */
public final class ThreadNiceness {
    private static final int PRIO_PROCESS = 0;
    private static final Optional<Calls> CALLS = lookUp();

    /** {@code int setpriority(int which, id_t who, int prio)} and {@code pid_t gettid(void)}. */
    private record Calls(MethodHandle setpriority, MethodHandle gettid) {
    }

    private ThreadNiceness() {
    }

    /**
     * Sets the calling thread's nice value to {@code niceness} (0 to 19; a thread may raise its own, not lower it
     * without privilege). Returns whether it was set.
     */
    public static boolean setForCurrentThread(int niceness) {
        if (niceness < 0 || niceness > 19) {
            throw new IllegalArgumentException("a nice value a thread may take: 0 to 19, not " + niceness);
        }
        if (CALLS.isEmpty()) {
            return false;
        }
        try {
            int tid = (int) CALLS.get().gettid().invokeExact();
            return (int) CALLS.get().setpriority().invokeExact(PRIO_PROCESS, tid, niceness) == 0;
        } catch (Throwable e) {
            return false;
        }
    }

    private static Optional<Calls> lookUp() {
        if (!System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")) {
            return Optional.empty();
        }
        Linker linker = Linker.nativeLinker();
        SymbolLookup libc = linker.defaultLookup();
        return libc.find("setpriority").flatMap(setpriority -> libc.find("gettid").map(gettid -> new Calls(
                linker.downcallHandle(setpriority, FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT)),
                linker.downcallHandle(gettid, FunctionDescriptor.of(ValueLayout.JAVA_INT)))));
    }
}
