package dev.ember.backend.cuda;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.cli.GenerateCommandTest;
import dev.ember.cli.GenerateCommandTest.Run;
import dev.ember.model.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ember bench kernel} on the GPU: the byte counts of the CUDA kernels by hand (these run everywhere), and the
 * command on a small preset, where every efficiency must be in (0, 100]: above 100% the byte count would be wrong.
 */
class KernelBenchGpuTest {

    @Test
    void byteCountsOfTheCudaKernelsAreTheHandWorkedFigures() {
        // Llama-3.1-8B: hidden 4096, 32 heads of 128, 8 KV heads, intermediate 14336, bf16.
        AttentionShape llama = new AttentionShape(32, 8, 128, 16, 0);
        // x read in f32, out in bf16; the f32 weight: 4096*(4+2) + 4096*4.
        assertEquals(40_960L, CudaKernelSuite.rmsNormBytes(1, 4096, 2));
        // One row of q/k/v in f32 (6144 floats) read, q, k and v written in bf16: 6144*(4+2).
        assertEquals(36_864L, CudaKernelSuite.qkvRopeBytes(1, llama, 2));
        // The fused q/k/v product at one row: a 6144x4096 bf16 weight, one bf16 input row, one f32 output row.
        assertEquals(6144L * 4096 * 2 + 4096 * 2 + 6144 * 4, CudaKernelSuite.matmulBytes(1, 6144, 4096, 2, 4));
        // The same normalising its input: the f32 residual row and the f32 norm weight in place of the bf16 row.
        assertEquals(6144L * 4096 * 2 + 4096 * 4 + 4096 * 4 + 6144 * 4, CudaKernelSuite.normedMatmulBytes(1, 6144, 4096, 2, 4));
        // The down projection gating its input: the two bf16 halves of the gate/up row in place of the gated row.
        assertEquals(4096L * 14336 * 2 + 2 * 14336 * 2 + 4096 * 4, CudaKernelSuite.gatedMatmulBytes(1, 4096, 14336, 2));
        // Decode at context 512, 16 splits: keys and values 2*512*1024*2, q and out 2*4096*2, partials 2*16*32*130*4.
        assertEquals(2_097_152L + 16_384 + 532_480, CudaKernelSuite.decodeAttentionBytes(1, 512, llama, 16, 2));
        // One split writes the output itself: no partials.
        assertEquals(2_097_152L + 16_384, CudaKernelSuite.decodeAttentionBytes(1, 512, llama, 1, 2));
        // Prefill of 512 tokens: keys and values, queries and output once each: 512*(2*1024 + 2*4096)*2.
        assertEquals(10_485_760L, CudaKernelSuite.prefillAttentionBytes(512, llama, 2));
        // Gate and up read, the product written: 3*14336*2 per row.
        assertEquals(86_016L * 4, CudaKernelSuite.siluMulBytes(4, 14336, 2));
        assertEquals(4L * 128_256 * 4, CudaKernelSuite.sampleTokensBytes(4, 128_256));
        assertEquals(4096L * (2 + 4), CudaKernelSuite.embeddingBytes(1, 4096, 2));
        // 4 * head_dim FLOPs per head and (query, key) pair.
        assertEquals(4.0 * 128 * 32 * 512, CudaKernelSuite.attentionFlops(llama, 512));
    }

    @Test
    void everyKernelOfASmallPresetRunsBelowTheBandwidthCeiling(@TempDir Path dir) throws IOException {
        Gpu.assumeAvailable();
        Path json = dir.resolve("kernel.json");
        Run r = GenerateCommandTest.ember("bench", "kernel", "--backend", "cuda", "--preset", "qwen3-0.6b", "--batch", "1,8",
                "--seq-len", "256", "--iters", "20", "--warmup", "3", "--include-embedding", "--json", json.toString());
        assertEquals(0, r.exitCode(), r.err());
        System.out.println(r.out());
        JsonNode root = new ObjectMapper().readTree(json.toFile());
        Set<String> kernels = new HashSet<>();
        for (JsonNode row : root.get("results")) {
            kernels.add(row.get("kernel").asText() + " " + row.get("implementation").asText().split(" ")[0]);
            double efficiency = row.get("efficiency_pct").asDouble();
            assertTrue(efficiency > 0 && efficiency <= 100, "efficiency out of (0, 100]: " + row);
            if (!row.get("matmul_pct").isNull()) {
                double matmul = row.get("matmul_pct").asDouble();
                assertTrue(matmul > 0 && matmul <= 100, "share of the matmul rate out of (0, 100]: " + row);
            }
        }
        // Qwen3-0.6B's groups of two: decode_attention_bulk where the GPU has bulk copies, else decode_attention_keys.
        String decode = Gpu.kernels().decodeKernelName(DType.BF16, new AttentionShape(16, 8, 128, 16, 0));
        // Its prefill: prefill_attention_bulk where the GPU has bulk copies, else prefill_attention_mma.
        String prefill = Gpu.kernels().prefillKernelName(DType.BF16, new AttentionShape(16, 8, 128, 16, 0));
        for (String expected : List.of("embedding embedding_gather_bf16", "rmsnorm rmsnorm_bf16", "matmul_qkv cublaslt",
                "matmul_qkv gemv", "qkv_rope qkv_rope_bf16", "decode_attention " + decode + "+reduce_bf16",
                "prefill_attention " + prefill + "_bf16", "matmul_o gemv", "matmul_gate_up gemv", "silu_mul silu_mul_bf16",
                "matmul_down cublaslt", "lm_head gemv", "sample_tokens sample_tokens")) {
            assertTrue(kernels.contains(expected), expected + " missing from " + kernels);
        }
    }
}
