package dev.ember.backend.cuda;

import dev.ember.backend.KernelRecorder;
import dev.ember.backend.KernelSpan;
import dev.ember.backend.ModelRunner;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.RequestListener;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.model.RopeScaling;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CUPTI's kernel timeline ({@code --kernel-timeline}): a request of 17 tokens, its prefill launched alone and its 16
 * decode steps replayed from graphs, shows every step's sampling kernel once (17 in all, 16 of them graph nodes), each
 * kernel with a positive duration on the device's clock, in the order they started.
 */
class KernelRecorderGpuTest {
    private static final ModelConfig CONFIG = new ModelConfig(Architecture.LLAMA, 256, 512, 3, 8, 2, 32, 1000, 512, 1e-5,
            500000, new RopeScaling.None(), false, Biases.NONE, 0, 1, List.of(2), DType.BF16);

    @Test
    void everyStepsKernelsAppearWithTheDevicesTimes() {
        Gpu.context();
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(CONFIG, DType.BF16, KvCacheSpec.forTokens(CONFIG, 512, 16), 3)) {
            runner.warmUp(1, 64, 96);
            LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(1, 64, 64, SchedulePolicy.DECODE_FIRST, false, true),
                    Set.of(), null);
            engine.add(new SplittableRandom(4).ints(40, 0, CONFIG.vocabSize()).toArray(), SamplingParams.greedy(17).withIgnoreEos(true),
                    RequestListener.NONE);
            List<KernelSpan> spans;
            try (KernelRecorder recorder = backend.recordKernels()) {
                while (engine.hasWork()) {
                    engine.step();
                }
                spans = recorder.stop();
            }
            long sampling = spans.stream().filter(k -> k.name().equals("sample_tokens")).count();
            long inGraphs = spans.stream().filter(k -> k.name().equals("sample_tokens") && k.graph() != 0).count();
            System.out.printf("[gpu-check] kernel timeline: %d kernels, sample_tokens %d times (%d in graphs), %d distinct%n",
                    spans.size(), sampling, inGraphs, spans.stream().map(KernelSpan::name).distinct().count());
            assertEquals(17, sampling, "one sampling kernel a step");
            assertEquals(16, inGraphs, "the decode steps replay graphs");
            for (int i = 0; i < spans.size(); i++) {
                KernelSpan k = spans.get(i);
                assertTrue(k.durationNanos() > 0 && k.durationNanos() < 1_000_000_000L, k.toString());
                assertTrue(i == 0 || spans.get(i - 1).startNanos() <= k.startNanos(), "in the order they started");
            }
        }
    }
}
