package dev.ember.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Packs a kernel's arguments for {@code cuLaunchKernel}, which takes an array of pointers to the values.
 * The native buffers are allocated once and reused for every launch (the driver copies the values at
 * launch time), so launching allocates nothing. One per thread of launches; not thread-safe.
 *
 * <pre>{@code args.begin().pointer(x).i32(n).f32(eps).launch(kernel, rows, 1, 1, 256, 0, stream);}</pre>
 */
public final class KernelArgs {
    private static final int MAX_ARGS = 32;
    private final MemorySegment values;
    private final MemorySegment pointers;
    private int count;

    public KernelArgs(Arena arena) {
        values = arena.allocate(8L * MAX_ARGS, 8);
        pointers = arena.allocate(ADDRESS.byteSize() * MAX_ARGS, 8);
        for (int i = 0; i < MAX_ARGS; i++) {
            pointers.setAtIndex(ADDRESS, i, values.asSlice(8L * i, 8));
        }
    }

    public KernelArgs begin() {
        count = 0;
        return this;
    }

    /** A device pointer (0 for a null pointer). */
    public KernelArgs pointer(long devicePointer) {
        values.set(JAVA_LONG, 8L * next(), devicePointer);
        return this;
    }

    public KernelArgs i64(long value) {
        values.set(JAVA_LONG, 8L * next(), value);
        return this;
    }

    public KernelArgs i32(int value) {
        values.set(JAVA_INT, 8L * next(), value);
        return this;
    }

    public KernelArgs f32(float value) {
        values.set(JAVA_FLOAT, 8L * next(), value);
        return this;
    }

    private int next() {
        if (count == MAX_ARGS) {
            throw new IllegalStateException("more than " + MAX_ARGS + " kernel arguments");
        }
        return count++;
    }

    /** Queues {@code kernel} on {@code stream} with the arguments packed since {@link #begin()}. */
    public void launch(CudaFunction kernel, int gridX, int gridY, int gridZ, int blockThreads, int sharedBytes,
                       CudaStream stream) {
        int result = Driver.launchKernel(kernel.handle(), gridX, gridY, gridZ, blockThreads, 1, 1, sharedBytes,
                stream.handle(), pointers);
        if (result != 0) {
            throw new CudaException("cuLaunchKernel(" + kernel.name() + ", grid " + gridX + "x" + gridY + "x" + gridZ
                    + ", " + blockThreads + " threads, " + sharedBytes + " B shared)", result, Driver.errorName(result));
        }
    }
}
