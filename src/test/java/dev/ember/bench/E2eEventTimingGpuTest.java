package dev.ember.bench;

import dev.ember.model.Biases;
import dev.ember.trace.Trace;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.WorkMarks;
import dev.ember.backend.cuda.Availability;
import dev.ember.backend.cuda.CudaBackend;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.model.RopeScaling;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code bench e2e} on the GPU times its runs with CUDA events on the runner's stream; the same runs timed with the host
 * clock at the same points must agree within a loose bound (each step is synchronous, so the two differ by the launch
 * latency of the first event and the host's wake-up after the last).
 */
class E2eEventTimingGpuTest {
    private static final ModelConfig CONFIG = new ModelConfig(Architecture.LLAMA, 256, 512, 3, 8, 2, 32, 1000, 512, 1e-5,
            500000, new RopeScaling.None(), false, Biases.NONE, 0, 1, List.of(2), DType.BF16);

    @Test
    void eventTimedFiguresAgreeWithTheHostClock() {
        Availability gpu = CudaBackend.availability();
        if (!gpu.isAvailable()) {
            System.out.println("[gpu] E2eEventTimingGpuTest skipped, no usable GPU: " + gpu.reason());
        }
        assumeTrue(gpu.isAvailable(), () -> "no usable GPU: " + gpu.reason());
        E2eBenchCommand e2e = new E2eBenchCommand();
        new CommandLine(e2e).parseArgs("--prompt-len", "64", "--gen-len", "32", "--chunk-len", "32", "--decode-batch", "2");
        int points = E2eBenchCommand.Point.values().length;
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, 256, 16), 3)) {
            runner.warmUp(2, 64, 96);
            for (int run = 0; run < 4; run++) {
                try (WorkMarks events = runner.workMarks(points); WorkMarks host = WorkMarks.onHost(points)) {
                    assertEquals("CUDA events on the runner's stream", events.method());
                    E2eBenchCommand.Run timed = e2e.runOnce(runner, new SplittableRandom(run), StepSpans.OFF, both(events, host), Trace.OFF);
                    if (run == 0) {
                        continue;  // the first run captures graphs
                    }
                    int start = E2eBenchCommand.Point.START.ordinal(), prefilled = E2eBenchCommand.Point.PREFILLED.ordinal();
                    int end = E2eBenchCommand.Point.END.ordinal();
                    double hostPrefill = host.millisBetween(start, prefilled), hostDecode = host.millisBetween(prefilled, end);
                    System.out.printf("[gpu] e2e run %d: prefill %.3f ms by events, %.3f by the host; decode %.3f / %.3f%n",
                            run, timed.prefillMs(), hostPrefill, timed.decodeMs(), hostDecode);
                    assertTrue(timed.prefillMs() > 0 && timed.decodeMs() > 0 && timed.ttftMs() > 0, timed.toString());
                    assertTrue(timed.ttftMs() <= timed.prefillMs() + 1e-3, timed.toString());
                    assertTrue(Math.abs(timed.prefillMs() - hostPrefill) <= 0.2 * hostPrefill + 0.5, "prefill " + timed);
                    assertTrue(Math.abs(timed.decodeMs() - hostDecode) <= 0.1 * hostDecode + 0.5, "decode " + timed);
                }
            }
        }
    }

    /** Marks both clocks at each point; figures come from the first. */
    private static WorkMarks both(WorkMarks device, WorkMarks host) {
        return new WorkMarks() {
            @Override
            public void mark(int point) {
                device.mark(point);
                host.mark(point);
            }

            @Override
            public double millisBetween(int from, int to) {
                return device.millisBetween(from, to);
            }

            @Override
            public String method() {
                return device.method();
            }

            @Override
            public void close() {
            }
        };
    }
}
