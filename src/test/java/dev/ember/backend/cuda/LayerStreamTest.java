package dev.ember.backend.cuda;

import dev.ember.model.Architecture;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.model.RopeScaling;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which models and GPUs the one-launch decode step takes, and the reason it names where it does not (no GPU needed). */
class LayerStreamTest {
    private static final CudaDevice HOPPER = new CudaDevice(0, "sm_90 GPU", 132, 9, 0, 80L << 30, 232_448, 50 << 20);

    private static ModelConfig llama8b(int window, int headDim) {
        return new ModelConfig(Architecture.LLAMA, 4096, 14336, 32, 32, 8, headDim, 128_256, 8192, 1e-5, 500000,
                new RopeScaling.None(), false, Architecture.LLAMA.biases(false, false), window, 1, List.of(2), DType.BF16);
    }

    private static Optional<String> reason(ModelConfig config, DType type, CudaDevice device, boolean streamed, boolean biases) {
        return LayerStream.unsupported(config, AttentionShape.of(config, 16), type, device, streamed, biases);
    }

    @Test
    void theEightBillionShapeInSixteenBitsIsTakenOnHopper() {
        assertEquals(Optional.empty(), reason(llama8b(0, 128), DType.BF16, HOPPER, false, false));
        assertEquals(Optional.empty(), reason(llama8b(0, 128), DType.F16, HOPPER, false, false));
    }

    @Test
    void everyModelOrGpuItWasNotWrittenForIsRefusedWithItsReason() {
        CudaDevice ampere = new CudaDevice(0, "sm_80 GPU", 108, 8, 0, 80L << 30, 166_912, 40 << 20);
        assertTrue(reason(llama8b(0, 128), DType.BF16, ampere, false, false).orElseThrow().contains("compute capability 9.0"));
        assertTrue(reason(llama8b(0, 128), DType.F32, HOPPER, false, false).orElseThrow().contains("fp32"));
        assertTrue(reason(llama8b(0, 128), DType.BF16, HOPPER, true, false).orElseThrow().contains("streamed"));
        assertTrue(reason(llama8b(0, 96), DType.BF16, HOPPER, false, false).orElseThrow().contains("head dimension 96"));
        assertTrue(reason(llama8b(4096, 128), DType.BF16, HOPPER, false, false).orElseThrow().contains("sliding window"));
        assertTrue(reason(llama8b(0, 128), DType.BF16, HOPPER, false, true).orElseThrow().contains("biases"));
        CudaDevice fewSlots = new CudaDevice(0, "small GPU", 132, 9, 0, 80L << 30, 99 * 1024, 50 << 20);
        assertTrue(reason(llama8b(0, 128), DType.BF16, fewSlots, false, false).orElseThrow().contains("two ring slots"));
    }

    @Test
    void theTraceReportGivesEachIntervalsLongestAndMedianBlockAndTheLayersSum() {
        int layers = 3, blocks = 5, stamps = LayerStream.STAMPS, scores = 5;  // interval 5: attention's scores
        long[] t = new long[stamps * layers * blocks];
        for (int b = 0; b < blocks; b++) {
            long now = 1_000_000L * (b + 1);  // each block starts elsewhere: only differences count
            for (int l = 0; l < layers; l++) {
                for (int i = 0; i < stamps; i++) {
                    t[(l * blocks + b) * stamps + i] = now;
                    // Interval i lasts i + 1 us, and 10 us more in block 3's scores.
                    now += 1000L * (i + 1) + (b == 3 && i == scores ? 10_000 : 0);
                }
            }
        }
        String line = LayerStream.phaseReport(t, layers, blocks);
        assertTrue(line.startsWith("[layer-stream] us a layer, longest block / median block: q/k/v norm 1.0 / 1.0, "), line);
        assertTrue(line.contains(" scores 16.0 / 6.0, "), line);
        assertTrue(line.contains(" down 16.0 / 16.0, barrier 17.0 / 17.0, a layer 153.0"), line);  // 1 + 2 + ... + 17
    }
}
