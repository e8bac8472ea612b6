package dev.ember.backend.cuda;

import dev.ember.model.DType;
import dev.ember.nativelib.NvidiaLibraries;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The driver bindings: device query, copies, pinned memory, events, graphs, and how failures read. */
class CudaDriverTest {
    private final Random random = new Random();

    @Test
    void availabilityAnswersWithoutThrowing() {
        Availability a = Availability.current();
        System.out.println("[gpu] " + a);
        assertTrue(a.isAvailable() ? a.reason() == null && a.device() != null
                : a.device() == null && !a.reason().isBlank() && !a.reason().contains("\n"));
    }

    @Test
    void describesTheDevice() {
        CudaContext context = Gpu.context();
        CudaDevice d = context.device();
        CudaContext.MemoryInfo memory = context.memoryInfo();
        System.out.println("[gpu-check] device " + d.describe() + ", driver " + Driver.driverVersion() + ", free "
                + memory.free() / (1 << 20) + " MiB of " + memory.total() / (1 << 20)
                + ", libcuda " + NvidiaLibraries.location(NvidiaLibraries.DRIVER).orElseThrow()
                + ", cuBLASLt " + NvidiaLibraries.location(NvidiaLibraries.CUBLAS_LT).orElseThrow());
        assertTrue(!d.name().isBlank() && d.multiprocessors() > 0 && d.computeMajor() >= 8);
        assertTrue(memory.free() > 0 && memory.free() <= memory.total() && memory.total() <= d.totalMemory());
    }

    @Test
    void copiesRoundTripThroughDeviceAndPinnedMemory() {
        Gpu.context();
        int n = 3 << 20;
        byte[] data = new byte[n];
        random.nextBytes(data);
        try (Arena arena = Arena.ofConfined(); DeviceBuffer a = DeviceBuffer.allocate(n); DeviceBuffer b = DeviceBuffer.allocate(n);
             PinnedBuffer pinned = PinnedBuffer.allocate(n); CudaStream stream = CudaStream.create()) {
            a.copyFromHost(arena.allocateFrom(ValueLayout.JAVA_BYTE, data));
            Driver.memcpyDtoDAsync(b.address(), a.address(), n, stream.handle());
            b.copyToHostAsync(pinned.segment(), stream);
            stream.synchronize();
            assertArrayEquals(data, pinned.segment().toArray(ValueLayout.JAVA_BYTE));
            // And back up from pinned memory, at an offset.
            MemorySegment half = pinned.segment().asSlice(0, n / 2);
            a.copyFromHostAsync(half, n / 2, stream);
            MemorySegment back = arena.allocate(n);
            stream.synchronize();
            a.copyToHost(back);
            assertArrayEquals(java.util.Arrays.copyOf(data, n / 2), back.asSlice(n / 2, n / 2).toArray(ValueLayout.JAVA_BYTE));
        }
    }

    @Test
    void failuresNameTheCallAndTheCudaError() {
        Gpu.context();
        CudaException e = assertThrows(CudaException.class, () -> DeviceBuffer.allocate(1L << 50).close());
        System.out.println("[gpu-check] an impossible allocation reads: " + e.getMessage());
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", e.errorName());
        assertTrue(e.getMessage().startsWith("cuMemAlloc"), e.getMessage());
    }

    @Test
    void eventsTimeWorkAndGraphsReplayItWithFreshInputs() {
        Gpu.context();
        int vocab = 500, hidden = 256, rows = 8;
        float[] table = Gpu.random(random, DType.BF16, vocab * hidden, 1.0);
        try (EmberKernels kernels = EmberKernels.load(Gpu.context().device()); CudaStream stream = CudaStream.create();
             CudaEvent start = CudaEvent.create(); CudaEvent end = CudaEvent.create();
             DeviceBuffer t = Gpu.upload(DType.BF16, table); DeviceBuffer tokens = DeviceBuffer.allocate(4L * rows);
             DeviceBuffer out = DeviceBuffer.allocate(4L * rows * hidden);
             PinnedBuffer staging = PinnedBuffer.allocate(4L * rows)) {
            Runnable step = () -> kernels.embeddingGather(stream, DType.BF16, t.address(), tokens.address(), out.address(), rows, hidden);
            try (CudaGraph graph = CudaGraph.capture(stream, step)) {
                for (int replay = 0; replay < 3; replay++) {
                    int[] ids = random.ints(rows, 0, vocab).toArray();
                    MemorySegment.copy(ids, 0, staging.segment(), ValueLayout.JAVA_INT, 0, rows);
                    tokens.copyFromHostAsync(staging.segment(), 0, stream);
                    start.record(stream);
                    graph.launch(stream);
                    end.record(stream);
                    end.synchronize();
                    float millis = end.elapsedMillisSince(start);
                    assertTrue(millis >= 0 && millis < 1000, "elapsed " + millis + " ms");
                    float[] got = Gpu.download(out, DType.F32, rows * hidden);
                    for (int r = 0; r < rows; r++) {
                        for (int i = 0; i < hidden; i++) {
                            assertEquals(table[ids[r] * hidden + i], got[r * hidden + i], "replay " + replay + " row " + r);
                        }
                    }
                }
            }
            System.out.println("[gpu-check] graph capture and replay: 3 replays, each with new device inputs, correct");
        }
    }
}
