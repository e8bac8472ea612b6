package dev.ember.backend.cpu;

import dev.ember.Progress;
import dev.ember.backend.Backend;
import dev.ember.backend.DeviceCeilings;
import dev.ember.backend.InProcessCollective;
import dev.ember.backend.KernelSuite;
import dev.ember.backend.KvCacheMemory;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.PipelineSplit;
import dev.ember.backend.streaming.GroupLayout;
import dev.ember.backend.streaming.StreamingPlan;
import dev.ember.backend.streaming.StreamingSettings;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.Tensor;
import dev.ember.nativelib.ThreadNiceness;
import jdk.incubator.vector.FloatVector;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.IntFunction;

/** Runs models on the host's cores with the Vector API: the reference every other backend is checked against. */
public final class CpuBackend implements Backend {
    private static final long PAGE = 4096;
    /**
     * Niceness of the team's workers (Linux; {@code EMBER_CPU_NICENESS}, default 10, 0: as the process): a server's
     * threads on the same cores (the acceptor, the request threads, the JIT compiler) run first when they want a core,
     * so that a burst of requests on a small machine is accepted and answered while the model computes, and the
     * computation loses nothing when they do not.
     */
    private static final int COMPUTE_NICENESS = niceness(System.getenv("EMBER_CPU_NICENESS"));

    private final Parallel team;
    private final String deviceName;

    public CpuBackend() {
        this(Runtime.getRuntime().availableProcessors());
    }

    public CpuBackend(int threads) {
        this.team = new Parallel(threads, CpuBackend::niceWorker);
        this.deviceName = "cpu (" + threads + " threads, " + FloatVector.SPECIES_PREFERRED.vectorBitSize() + "-bit vectors)";
    }

    private static void niceWorker() {
        if (COMPUTE_NICENESS > 0) {
            ThreadNiceness.setForCurrentThread(COMPUTE_NICENESS);
        }
    }

    private static int niceness(String configured) {
        if (configured == null || configured.isBlank()) {
            return 10;
        }
        try {
            return Math.clamp(Integer.parseInt(configured.strip()), 0, 19);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("EMBER_CPU_NICENESS: a nice value 0 to 19, not " + configured, e);
        }
    }

    @Override
    public String deviceName() {
        return deviceName;
    }

    /**
     * A runner of {@code model}. Streaming modes keep the CPU's "device" as a window of group buffers in working
     * memory ({@link StreamedLayers}), the budget counted there; the storage type is bf16 for bf16 weights and f32
     * otherwise, as {@link WeightMatrix} reads them.
     */
    @Override
    public ModelRunner load(Model model, KvCacheSpec kv, StreamingSettings streaming, Progress progress) {
        StreamingPlan plan = planWeights(model, streaming);
        if (!plan.streams()) {
            pageIn(model, progress);
            return new CpuModelRunner(model, kv, team, deviceName, null, null);
        }
        StreamedLayers layers = new StreamedLayers(model, layout(model), plan, System.err::println, streaming.verbose(), progress);
        try {
            return new CpuModelRunner(model, kv, team, deviceName, layers, null);
        } catch (RuntimeException e) {
            layers.close();
            throw e;
        }
    }

    private static GroupLayout layout(Model model) {
        return GroupLayout.of(model.config(), model.layers().getFirst().wq().dtype() == DType.BF16 ? DType.BF16 : DType.F32);
    }

    /**
     * {@code model} split over {@code size} ranks that are threads of this process ({@link Model#tensorShard}), each
     * with its share of this backend's threads and of the cache, meeting in an {@link InProcessCollective} after the o
     * and down projections and to gather the logits: the sharding a GPU group runs through NCCL, checked on a CPU.
     * Rank 0 is the runner returned; it computes the others' steps on their threads as it computes its own.
     */
    @Override
    public ModelRunner loadTensorParallel(Model model, KvCacheSpec kv, int size, Progress progress) {
        if (size == 1) {
            return load(model, kv, progress);
        }
        ModelConfig shard = model.config().tensorShard(size);
        KvCacheSpec shardKv = new KvCacheSpec(kv.numLayers(), shard.numKvHeads(), kv.headDim(), kv.blockSize(), kv.numBlocks());
        pageIn(model, progress);
        return group(CpuModelRunner.Split.TENSOR, model, kv, size, rank -> model.tensorShard(rank, size), rank -> shardKv,
                ", tensor parallel " + size);
    }

    /**
     * {@code model} split into pipeline stages of {@code stageLayers[s]} consecutive layers ({@link Model#layerRange}),
     * each a thread of this process with its share of this backend's threads and its layers' cache, handing each
     * micro-batch's activations to the next through an {@link InProcessCollective}. Stage 0 is the runner returned.
     */
    @Override
    public ModelRunner loadPipelineParallel(Model model, KvCacheSpec kv, int[] stageLayers, Progress progress) {
        int[] first = PipelineSplit.firstLayers(stageLayers, model.config().numLayers());
        if (stageLayers.length == 1) {
            return load(model, kv, progress);
        }
        pageIn(model, progress);
        return group(CpuModelRunner.Split.PIPELINE, model, kv, stageLayers.length,
                stage -> model.layerRange(first[stage], first[stage] + stageLayers[stage]),
                stage -> new KvCacheSpec(stageLayers[stage], kv.numKvHeads(), kv.headDim(), kv.blockSize(), kv.numBlocks()),
                ", pipeline parallel [" + PipelineSplit.describe(stageLayers) + "]");
    }

