package dev.ember.backend.cuda;

/**
 * What Ember needs to know of a GPU: its name, how many multiprocessors to fill, which machine code it
 * runs (compute capability), and its memory.
 */
public record CudaDevice(int ordinal, String name, int multiprocessors, int computeMajor, int computeMinor,
                         long totalMemory, int maxSharedMemoryPerBlock, int l2CacheBytes) {

    static CudaDevice query(int ordinal) {
        int d = Driver.device(ordinal);
        return new CudaDevice(ordinal, Driver.deviceName(d),
                Driver.deviceAttribute(d, Driver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
                Driver.deviceAttribute(d, Driver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                Driver.deviceAttribute(d, Driver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
                Driver.deviceTotalMemory(d),
                Driver.deviceAttribute(d, Driver.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN),
                Driver.deviceAttribute(d, Driver.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE));
    }

    /** For example {@code cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.2 GiB)}. */
    public String describe() {
        return String.format("cuda:%d %s (sm_%d%d, %d SMs, %.1f GiB)", ordinal, name, computeMajor, computeMinor,
                multiprocessors, totalMemory / (double) (1L << 30));
    }
}
