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
    /**
     * cuda.h's CUlaunchConfig (56 bytes: grid x/y/z, block x/y/z and shared bytes as unsigned ints, then the stream at
     * 32, the attribute array at 40 and its length at 48) and one CUlaunchAttribute (72 bytes: the id, then at 8 a
     * 64-byte value whose first int is the programmatic-stream-serialization flag); offsets read off cuda.h 13.0.
     */
    static final long CONFIG_BYTES = 56, ATTRIBUTE_BYTES = 72;
    static final long STREAM_OFFSET = 32, ATTRIBUTES_OFFSET = 40, ATTRIBUTE_COUNT_OFFSET = 48, VALUE_OFFSET = 8;
    static final int CU_LAUNCH_ATTRIBUTE_COOPERATIVE = 2;
    static final int CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;
    private final MemorySegment values;
    private final MemorySegment pointers;
    private final MemorySegment config;
    /** A CUlaunchConfig whose one attribute asks for a cooperative launch ({@link #launchCooperative}). */
    private final MemorySegment cooperativeConfig;
    private boolean dependentLaunch;
    private int count;

    public KernelArgs(Arena arena) {
        values = arena.allocate(8L * MAX_ARGS, 8);
        pointers = arena.allocate(ADDRESS.byteSize() * MAX_ARGS, 8);
        for (int i = 0; i < MAX_ARGS; i++) {
            pointers.setAtIndex(ADDRESS, i, values.asSlice(8L * i, 8));
        }
        config = configWith(arena, CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
        cooperativeConfig = configWith(arena, CU_LAUNCH_ATTRIBUTE_COOPERATIVE);
    }

    /** A CUlaunchConfig with one attribute, {@code id}, set to 1. */
    private static MemorySegment configWith(Arena arena, int id) {
        MemorySegment config = arena.allocate(CONFIG_BYTES + ATTRIBUTE_BYTES, 8);
        MemorySegment attribute = config.asSlice(CONFIG_BYTES, ATTRIBUTE_BYTES);
        attribute.set(JAVA_INT, 0, id);
        attribute.set(JAVA_INT, VALUE_OFFSET, 1);
        config.set(ADDRESS, ATTRIBUTES_OFFSET, attribute);
        config.set(JAVA_INT, ATTRIBUTE_COUNT_OFFSET, 1);
        return config;
    }

    /** Fills {@code config}'s grid, block, shared memory and stream, and launches through cuLaunchKernelEx. */
    private int launchEx(MemorySegment config, CudaFunction kernel, int gridX, int gridY, int gridZ, int blockThreads,
                         int sharedBytes, CudaStream stream) {
        config.set(JAVA_INT, 0, gridX);
        config.set(JAVA_INT, 4, gridY);
        config.set(JAVA_INT, 8, gridZ);
        config.set(JAVA_INT, 12, blockThreads);
        config.set(JAVA_INT, 16, 1);
        config.set(JAVA_INT, 20, 1);
        config.set(JAVA_INT, 24, sharedBytes);
        config.set(ADDRESS, STREAM_OFFSET, stream.handle());
        return Driver.launchKernelEx(config, kernel.handle(), pointers);
    }

    /**
     * Launches from now on with programmatic dependent launch (Hopper and later), or without: a kernel may then be
     * scheduled while the one before it in the stream finishes, every kernel waiting in wait_for_previous_grid
     * (common.cuh) before it touches memory.
     */
    public void dependentLaunch(boolean on) {
        this.dependentLaunch = on;
    }

    /** Whether launches use programmatic dependent launch now. */
    boolean dependentLaunch() {
        return dependentLaunch;
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

    /**
     * Queues {@code kernel} as a cooperative launch of {@code gridX} blocks: the driver refuses it unless every block can
     * be resident at once, which a kernel whose blocks wait for each other (a grid-wide barrier) needs. Without
     * programmatic dependent launch: it starts once the kernel before it has ended.
     */
    public void launchCooperative(CudaFunction kernel, int gridX, int blockThreads, int sharedBytes, CudaStream stream) {
        int result = launchEx(cooperativeConfig, kernel, gridX, 1, 1, blockThreads, sharedBytes, stream);
        if (result != 0) {
            throw new CudaException("cuLaunchKernelEx(" + kernel.name() + ", cooperative, grid " + gridX + ", " + blockThreads
                    + " threads, " + sharedBytes + " B shared)", result, Driver.errorName(result));
        }
    }

    /** Queues {@code kernel} on {@code stream} with the arguments packed since {@link #begin()}. */
    public void launch(CudaFunction kernel, int gridX, int gridY, int gridZ, int blockThreads, int sharedBytes,
                       CudaStream stream) {
        int result;
        if (dependentLaunch) {
            result = launchEx(config, kernel, gridX, gridY, gridZ, blockThreads, sharedBytes, stream);
        } else {
            result = Driver.launchKernel(kernel.handle(), gridX, gridY, gridZ, blockThreads, 1, 1, sharedBytes,
                    stream.handle(), pointers);
        }
        if (result != 0) {
            throw new CudaException((dependentLaunch ? "cuLaunchKernelEx(" : "cuLaunchKernel(") + kernel.name() + ", grid " + gridX + "x" + gridY + "x" + gridZ
                    + ", " + blockThreads + " threads, " + sharedBytes + " B shared)", result, Driver.errorName(result));
        }
    }
}
