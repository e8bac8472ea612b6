package dev.ember.backend.cuda;

import dev.ember.backend.KernelSpan;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Reads CUPTI's kernel activity records ({@code CUpti_ActivityKernel10} of cupti_activity.h, CUDA 13.0; later
 * versions append their fields, so these offsets hold for them too): kind at 0, start and end (nanoseconds) at 16 and
 * 24, the stream at 48, the kernel's name (a C string CUPTI owns) at 104, the graph at 156. Apart from {@link Cupti}
 * so that reading a record needs no library.
 */
final class KernelActivity {
    /** CUPTI_ACTIVITY_KIND_KERNEL and CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL. */
    static final int KIND_KERNEL = 3, KIND_CONCURRENT_KERNEL = 10;
    /** sizeof(CUpti_ActivityKernel10): the bytes a record is read as. */
    static final long RECORD_BYTES = 216;
    static final long KIND = 0, START = 16, END = 24, STREAM = 48, NAME = 104, GRAPH = 156;

    private KernelActivity() {
    }

    /** The kernel {@code record} describes, or null for an activity of another kind. */
    static KernelSpan read(MemorySegment record) {
        MemorySegment r = record.reinterpret(RECORD_BYTES);
        int kind = r.get(JAVA_INT, KIND);
        if (kind != KIND_KERNEL && kind != KIND_CONCURRENT_KERNEL) {
            return null;
        }
        MemorySegment name = r.get(ADDRESS, NAME);
        return new KernelSpan(name.equals(MemorySegment.NULL) ? "(unnamed)" : name.reinterpret(Long.MAX_VALUE).getString(0),
                r.get(JAVA_LONG, START), r.get(JAVA_LONG, END), r.get(JAVA_INT, STREAM), Integer.toUnsignedLong(r.get(JAVA_INT, GRAPH)));
    }
}
