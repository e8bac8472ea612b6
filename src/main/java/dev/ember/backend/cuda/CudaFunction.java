package dev.ember.backend.cuda;

import java.lang.foreign.MemorySegment;

/** A kernel of a loaded {@link CudaModule}, valid while the module is. */
public record CudaFunction(String name, MemorySegment handle) {

    /**
     * Lets launches use up to {@code bytes} of dynamic shared memory: needed where they and the kernel's static shared
     * memory together pass the default 48 KiB.
     */
    public void allowDynamicSharedMemory(int bytes) {
        Driver.funcSetAttribute(handle, Driver.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes, name);
    }

    /** Bytes of shared memory the kernel declares itself (its {@code __shared__} arrays), beside any dynamic ones. */
    public int staticSharedBytes() {
        return Driver.funcGetAttribute(handle, Driver.CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, name);
    }

    /** How many blocks of {@code threads} threads and {@code sharedBytes} of dynamic shared memory a multiprocessor holds. */
    public int blocksPerMultiprocessor(int threads, int sharedBytes) {
        return Driver.blocksPerMultiprocessor(handle, threads, sharedBytes, name);
    }
}
