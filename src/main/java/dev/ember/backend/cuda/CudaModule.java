package dev.ember.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** Device code loaded from a fatbin, cubin or PTX image ({@code cuModuleLoadData}). */
public final class CudaModule implements AutoCloseable {
    private final String name;
    private final MemorySegment handle;
    private boolean unloaded;

    private CudaModule(String name, MemorySegment handle) {
        this.name = name;
        this.handle = handle;
    }

    /** Loads {@code image}; the driver picks the machine code for this GPU or JIT-compiles the PTX. */
    public static CudaModule load(String name, byte[] image) {
        try (Arena arena = Arena.ofConfined()) {
            // PTX must be NUL-terminated; a trailing zero is harmless for binary images.
            MemorySegment copy = arena.allocate(image.length + 1L, 16);
            MemorySegment.copy(image, 0, copy, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, image.length);
            return new CudaModule(name, Driver.moduleLoadData(copy));
        }
    }

    public String name() {
        return name;
    }

    /** The kernel {@code function}, which must exist. */
    public CudaFunction function(String function) {
        MemorySegment f = Driver.moduleGetFunction(handle, function);
        if (f.equals(MemorySegment.NULL)) {
            throw new IllegalStateException("kernel " + function + " is not in module " + name + " (a stale kernel build?)");
        }
        return new CudaFunction(function, f);
    }

    @Override
    public void close() {
        if (!unloaded) {
            unloaded = true;
            Driver.moduleUnload(handle);
        }
    }
}
