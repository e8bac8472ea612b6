package dev.ember.backend.cpu;

import dev.ember.Progress;
import dev.ember.backend.DeviceCeilings;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CPU's ceilings are measured, finite and physically plausible (a sanity check, not a timing test). */
class CpuCeilingsTest {
    @Test
    void ceilingsAreMeasuredAndPlausible() {
        try (CpuBackend backend = new CpuBackend(2)) {
            DeviceCeilings c = backend.measureCeilings(Progress.NONE);
            // Between a slow laptop's 1 GB/s and far beyond any host's memory system.
            assertTrue(c.copyBytesPerSecond() > 1e8 && c.copyBytesPerSecond() < 1e13, "copy " + c.copyBytesPerSecond());
            assertTrue(c.matmulFlopsPerSecond() > 1e7 && c.matmulFlopsPerSecond() < 1e14, "matmul " + c.matmulFlopsPerSecond());
            assertTrue(c.device().startsWith("cpu"), c.device());
        }
    }
}
