package dev.ember.backend;

import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.streaming.StreamingPlan;
import dev.ember.backend.streaming.StreamingSettings;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;

import java.util.Optional;

/**
 * A place where the forward pass runs (the CPU, a GPU). A backend turns a {@link Model} description
 * into a {@link ModelRunner} that owns the weights in the form it needs and the KV-cache storage, and answers what the
 * commands above it need to know of the device, so that none of them looks at which backend it holds.
 */
public interface Backend extends AutoCloseable {

    /** Human-readable name of the device, e.g. "cpu (16 threads, AVX-512)" or "cuda:0 NVIDIA H100". */
    String deviceName();

    /** Devices of this kind a model may be placed on: the GPUs; the CPU is one. */
    default int devices() {
        return 1;
    }

    /** Prepares {@code model} for execution with a KV cache of geometry {@code kv}; reports long work to {@code progress}. */
    default ModelRunner load(Model model, KvCacheSpec kv, Progress progress) {
        return load(model, kv, StreamingSettings.AUTOMATIC, progress);
    }

    /**
     * Prepares {@code model} as {@link #load(Model, KvCacheSpec, Progress)} does, its weights held whole on the device
     * or streamed through a window of it as {@code streaming} and the memory at hand decide ({@code StreamingPlan}).
     */
    ModelRunner load(Model model, KvCacheSpec kv, StreamingSettings streaming, Progress progress);

    /**
     * Prepares {@code model} split over {@code size} tensor-parallel ranks (q/k/v and gate/up by their output features,
     * o and down by their input features with the partial sums added over the ranks, the output projection by the
     * vocabulary, its shares gathered), with a KV cache of geometry {@code kv} split by KV heads; the runner returned
     * drives every rank. Refused, saying so, where this backend does not run tensor parallel.
     */
    default ModelRunner loadTensorParallel(Model model, KvCacheSpec kv, int size, Progress progress) {
        if (size == 1) {
            return load(model, kv, progress);
        }
        throw splitRefused(deviceName(), "--tensor-parallel-size " + size);
    }

    /**
     * Prepares {@code model} split into pipeline stages of {@code stageLayers[s]} consecutive decoder layers (the first
     * embeds, the last projects), each with the KV cache of its layers, every step's rows passing through them in
     * micro-batches; the runner returned drives every stage. Refused, saying so, where this backend does not run it.
     */
    default ModelRunner loadPipelineParallel(Model model, KvCacheSpec kv, int[] stageLayers, Progress progress) {
        PipelineSplit.firstLayers(stageLayers, model.config().numLayers());
        if (stageLayers.length == 1) {
            return load(model, kv, progress);
        }
        throw splitRefused(deviceName(), "--pipeline-parallel-size " + stageLayers.length);
    }

    /**
     * Devices {@code first} and {@code second} of this backend and the copies between them, with buffers of up to
     * {@code maxBytes}; refused where there are no such devices (the CPU has none).
     */
    default DeviceLink link(int first, int second, long maxBytes) {
        throw new EmberException("bench p2p measures copies between GPUs; " + deviceName() + " has none (--backend cuda "
                + "on a machine with a GPU; --gpus 0,0 measures copies within one)");
    }

    /**
     * Starts recording the device's kernels ({@link KernelRecorder}); refused where this backend has no kernels to
     * record (the CPU).
     */
    default KernelRecorder recordKernels() {
        throw new EmberException("--kernel-timeline records the GPU's kernels; " + deviceName() + " runs none (--backend cuda "
                + "on a machine with a GPU)");
    }

    /** What a backend that does not split a model over ranks says when {@code option} asks it to. */
    static EmberException splitRefused(String device, String option) {
        return new EmberException(option + ": " + device + " does not split a model over several devices yet (on GPUs "
                + "that takes NCCL and peer-to-peer copies, which Ember does not drive yet); --backend cpu runs the split "
                + "with its ranks as threads");
    }

    /**
     * What {@link #load} will do with {@code model}'s weights under {@code streaming}: the mode, the window and the
     * device bytes they take (for sizing the KV cache before loading); fails as {@code load} would where the budget
     * cannot hold them.
     */
    StreamingPlan planWeights(Model model, StreamingSettings streaming);

    /**
     * Measures, in a fraction of a second, how fast streamed weights reach where the runner computes: pinned host
     * memory to the GPU (a host-to-device copy), or on the CPU one host memory copy. Bytes per second.
     */
    double measureWeightCopy(Progress progress);

    /**
     * Caps the device memory that what is loaded after this call may use ({@code --gpu-memory-limit}), so that a small
     * device's limits can be tried on a large one; nothing where the memory is not the device's own (the CPU).
     */
    default void limitMemory(long bytes) {
    }

    /**
     * A runner for a model of shape {@code config} whose weights are random numbers of {@code type} made on this
     * device (on a GPU milliseconds, where making and copying them from the host takes minutes for 8B parameters),
     * for benchmarks of shapes whose real weights are not at hand; the same seed gives the same weights. Empty where
     * this backend makes none itself (the CPU, whose weights are host memory: {@code RandomWeights} makes a model there
     * for {@link #load}).
     */
    Optional<ModelRunner> loadRandomOnDevice(ModelConfig config, DType type, KvCacheSpec kv, long seed);

    /**
     * Bytes of one cached K or V element of a model whose weights are stored as {@code weights}, as this backend's
     * runners keep the cache ({@link ModelRunner#kvElementBytes()} once loaded): f32 on the CPU, the weights' type on
     * the GPU.
     */
    int kvElementBytes(DType weights);

    /**
     * The memory a KV cache would take its room from here, as it is now, for a model of shape {@code config} with
     * {@code weightBytes} of weights, a cache of {@code kvElementBytes} elements and steps of at most
     * {@code maxBatchedTokens} tokens over {@code maxSequences} sequences.
     */
    KvCacheMemory kvCacheMemory(ModelConfig config, long weightBytes, int kvElementBytes, int maxBatchedTokens,
                                int maxSequences);

    /** Whether models run on a GPU (the one NVML numbers 0, which the monitor and memory probes read). */
    boolean onGpu();

    /**
     * Whether {@link ModelRunner#profileStages} times stages with events on the device (between kernels, and so on
     * eager steps) rather than with the host clock.
     */
    boolean timesStagesWithEvents();

    /** This backend's kernels at the workload's shapes on random inputs, for {@code ember bench kernel}. */
    KernelSuite kernelSuite(KernelSuite.Workload workload);

    /**
     * Measures this device's copy bandwidth and matrix-product rate (a few hundred milliseconds, once per device
     * and process: {@link DeviceCeilings#measuredOnce}), for benchmarks to report their figures as a fraction of them.
     */
    DeviceCeilings measureCeilings(Progress progress);

    @Override
    default void close() {
    }
}
