package dev.ember.nativelib;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class ThreadNicenessTest {
    /** The calling thread's nice value as the kernel reports it: field 19 of /proc/thread-self/stat. */
    private static int kernelNiceness() throws IOException {
        String stat = Files.readString(Path.of("/proc/thread-self/stat"));
        String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Integer.parseInt(fields[16]);  // fields from the state (field 3) on: nice is field 19
    }

    @Test
    void raisesTheCallingThreadsNiceValueAndNoOtherThreads() throws Exception {
        assumeTrue(Files.exists(Path.of("/proc/thread-self/stat")), "Linux only");
        int before = kernelNiceness();
        AtomicReference<int[]> seen = new AtomicReference<>();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread worker = Thread.ofPlatform().start(() -> {
            try {
                boolean set = ThreadNiceness.setForCurrentThread(Math.max(before, 7));
                seen.set(new int[] {set ? 1 : 0, kernelNiceness()});
            } catch (Throwable e) {
                failure.set(e);
            }
        });
        worker.join();
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
        assertEquals(1, seen.get()[0], "setpriority on the thread's id succeeded");
        assertEquals(Math.max(before, 7), seen.get()[1], "the worker's nice value");
        assertEquals(before, kernelNiceness(), "the calling thread's own nice value is untouched");
    }

    @Test
    void refusesValuesOutsideTheRange() {
        assertThrows(IllegalArgumentException.class, () -> ThreadNiceness.setForCurrentThread(-1));
        assertThrows(IllegalArgumentException.class, () -> ThreadNiceness.setForCurrentThread(20));
    }
}
