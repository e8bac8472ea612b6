package dev.ember.backend.cuda;

import dev.ember.backend.KernelSpan;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * CUPTI's kernel records read at CUpti_ActivityKernel10's offsets (taken from cupti_activity.h of CUDA 13.0 with
 * offsetof): a record laid out as CUPTI lays it gives back its name, times, stream and graph; another kind is skipped.
 */
class KernelActivityTest {

    @Test
    void aKernelRecordGivesItsNameTimesStreamAndGraph() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment record = arena.allocate(KernelActivity.RECORD_BYTES, 8);
            record.set(JAVA_INT, KernelActivity.KIND, KernelActivity.KIND_CONCURRENT_KERNEL);
            record.set(JAVA_LONG, KernelActivity.START, 1_000_123L);
            record.set(JAVA_LONG, KernelActivity.END, 1_004_567L);
            record.set(JAVA_INT, KernelActivity.STREAM, 13);
            record.set(ADDRESS, KernelActivity.NAME, arena.allocateFrom("gemv_m1_u8_w2_bf16"));
            record.set(JAVA_INT, KernelActivity.GRAPH, 0xfffffffe);  // an unsigned id
            assertEquals(new KernelSpan("gemv_m1_u8_w2_bf16", 1_000_123L, 1_004_567L, 13, 0xfffffffeL), KernelActivity.read(record));

            record.set(JAVA_INT, KernelActivity.KIND, KernelActivity.KIND_KERNEL);
            record.set(ADDRESS, KernelActivity.NAME, MemorySegment.NULL);
            record.set(JAVA_INT, KernelActivity.GRAPH, 0);
            assertEquals(new KernelSpan("(unnamed)", 1_000_123L, 1_004_567L, 13, 0), KernelActivity.read(record));

            record.set(JAVA_INT, KernelActivity.KIND, 1);  // CUPTI_ACTIVITY_KIND_MEMCPY
            assertNull(KernelActivity.read(record));
        }
    }
}