    /** Runners of the ranks' parts of {@code model}, meeting in one in-process group; rank 0's is returned. */
    private ModelRunner group(CpuModelRunner.Split split, Model model, KvCacheSpec kv, int size, IntFunction<Model> part,
                              IntFunction<KvCacheSpec> partKv, String described) {
        InProcessCollective collective = new InProcessCollective(size);
        int threadsEach = Math.max(1, team.threads() / size);
        List<AutoCloseable> owned = new ArrayList<>();
        List<CpuModelRunner> followers = new ArrayList<>();
        try {
            for (int rank = 1; rank < size; rank++) {
                Model mine = part.apply(rank);
                Parallel threads = new Parallel(threadsEach, CpuBackend::niceWorker);
                owned.add(mine);
                owned.add(threads);
                followers.add(new CpuModelRunner(mine, partKv.apply(rank), threads, deviceName, null,
                        new CpuModelRunner.Group(split, collective.rank(rank), model.config(), kv, List.of(), null, List.of())));
            }
            Model mine = part.apply(0);
            Parallel threads = new Parallel(threadsEach, CpuBackend::niceWorker);
            owned.add(mine);
            owned.add(threads);
            ExecutorService rankThreads = Executors.newFixedThreadPool(size - 1,
                    Thread.ofPlatform().daemon().name("ember-rank-", 1).factory());
            return new CpuModelRunner(mine, partKv.apply(0), threads, deviceName + described, null,
                    new CpuModelRunner.Group(split, collective.rank(0), model.config(), kv, List.copyOf(followers), rankThreads,
                            List.copyOf(owned)));
        } catch (RuntimeException e) {
            followers.forEach(CpuModelRunner::close);
            for (AutoCloseable c : owned) {
                try {
                    c.close();
                } catch (Exception suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
    }

    /** The embedding, final norm and output projection stay resident; the budget counts the bytes as the CPU reads them. */
    @Override
    public StreamingPlan planWeights(Model model, StreamingSettings streaming) {
        long head = model.embedding().byteSize() + model.finalNorm().byteSize()
                + (model.lmHead() == model.embedding() ? 0 : model.lmHead().byteSize());
        return StreamingPlan.decide(streaming, model.name(), model.config().numLayers(), layout(model), head,
                StreamingPlan.hostMemoryAvailable());
    }

    /** None: a random-weight model for the CPU is made on the host ({@code RandomWeights}) and {@link #load}ed. */
    @Override
    public Optional<ModelRunner> loadRandomOnDevice(ModelConfig config, DType type, KvCacheSpec kv, long seed) {
        return Optional.empty();
    }

    /** The CPU runner keeps K and V as floats, whatever the weights' type. */
    @Override
    public int kvElementBytes(DType weights) {
        return Float.BYTES;
    }

    /**
     * The Java heap ({@code -Xmx}), where the cache's float arrays go; the weights stay in their mapped file, outside
     * it. One layer's keys are one float array, which bounds the tokens.
     */
    @Override
    public KvCacheMemory kvCacheMemory(ModelConfig config, long weightBytes, int kvElementBytes, int maxBatchedTokens,
                                       int maxSequences) {
        Runtime rt = Runtime.getRuntime();
        long used = rt.totalMemory() - rt.freeMemory();
        return new KvCacheMemory("the Java heap", rt.maxMemory(), rt.maxMemory() - used, 0,
                Integer.MAX_VALUE / config.kvDim(), "give the JVM a larger heap (-Xmx)");
    }

    @Override
    public boolean onGpu() {
        return false;
    }

    /** Stages are timed by the host clock ({@code StageClock.onHost}). */
    @Override
    public boolean timesStagesWithEvents() {
        return false;
    }

    /**
     * Touches every page of the mapped weights so that reading them from disk happens here, with progress,
     * rather than unannounced inside the first token's forward pass.
     */
    private static void pageIn(Model model, Progress progress) {
        List<Tensor> tensors = model.tensors().toList();
        long total = tensors.stream().mapToLong(Tensor::byteSize).sum();
        long done = 0;
        long sink = 0;
        for (Tensor t : tensors) {
            MemorySegment s = t.data();
            for (long off = 0; off < s.byteSize(); off += PAGE) {
                sink += s.get(ValueLayout.JAVA_BYTE, off);
            }
            done += s.byteSize();
            progress.update("loading weights", done, total);
        }
        if (sink == Long.MIN_VALUE) {
            // Keeps the reads above from being optimised away; never true.
            progress.update("", 0, 0);
        }
    }

    @Override
    public DeviceCeilings measureCeilings(Progress progress) {
        return DeviceCeilings.measuredOnce(deviceName, () -> CpuCeilings.measure(deviceName, team, progress));
    }

    /** One thread's copy between two 256 MiB host buffers, the best of three: how the CPU's window is filled. */
    @Override
    public double measureWeightCopy(Progress progress) {
        long bytes = 256L << 20;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment from = arena.allocate(bytes, 4096), to = arena.allocate(bytes, 4096);
            from.fill((byte) 1);
            to.fill((byte) 0);
            long best = Long.MAX_VALUE;
            for (int i = 0; i < 3; i++) {
                long start = System.nanoTime();
                MemorySegment.copy(from, 0, to, 0, bytes);
                best = Math.min(best, System.nanoTime() - start);
                progress.update("measuring host copies", i + 1, 3);
            }
            return bytes / (best / 1e9);
        }
    }

    @Override
    public KernelSuite kernelSuite(KernelSuite.Workload workload) {
        return new CpuKernelSuite(team, workload);
    }

    @Override
    public void close() {
        team.close();
    }
}
