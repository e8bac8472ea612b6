package dev.ember.backend.cuda;

import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.model.RopeScaling;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Times whole steps (metadata upload, forward pass, logits copied back) on random bf16 weights made on the GPU,
 * beside the bandwidth floor: bytes a step must read (weights but the embedding table, plus the KV cache)
 * over 3.0 TB/s, the device copy bandwidth measured on the H100 (docs: gpu-host.md).
 */
class DecodeTimingTest {
    private static final double COPY_BANDWIDTH = 3.0e12;
    private static final RopeScaling LLAMA3 = new RopeScaling.Llama3(8, 1, 4, 8192);

    private static ModelConfig llama(int hidden, int ff, int layers, int heads, int kvHeads, boolean tie) {
        return new ModelConfig(Architecture.LLAMA, hidden, ff, layers, heads, kvHeads, hidden / heads, 128256, 8192, 1e-5,
                500000, LLAMA3, tie, Biases.NONE, 0, 1, List.of(2), DType.BF16);
    }

    @Test
    void graphReplayedDecodeBeatsEagerDecode() {
        Gpu.context();
        ModelConfig c = llama(2048, 8192, 16, 32, 8, true);  // Llama 3.2 1B
        KvCacheSpec kv = KvCacheSpec.forTokens(c, 1024, 16);
        try (CudaBackend graphs = new CudaBackend(true); CudaBackend eager = new CudaBackend(false);
             ModelRunner withGraphs = graphs.loadRandom(c, DType.BF16, kv, 3);
             ModelRunner without = eager.loadRandom(c, DType.BF16, kv, 3)) {
            double graphMs = decodeMillis(withGraphs, 1, 128, 64);
            double eagerMs = decodeMillis(without, 1, 128, 64);
            System.out.printf("[gpu-time] Llama-3.2-1B shape, batch 1 after 128 tokens: graphs %.3f ms/step, eager %.3f ms/step (floor %.3f)%n",
                    graphMs, eagerMs, floorMillis(c, 1, 128));
            assertTrue(graphMs < eagerMs, "graph replay (" + graphMs + " ms) is not faster than eager launches (" + eagerMs + " ms)");
        }
    }

    private static final ModelConfig LLAMA_8B = llama(4096, 14336, 32, 32, 8, false);

    @Test
    void llama8bPrefill() {
        Gpu.context();
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(LLAMA_8B, DType.BF16, KvCacheSpec.forTokens(LLAMA_8B, 1024, 16), 8)) {
            double ttft = prefillMillis(runner, 1024);
            System.out.printf("[gpu-time] Llama-3.1-8B shape: prefill 1024 tokens %.1f ms (target <= 28)%n", ttft);
        }
    }

    @Test
    void llama8bDecodeAtBatch1() {
        Gpu.context();
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(LLAMA_8B, DType.BF16, KvCacheSpec.forTokens(LLAMA_8B, 256, 16), 8)) {
            double ms = decodeMillis(runner, 1, 128, 128);
            double floor = floorMillis(LLAMA_8B, 1, 128);
            System.out.printf("[gpu-time] Llama-3.1-8B shape: batch 1 decode %.3f ms/step = %.0f tokens/s, %.0f%% of the %.0f tokens/s floor (target >= 170)%n",
                    ms, 1000 / ms, 100 * floor / ms, 1000 / floor);
            for (String choice : runner.measuredChoices()) {
                System.out.println("[gpu-time] Llama-3.1-8B product " + choice);
            }
        }
    }

    @Test
    void llama8bDecodeAtBatch64() {
        Gpu.context();
        try (CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.loadRandom(LLAMA_8B, DType.BF16, KvCacheSpec.forTokens(LLAMA_8B, 64 * 560, 16), 8)) {
            double ms = decodeMillis(runner, 64, 512, 24);
            double floor = floorMillis(LLAMA_8B, 64, 512);
            System.out.printf("[gpu-time] Llama-3.1-8B shape: batch 64 decode %.3f ms/step = %.0f tokens/s, %.0f%% of the %.0f tokens/s floor (target >= 7000)%n",
                    ms, 64000 / ms, 100 * floor / ms, 64000 / floor);
        }
    }

    /** Bytes a decode step must read at least: every weight but the embedding table, and each sequence's cache. */
    private static double floorMillis(ModelConfig c, int batch, int context) {
        long h = c.hiddenSize(), ff = c.intermediateSize();
        double weights = 2.0 * (c.numLayers() * ((c.qDim() + 2L * c.kvDim()) * h + h * c.qDim() + 3 * ff * h) + c.vocabSize() * h);
        double cache = 2.0 * batch * context * 2L * c.numLayers() * c.kvDim();
        return (weights + cache) / COPY_BANDWIDTH * 1e3;
    }

    private static double prefillMillis(ModelRunner runner, int tokens) {
        int vocab = runner.config().vocabSize();
        int[] prompt = new SplittableRandom(5).ints(tokens, 0, vocab).toArray();
        float[] logits = new float[vocab];
        double best = Double.MAX_VALUE;
        for (int i = 0; i < 4; i++) {  // the first run also plans the products
            BlockTable table = new BlockTable(16);
            table.reserve(tokens, runner.blockAllocator());
            long t0 = System.nanoTime();
            runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table)), logits);
            best = Math.min(best, (System.nanoTime() - t0) / 1e6);
            table.release(runner.blockAllocator());
            assertFinite(logits);
        }
        return best;
    }

    /** Median ms per decode step of {@code batch} sequences after {@code prompt}-token prompts (prefilled 8 at a time). */
    private static double decodeMillis(ModelRunner runner, int batch, int prompt, int steps) {
        int vocab = runner.config().vocabSize();
        SplittableRandom random = new SplittableRandom(2);
        BlockTable[] tables = new BlockTable[batch];
        int[] next = new int[batch];
        float[] logits = new float[batch * vocab];
        for (int first = 0; first < batch; first += 8) {
            int n = Math.min(8, batch - first);
            ForwardBatch.Chunk[] chunks = new ForwardBatch.Chunk[n];
            for (int i = 0; i < n; i++) {
                tables[first + i] = new BlockTable(16);
                tables[first + i].reserve(prompt + steps, runner.blockAllocator());
                chunks[i] = new ForwardBatch.Chunk(random.ints(prompt, 0, vocab).toArray(), 0, tables[first + i]);
            }
            runner.forward(ForwardBatch.of(chunks), logits);
            for (int i = 0; i < n; i++) {
                next[first + i] = dev.ember.Numerics.argmax(logits, i * vocab, vocab);
            }
        }
        double[] millis = new double[steps];
        for (int s = 0; s < steps; s++) {
            ForwardBatch.Chunk[] chunks = new ForwardBatch.Chunk[batch];
            for (int i = 0; i < batch; i++) {
                chunks[i] = new ForwardBatch.Chunk(new int[] {next[i]}, prompt + s, tables[i]);
            }
            long t0 = System.nanoTime();
            runner.forward(ForwardBatch.of(chunks), logits);
            millis[s] = (System.nanoTime() - t0) / 1e6;
            for (int i = 0; i < batch; i++) {
                next[i] = dev.ember.Numerics.argmax(logits, i * vocab, vocab);
            }
        }
        assertFinite(logits);
        for (BlockTable t : tables) {
            t.release(runner.blockAllocator());
        }
        double[] settled = Arrays.copyOfRange(millis, 4, steps);  // past the graph capture
        Arrays.sort(settled);
        return settled[settled.length / 2];
    }

    private static void assertFinite(float[] logits) {
        for (float x : logits) {
            assertTrue(Float.isFinite(x), "non-finite logit");
        }
    }
}
