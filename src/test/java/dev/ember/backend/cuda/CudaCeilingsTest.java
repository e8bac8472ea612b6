package dev.ember.backend.cuda;

import dev.ember.Progress;
import dev.ember.backend.DeviceCeilings;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The GPU's measured ceilings are physically plausible (a sanity check, not a timing test). */
class CudaCeilingsTest {
    @Test
    void copyReadAndMatmulRatesArePlausible() {
        Gpu.assumeAvailable();
        try (CudaBackend backend = new CudaBackend()) {
            DeviceCeilings c = backend.measureCeilings(Progress.NONE);
            System.out.printf("[gpu-ceilings] copy %.1f GB/s, read %.1f GB/s, bf16 matmul %.1f TFLOP/s%n",
                    c.copyBytesPerSecond() / 1e9, c.readBytesPerSecond() / 1e9, c.matmulFlopsPerSecond() / 1e12);
            // Between a small Ampere board and beyond any HBM of today; reading alone is never slower than half a copy.
            assertTrue(c.copyBytesPerSecond() > 1e11 && c.copyBytesPerSecond() < 2e13, "copy " + c.copyBytesPerSecond());
            assertTrue(c.readBytesPerSecond() > 0.5 * c.copyBytesPerSecond() && c.readBytesPerSecond() < 2e13,
                    "read " + c.readBytesPerSecond());
            assertTrue(c.matmulFlopsPerSecond() > 1e13 && c.matmulFlopsPerSecond() < 1e16, "matmul " + c.matmulFlopsPerSecond());
            assertTrue(c.streamBytesPerSecond() >= c.copyBytesPerSecond());
        }
    }
}
