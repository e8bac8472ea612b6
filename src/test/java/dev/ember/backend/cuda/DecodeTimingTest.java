package dev.ember.backend.cuda;

import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.RandomWeights;
import dev.ember.model.RopeScaling;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Times a Llama-3.2-1B-shaped model (random bf16 weights) at batch 1: a 1024-token prefill, then 128-token-prompt
 * decode steps, eager and graph-replayed, beside the bandwidth floor (weight bytes read per step over 3.0 TB/s,
 * the copy bandwidth measured on the H100). Asserts only that replaying graphs is faster than launching eagerly.
 */
class DecodeTimingTest {
    private static final double COPY_BANDWIDTH = 3.0e12;

    @Test
    void graphReplayedDecodeBeatsEagerDecode() {
        Gpu.context();
        ModelConfig c = new ModelConfig(Architecture.LLAMA, 2048, 8192, 16, 32, 8, 64, 128256, 4096, 1e-5, 500000,
                new RopeScaling.Llama3(32, 1, 4, 8192), true, false, 0, 1, List.of(2), DType.BF16);
        KvCacheSpec kv = KvCacheSpec.forTokens(c, 2048, 16);
        long started = System.nanoTime();
        try (Model model = RandomWeights.create(c, DType.BF16, 3); CudaBackend graphs = new CudaBackend(true);
             CudaBackend eager = new CudaBackend(false)) {
            double perStepBytes = model.weightBytes();  // tied: the embedding table is read once per step, as lm_head
            System.out.printf("[gpu-time] Llama-3.2-1B shape, %.2f GB of weights, made in %.1f s%n", model.weightBytes() / 1e9,
                    (System.nanoTime() - started) / 1e9);
            double graphMs = timeDecode(graphs, model, kv, "graphs");
            double eagerMs = timeDecode(eager, model, kv, "eager");
            System.out.printf("[gpu-time] decode floor %.3f ms/step (weights over %.1f TB/s): graphs at %.0f%% of it%n",
                    perStepBytes / COPY_BANDWIDTH * 1e3, COPY_BANDWIDTH / 1e12, 100 * perStepBytes / COPY_BANDWIDTH * 1e3 / graphMs);
            assertTrue(graphMs < eagerMs, "graph replay (" + graphMs + " ms) is not faster than eager launches (" + eagerMs + " ms)");
        }
    }

    /** Median milliseconds per decode step after a 128-token prompt; also prints a 1024-token prefill's time. */
    private static double timeDecode(CudaBackend backend, Model model, KvCacheSpec kv, String mode) {
        int vocab = model.config().vocabSize();
        SplittableRandom random = new SplittableRandom(1);
        try (ModelRunner runner = backend.load(model, kv, Progress.NONE)) {
            float[] logits = new float[vocab];
            BlockTable longPrompt = new BlockTable(16);
            longPrompt.reserve(1024, runner.blockAllocator());
            int[] prompt1024 = random.ints(1024, 0, vocab).toArray();
            double prefillMs = 0;
            for (int i = 0; i < 3; i++) {  // the first run warms up (module load, cuBLASLt plans)
                long t0 = System.nanoTime();
                runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(prompt1024, 0, longPrompt)), logits);
                prefillMs = (System.nanoTime() - t0) / 1e6;
            }
            longPrompt.release(runner.blockAllocator());

            BlockTable table = new BlockTable(16);
            table.reserve(128 + 64, runner.blockAllocator());
            runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(random.ints(128, 0, vocab).toArray(), 0, table)), logits);
            double[] steps = new double[64];
            for (int i = 0; i < steps.length; i++) {
                int token = dev.ember.Numerics.argmax(logits, 0, vocab);
                long t0 = System.nanoTime();
                runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(new int[] {token}, 128 + i, table)), logits);
                steps[i] = (System.nanoTime() - t0) / 1e6;
            }
            double[] sorted = java.util.Arrays.copyOfRange(steps, 8, steps.length);  // past the warm-up and capture
            java.util.Arrays.sort(sorted);
            double median = sorted[sorted.length / 2];
            System.out.printf("[gpu-time] %-6s prefill 1024 tokens %.1f ms; decode after 128: median %.3f ms/step = %.0f tokens/s%n",
                    mode, prefillMs, median, 1000 / median);
            return median;
        }
    }
}
