package dev.ember.bench;

import dev.ember.EmberException;
import dev.ember.backend.Backends;
import dev.ember.backend.DeviceLink;
import dev.ember.cli.ConsoleProgress;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static dev.ember.cli.GenerateCommandTest.assertOneLineError;
import static dev.ember.cli.GenerateCommandTest.ember;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ember bench p2p}: seed 000's options and columns, a row per size, direction and method, each the median of
 * its batches; without a GPU one line says why (the copies themselves are timed by the GPU suite).
 */
class P2pBenchCommandTest {

    @Test
    void sizesTakeBinarySuffixesAndBadOptionsAreSaid() {
        assertEquals(List.of(1024L, 10L << 20, 2L << 30, 7L), P2pBenchCommand.parseSizes("1k, 10m,2G,7"));
        assertTrue(assertThrows(EmberException.class, () -> P2pBenchCommand.parseSizes("1k,x")).getMessage().contains("x"));
        assertTrue(assertThrows(EmberException.class, () -> P2pBenchCommand.parseSizes("0")).getMessage().contains("at least one byte"));
        assertEquals(List.of(0, 1), List.of(P2pBenchCommand.parseGpus("0,1")[0], P2pBenchCommand.parseGpus("0,1")[1]));
        assertThrows(EmberException.class, () -> P2pBenchCommand.parseGpus("0"));
        assertThrows(EmberException.class, () -> P2pBenchCommand.methods("nvlink"));
        assertThrows(EmberException.class, () -> P2pBenchCommand.directions("up"));
    }

    @Test
    void aRowPerSizeDirectionAndMethodWithTheMedianOfItsBatches() {
        P2pBenchCommand command = new P2pBenchCommand();
        command.iters = 3;
        command.warmup = 1;
        FakeLink link = new FakeLink();
        ResultTable table = command.measure(link, List.of(1024L, 1L << 20), P2pBenchCommand.methods("both"),
                P2pBenchCommand.directions("both"), new ConsoleProgress(new PrintStream(new ByteArrayOutputStream())));
        assertEquals(P2pBenchCommand.COLUMNS, table.columns());
        assertEquals(8, table.rows().size());
        assertEquals(2 * 2 * 2 * (1 + 3), link.calls.size(), "a warm-up batch and three timed ones each");
        List<Object> first = table.rows().getFirst();
        assertEquals(1024L, first.get(0));
        // The fake's batches take 1, 2, 3 us a copy after the warm-up: the median is 2 us, 1024 bytes / 2 us = 0.512 GB/s.
        assertEquals(2.0, (double) first.get(1), 1e-9);
        assertEquals(0.512, (double) first.get(2), 1e-9);
        assertEquals(List.of("a2b", "p2p"), first.subList(3, 5));
        assertEquals(List.of("b2a", "staged"), table.rows().get(3).subList(3, 5));
    }

    @Test
    void withoutAGpuOneLineSaysWhy() {
        Assumptions.assumeTrue(Backends.whyNotGpu() != null, "a GPU is here: CudaDeviceLinkTest runs the command");
        assertOneLineError(ember("bench", "p2p", "--sizes", "1k"), "bench p2p measures copies between GPUs");
    }

    /** Batches taking 9 us (warm-up), then 1, 2, 3 us a copy, again for each row. */
    private static final class FakeLink implements DeviceLink {
        final List<String> calls = new ArrayList<>();

        @Override
        public String describe() {
            return "fake";
        }

        @Override
        public boolean peerToPeer() {
            return true;
        }

        @Override
        public double copyMicros(long bytes, Method method, boolean forward, int copies) {
            calls.add(bytes + " " + method + " " + forward);
            int inRow = (calls.size() - 1) % 4;
            return inRow == 0 ? 9 : inRow;
        }

        @Override
        public void close() {
        }
    }
}
