package dev.ember.backend.cuda;

import dev.ember.EmberException;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * What a runner keeps on the GPU for its whole life: the weights, every layer's paged key and value cache (with one
 * scratch block past the allocator's pool, where padding rows write) and RoPE's inverse frequencies. They are the
 * bulk of its memory, so {@link #checkFits} weighs them, with the first step buffers, before anything is allocated.
 */
final class DeviceModel implements AutoCloseable {
    /** Where the weights come from: uploaded from a host model, or made on the GPU. */
    @FunctionalInterface
    interface WeightSource {
        DeviceWeights load(EmberKernels kernels, CudaStream stream);
    }

    final DeviceWeights weights;
    final DeviceBuffer keyCache;
    final DeviceBuffer valueCache;
    final DeviceBuffer inverseFrequencies;
    /** Bytes of one layer's keys (or values): the allocator's blocks and the scratch block. */
    final long layerCacheBytes;

    private DeviceModel(DeviceWeights weights, DeviceBuffer keyCache, DeviceBuffer valueCache, DeviceBuffer inverseFrequencies,
                        long layerCacheBytes) {
        this.weights = weights;
        this.keyCache = keyCache;
        this.valueCache = valueCache;
        this.inverseFrequencies = inverseFrequencies;
        this.layerCacheBytes = layerCacheBytes;
    }

    /** Loads the weights from {@code source}, then allocates the cache and uploads the inverse frequencies. */
    static DeviceModel load(ModelConfig config, DType type, KvCacheSpec kvSpec, WeightSource source, EmberKernels kernels,
                            CudaStream stream) {
        long layerCacheBytes = layerCacheBytes(kvSpec, type);
        DeviceWeights weights = source.load(kernels, stream);
        DeviceBuffer keyCache = null, valueCache = null;
        try {
            keyCache = DeviceBuffer.allocate(layerCacheBytes * config.numLayers());
            valueCache = DeviceBuffer.allocate(layerCacheBytes * config.numLayers());
            return new DeviceModel(weights, keyCache, valueCache, uploadInverseFrequencies(config), layerCacheBytes);
        } catch (RuntimeException e) {
            for (AutoCloseable c : new AutoCloseable[] {valueCache, keyCache, weights}) {
                if (c != null) {
                    try {
                        c.close();
                    } catch (Exception suppressed) {
                        e.addSuppressed(suppressed);
                    }
                }
            }
            throw e;
        }
    }

    private static long layerCacheBytes(KvCacheSpec kvSpec, DType type) {
        return (kvSpec.numBlocks() + 1L) * kvSpec.blockSize() * kvSpec.kvDim() * type.bytes();
    }

    private static DeviceBuffer uploadInverseFrequencies(ModelConfig config) {
        double[] inv = config.ropeScaling().inverseFrequencies(config.headDim(), config.ropeTheta());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(ValueLayout.JAVA_FLOAT, inv.length);
            for (int i = 0; i < inv.length; i++) {
                host.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) inv[i]);
            }
            DeviceBuffer buffer = DeviceBuffer.allocate(host.byteSize());
            buffer.copyFromHost(host);
            return buffer;
        }
    }

    /**
     * Fails, before anything is allocated, when {@code weightBytes} of weights (all of them, or the resident ones and the
     * streaming window), the cache and {@code bufferBytes} of step buffers would not fit the free memory.
     */
    static void checkFits(CudaContext context, String modelName, ModelConfig config, DType type, KvCacheSpec kvSpec,
                          long weightBytes, long bufferBytes) {
        long cacheBytes = 2 * layerCacheBytes(kvSpec, type) * config.numLayers();
        long needed = weightBytes + cacheBytes + bufferBytes;
        CudaContext.MemoryInfo memory = context.memoryInfo();
        if (needed > memory.free()) {
            throw new EmberException(String.format(
                    "%s does not fit on %s: it needs %.2f GiB (weights %.2f GiB, KV cache %.2f GiB for %d tokens, buffers %.2f GiB) "
                            + "but only %.2f GiB of %.2f GiB is free; use a smaller KV cache or a larger GPU",
                    modelName, context.device().describe(), gib(needed), gib(weightBytes), gib(cacheBytes),
                    kvSpec.tokenCapacity(), gib(bufferBytes), gib(memory.free()), gib(memory.total())));
        }
    }

    static double gib(long bytes) {
        return bytes / (double) (1L << 30);
    }

    /** The device address of layer {@code l}'s keys. */
    long keys(int l) {
        return keyCache.address() + l * layerCacheBytes;
    }

    /** The device address of layer {@code l}'s values. */
    long values(int l) {
        return valueCache.address() + l * layerCacheBytes;
    }

    @Override
    public void close() {
        inverseFrequencies.close();
        valueCache.close();
        keyCache.close();
        weights.close();
    }
}
