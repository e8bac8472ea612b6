package dev.ember.backend.cuda;

import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.Backend;
import dev.ember.backend.DeviceCeilings;
import dev.ember.backend.DeviceLink;
import dev.ember.backend.KernelRecorder;
import dev.ember.backend.KernelSuite;
import dev.ember.backend.KvCacheMemory;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.streaming.GroupLayout;
import dev.ember.backend.streaming.StreamingPlan;
import dev.ember.backend.streaming.StreamingSettings;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;

import java.util.Optional;

/**
 * Runs models on the first NVIDIA GPU. {@link #availability()} says, without throwing, whether this process
 * can (and if not, why); constructing a backend where it cannot throws an {@link EmberException} with that
 * reason.
 */
public final class CudaBackend implements Backend {
    private final CudaContext context;
    private final boolean useGraphs;

    /** A backend on GPU 0 whose runners replay decode steps as CUDA graphs. */
    public CudaBackend() {
        this(true);
    }

    /** A backend on GPU 0; {@code useGraphs} false runs every step eagerly (for comparison and debugging). */
    public CudaBackend(boolean useGraphs) {
        Availability a = availability();
        if (!a.isAvailable()) {
            throw new EmberException("the CUDA backend is unavailable: " + a.reason());
        }
        this.context = CudaContext.open(0);
        this.useGraphs = useGraphs;
    }

    /** Whether a GPU is usable, and if not, why (one line). Never throws. */
    public static Availability availability() {
        return Availability.current();
    }

    public static boolean isAvailable() {
        return availability().isAvailable();
    }

    @Override
    public String deviceName() {
        return context.device().describe();
    }

    @Override
    public int devices() {
        return Driver.deviceCount();
    }

    /**
     * Uploads the weights (reporting progress), allocates the KV cache on the GPU and returns a runner;
     * throws an {@link EmberException} saying how much memory is needed and free when they do not fit.
     */
    @Override
    public ModelRunner load(Model model, KvCacheSpec kv, StreamingSettings streaming, Progress progress) {
        return CudaModelRunner.upload(context, model, kv, planWeights(model, streaming), streaming.verbose(), progress, useGraphs);
    }

    /**
     * The embedding, the final norm and the output projection stay resident while the layers stream; the budget counts
     * them and the window as the GPU stores them ({@link DeviceWeights#storageType}).
     */
    @Override
    public StreamingPlan planWeights(Model model, StreamingSettings streaming) {
        DType type = DeviceWeights.storageType(model);
        ModelConfig c = model.config();
        return StreamingPlan.decide(streaming, model.name(), c.numLayers(), GroupLayout.of(c, type),
                DeviceWeights.headBytes(c, type), StreamingPlan.hostMemoryAvailable());
    }

    /** Pinned host memory to the GPU: 256 MiB copied four times on a stream, the best of three rounds, timed by events. */
    @Override
    public double measureWeightCopy(Progress progress) {
        context.makeCurrent();
        long bytes = 256L << 20;
        try (PinnedBuffer host = PinnedBuffer.allocate(bytes); DeviceBuffer device = DeviceBuffer.allocate(bytes);
             CudaStream stream = CudaStream.create(); CudaEvent start = CudaEvent.create(); CudaEvent end = CudaEvent.create()) {
            host.segment().fill((byte) 1);
            float best = Float.MAX_VALUE;
            for (int round = 0; round < 3; round++) {
                start.record(stream);
                for (int i = 0; i < 4; i++) {
                    device.copyFromHostAsync(host.segment(), 0, stream);
                }
                end.record(stream);
                end.synchronize();
                best = Math.min(best, end.elapsedMillisSince(start));
                progress.update("measuring pinned host-to-device copies", round + 1, 3);
            }
            return 4.0 * bytes / (best / 1e3);
        }
    }

    @Override
    public void limitMemory(long bytes) {
        context.limitMemory(bytes);
    }

    /**
     * A runner for a model of shape {@code config} whose weights are random numbers of {@code type} made on the
     * GPU (milliseconds, where generating and copying them from the host takes minutes for 8B parameters):
     * for benchmarks of shapes whose real weights are not at hand. The same seed gives the same weights.
     */
    public ModelRunner loadRandom(ModelConfig config, DType type, KvCacheSpec kv, long seed) {
        return CudaModelRunner.random(context, config, type, seed, kv, useGraphs);
    }

    @Override
    public Optional<ModelRunner> loadRandomOnDevice(ModelConfig config, DType type, KvCacheSpec kv, long seed) {
        return Optional.of(loadRandom(config, type, kv, seed));
    }

    /** The GPU runner keeps K and V in the weights' storage type. */
    @Override
    public int kvElementBytes(DType weights) {
        return weights.bytes();
    }

    /**
     * This GPU's memory, free and total now; reserved are the weights and an upper estimate of the step buffers for
     * the largest step (activations of every batched token, logits of every running sequence) and the matrix-product
     * workspace.
     */
    @Override
    public KvCacheMemory kvCacheMemory(ModelConfig c, long weightBytes, int kvElementBytes, int maxBatchedTokens,
                                       int maxSequences) {
        context.makeCurrent();
        CudaContext.MemoryInfo memory = context.memoryInfo();
        long perToken = 4L * (4L * c.hiddenSize() + c.qDim() + 2L * c.kvDim()) + 3L * kvElementBytes * c.intermediateSize();
        long perSequence = 4L * c.vocabSize() + (long) kvElementBytes * c.hiddenSize();
        long buffers = perToken * maxBatchedTokens + perSequence * maxSequences + CublasLt.WORKSPACE_BYTES;
        return new KvCacheMemory("GPU memory", memory.total(), memory.free(), weightBytes + buffers, Long.MAX_VALUE, null);
    }

    @Override
    public boolean onGpu() {
        return true;
    }

    /** Stages are timed by CUDA events on the runner's stream, and profiled steps run eagerly. */
    @Override
    public boolean timesStagesWithEvents() {
        return true;
    }

    /** This GPU's kernels at the workload's shapes on random operands, for {@code ember bench kernel}. */
    @Override
    public KernelSuite kernelSuite(KernelSuite.Workload workload) {
        return new CudaKernelSuite(context, workload);
    }

    @Override
    public DeviceCeilings measureCeilings(Progress progress) {
        return DeviceCeilings.measuredOnce(deviceName(), () -> CudaCeilings.measure(context, progress));
    }

    /** CUPTI's kernel activity ({@link Cupti}); refused, naming what is missing, where libcupti cannot be opened. */
    @Override
    public KernelRecorder recordKernels() {
        try {
            context.makeCurrent();
            context.synchronize();  // the work queued before does not count
            return Cupti.start(context::synchronize);
        } catch (IllegalStateException | ExceptionInInitializerError | NoClassDefFoundError e) {
            // Opening libcupti fails in the binding's initializer: the first time with its reason, later as a class not found.
            Throwable why = e.getCause() != null ? e.getCause() : e;
            throw new EmberException("--kernel-timeline needs CUPTI (libcupti of the CUDA toolkit; "
                    + "EMBER_CUDA_LIB_DIR names its folder): " + why.getMessage());
        }
    }

    @Override
    public DeviceLink link(int first, int second, long maxBytes) {
        try {
            return CudaDeviceLink.open(first, second, maxBytes);
        } finally {
            context.makeCurrent();
        }
    }

    /** Releases the GPU; close this backend's runners first, since they compute in its context. */
    @Override
    public void close() {
        context.close();
    }
}
