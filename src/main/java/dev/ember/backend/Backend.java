package dev.ember.backend;

import dev.ember.Progress;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;

/**
 * A place where the forward pass runs (the CPU, a GPU). A backend turns a {@link Model} description
 * into a {@link ModelRunner} that owns the weights in the form it needs and the KV-cache storage.
 */
public interface Backend extends AutoCloseable {

    /** Human-readable name of the device, e.g. "cpu (16 threads, AVX-512)" or "cuda:0 NVIDIA H100". */
    String deviceName();

    /** Prepares {@code model} for execution with a KV cache of geometry {@code kv}; reports long work to {@code progress}. */
    ModelRunner load(Model model, KvCacheSpec kv, Progress progress);

    /**
     * Measures this device's copy bandwidth and matrix-product rate (a few hundred milliseconds, once per device
     * and process: {@link DeviceCeilings#measuredOnce}), for benchmarks to report their figures as a fraction of them.
     */
    DeviceCeilings measureCeilings(Progress progress);

    @Override
    default void close() {
    }
}
