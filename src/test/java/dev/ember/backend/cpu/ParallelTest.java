package dev.ember.backend.cpu;

import org.junit.jupiter.api.Test;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The thread team computes every index of a range exactly once, on several threads, whoever calls it and however. */
class ParallelTest {

    @Test
    void everyIndexOnceOverManyRangesOnSeveralThreads() throws InterruptedException {
        try (Parallel team = new Parallel(3, () -> { })) {
            Set<String> threads = ConcurrentHashMap.newKeySet();
            for (int round = 0; round < 2000; round++) {
                int n = 1 + round % 97 * 13;
                AtomicIntegerArray seen = new AtomicIntegerArray(n);
                team.forRange(n, 4, (from, to) -> {
                    threads.add(Thread.currentThread().getName());
                    for (int i = from; i < to; i++) {
                        seen.incrementAndGet(i);
                    }
                });
                for (int i = 0; i < n; i++) {
                    assertEquals(1, seen.get(i), "round " + round + ", index " + i + " of " + n);
                }
                if (round == 1000) {
                    Thread.sleep(2 * Parallel.SPIN_NANOS / 1_000_000 + 5);  // the workers park, and must wake for the next
                }
            }
            assertTrue(threads.size() > 1, "only " + threads + " computed");
        }
    }

    @Test
    void aFailingPieceFailsTheRangeAndTheTeamRunsOn() {
        try (Parallel team = new Parallel(2, () -> { })) {
            IllegalStateException failure = new IllegalStateException("piece failed");
            assertSame(failure, assertThrows(IllegalStateException.class, () -> team.forRange(100, 1, (from, to) -> {
                if (from <= 50 && 50 < to) {
                    throw failure;
                }
            })));
            AtomicIntegerArray seen = new AtomicIntegerArray(100);
            team.forRange(100, 1, (from, to) -> {
                for (int i = from; i < to; i++) {
                    seen.incrementAndGet(i);
                }
            });
            for (int i = 0; i < 100; i++) {
                assertEquals(1, seen.get(i));
            }
        }
    }

    /** A range inside a range, and ranges from two callers at once, are computed whole (the inner or later one alone). */
    @Test
    void nestedRangesAndConcurrentCallersAreComputedWhole() throws Exception {
        try (Parallel team = new Parallel(2, () -> { })) {
            AtomicIntegerArray seen = new AtomicIntegerArray(64 * 64);
            team.forRange(64, 1, (from, to) -> {
                for (int row = from; row < to; row++) {
                    int base = row * 64;
                    team.forRange(64, 1, (a, b) -> {
                        for (int i = a; i < b; i++) {
                            seen.incrementAndGet(base + i);
                        }
                    });
                }
            });
            for (int i = 0; i < seen.length(); i++) {
                assertEquals(1, seen.get(i), "nested index " + i);
            }
            AtomicIntegerArray shared = new AtomicIntegerArray(2 * 5000);
            CountDownLatch start = new CountDownLatch(1);
            Thread[] callers = new Thread[2];
            for (int c = 0; c < callers.length; c++) {
                int offset = c * 5000;
                callers[c] = Thread.ofPlatform().start(() -> {
                    try {
                        start.await();
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                    for (int round = 0; round < 50; round++) {
                        team.forRange(5000, 16, (a, b) -> {
                            for (int i = a; i < b; i++) {
                                shared.incrementAndGet(offset + i);
                            }
                        });
                    }
                });
            }
            start.countDown();
            for (Thread t : callers) {
                t.join();
            }
            for (int i = 0; i < shared.length(); i++) {
                assertEquals(50, shared.get(i), "concurrent index " + i);
            }
        }
    }
}
