package dev.ember.backend.cuda;

import dev.ember.backend.DeviceLink;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static dev.ember.cli.GenerateCommandTest.ember;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The copies {@code ember bench p2p} times, within one GPU (its own peer; two GPUs where the host has them): both
 * methods and both directions carry the bytes whole, and the command writes a row per size, direction and method.
 */
class CudaDeviceLinkTest {

    @Test
    void everyMethodAndDirectionCarriesTheBytesWhole() {
        Gpu.context();
        int second = Driver.deviceCount() > 1 ? 1 : 0;
        long bytes = 3 << 20;
        try (CudaDeviceLink link = CudaDeviceLink.open(0, second, bytes); Arena arena = Arena.ofConfined()) {
            System.out.println("[gpu-check] link: " + link.describe());
            for (DeviceLink.Method method : DeviceLink.Method.values()) {
                for (boolean forward : new boolean[] {true, false}) {
                    MemorySegment sent = arena.allocate(bytes), received = arena.allocate(bytes);
                    SplittableRandom random = new SplittableRandom(bytes + method.ordinal() * 2 + (forward ? 1 : 0));
                    for (long i = 0; i < bytes; i += 4) {
                        sent.set(ValueLayout.JAVA_INT, i, random.nextInt());
                    }
                    link.context(forward).makeCurrent();
                    link.buffer(forward).copyFromHost(sent);
                    double micros = link.copyMicros(bytes, method, forward, 2);
                    link.context(!forward).makeCurrent();
                    link.buffer(!forward).copyToHost(received);
                    assertArrayEquals(sent.toArray(ValueLayout.JAVA_BYTE), received.toArray(ValueLayout.JAVA_BYTE),
                            method + (forward ? " a2b" : " b2a"));
                    System.out.printf("[gpu-check] %s %s: 3 MiB in %.1f us (%.1f GB/s)%n", method.label(),
                            forward ? "a2b" : "b2a", micros, bytes / micros / 1e3);
                    assertTrue(micros > 0 && Double.isFinite(micros));
                }
            }
        }
        Gpu.context();
    }

    @Test
    void theCommandWritesARowPerSizeDirectionAndMethod() {
        Gpu.context();
        var run = ember("bench", "p2p", "--gpus", "0,0", "--sizes", "1k,1m", "--iters", "3", "--warmup", "1");
        assertEquals(0, run.exitCode(), run.err());
        long rows = run.out().lines().filter(l -> l.matches("^(1024|1048576)\\s+.*")).count();
        assertEquals(8, rows, run.out());
        Gpu.context();
    }
}
