package dev.ember.backend.cuda;

import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.Stage;
import dev.ember.backend.StageClock;
import dev.ember.backend.StageProfile;
import dev.ember.backend.StepCounters;
import dev.ember.backend.SubmittedStep;
import dev.ember.backend.WorkMarks;
import dev.ember.backend.streaming.GroupLayout;
import dev.ember.backend.streaming.StreamingPlan;
import dev.ember.backend.streaming.StreamingReport;
import dev.ember.kvcache.BlockAllocator;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Function;

import static dev.ember.backend.cuda.CudaSubmittedStep.samplesOnHost;

/**
 * The forward pass on one GPU. Each step uploads its metadata (tokens, positions, cache slots, block
 * tables, sampling parameters) with one copy, runs every layer as a handful of kernels and four matrix
 * products, and either picks each chunk's next token on the GPU and copies back only the token ids
 * ({@link #submit}) or copies back the logits of each chunk's last token ({@link #forward}).
 *
 * <p>Products of at most {@link EmberKernels#GEMV_MAX_ROWS} rows go to whichever of cuBLASLt and Ember's
 * matrix-vector kernel {@link MatrixProducts} timed faster for the shape, decided at {@link #warmUp} for every such
 * size (or before the first step of that size, outside any graph capture).
 *
 * <p>Per layer: RMSNorm, the fused q/k/v product, qkv_rope (bias, q/k norm, RoPE, and the write of the
 * new keys and values into the paged cache), attention (flash prefill for chunks of several tokens, split-K
 * decode for single tokens, both reading the cache through the block tables), the o product added into the residual,
 * RMSNorm, the fused gate/up product, SiLU-and-multiply and the down product added into the residual (the norms and
 * SiLU-and-multiply inside the products where the matrix-vector kernel takes them: {@link MatrixProducts}). The residual stream, and the q/k/v, o
 * and down products, stay in fp32; the operands of the products, the gate/up product (its largest
 * intermediate, rounded as HF rounds it), q and the cache are in the model's storage type.
 *
 * <p>Nothing is allocated on the device per step: activation buffers grow only when a step is larger
 * than every earlier one. Uniform steps (single-token decodes; speculative verifications whose chunks all have gamma + 1
 * tokens) are padded to the next size of a ladder and replayed from a {@link CudaGraph} captured per shape and
 * block-table width ({@link #warmUp} captures the decode graphs before any timed work; a verification's at its first
 * step); a step of decodes and verifications of several lengths, every row an output, replays the decode graph of its
 * rows ({@link StepLayout#asDecodeOf}). Not thread-safe: one engine thread drives a runner.
 *
 * <p>This class keeps the order of a step ({@code run}) and of a layer ({@code enqueueStep}); its parts hold the rest:
 * {@link DeviceModel} the weights and cache, {@link StepBuffers} the step buffers, {@link StepLayout} the metadata's
 * layout and writing, {@link DecodeGraphs} the ladder and its graphs, {@link StepSlots} and {@link CudaSubmittedStep}
 * the host side of steps in flight, {@link RunnerCounters} the counts.
 */
final class CudaModelRunner implements ModelRunner {
    /** Tokens and sequences the first buffers hold; both grow by doubling when a step needs more. */
    private static final int INITIAL_ROWS = 256;
    private static final int INITIAL_CHUNKS = 16;
    /**
     * The longest chunk of a uniform step replayed from a graph: speculative verifications of gamma + 1 <= 16 tokens.
     * Longer uniform chunks are prefills, run eagerly (their launches are a small share of their time).
     */
    private static final int MAX_REPLAYED_LENGTH = 16;

    private final CudaContext context;
    private final ModelConfig config;
    private final KvCacheSpec kvSpec;
    private final BlockAllocator allocator;
    private final DType type;
    private final AttentionShape shape;
    private final boolean useGraphs;
    private final String deviceName;
    private final CudaStream stream;
    private final EmberKernels kernels;
    private final MatrixProducts products;
    private final DeviceModel model;
    /** The decoder layers' weights: resident, or streamed through a window. */
    private final LayerResidency layers;
    /**
     * One-row decode steps' layers in one launch, where the model and GPU allow it ({@link LayerStream}); made only when
     * asked for (EMBER_LAYER_STREAM=1, or {@link #useLayerStream}), as it is measured slower than the kernels layer by
     * layer so far (docs/benchmarks.md).
     */
    private LayerStream layerStream;
    private boolean useLayerStream;
    /** A cache block outside the allocator's pool, where padding rows write their keys and values. */
    private final int scratchBlock;
    private final int maxStride;
    private final DecodeGraphs graphs;
    private StepBuffers buffers;
    /** One logits row of a sequence sampled on the host ({@link #sampleOnHost}). */
    private float[] hostRow = new float[0];
    /** Marks between the stages of eager steps: {@link StageClock#OFF} unless {@link #profileStages} turned it on. */
    private StageClock stages = StageClock.OFF;
    /** The host side of the last two steps and the step submitted last. */
    private final StepSlots slots;
    /**
     * Recorded on another runner's stream after its step that took this runner's last sampled tokens (carry_tokens), for
     * this runner's stream to wait for before its next step overwrites them ({@link #tokensTakenOn}).
     */
    private final CudaEvent tokensTaken;
    final RunnerCounters counts = new RunnerCounters();

    /**
     * A runner for {@code model} as {@code plan} says: its weights uploaded whole, or only the embedding, final norm and
     * output projection uploaded and the layers streamed through a window ({@link StreamedLayers}); progress goes to
     * {@code progress}, the window's prefetches and evictions to {@code verbose} (or nowhere).
     */
    static CudaModelRunner upload(CudaContext context, Model model, KvCacheSpec kvSpec, StreamingPlan plan,
                                  Consumer<String> verbose, Progress progress, boolean useGraphs) {
        DType type = DeviceWeights.storageType(model);
        Function<CudaStream, LayerResidency> streamed = !plan.streams() ? null : compute -> new StreamedLayers(model,
                GroupLayout.of(model.config(), type), plan, compute, System.err::println, verbose, progress);
        return new CudaModelRunner(context, model.config(), model.name(), type, kvSpec, useGraphs, plan.deviceBytes(),
                (kernels, stream) -> plan.streams() ? DeviceWeights.uploadHead(model, type, progress)
                        : DeviceWeights.upload(model, type, progress), streamed);
    }

    /** A runner for a model of shape {@code config} with random weights of {@code type} made on the GPU. */
    static CudaModelRunner random(CudaContext context, ModelConfig config, DType type, long seed, KvCacheSpec kvSpec,
                                  boolean useGraphs) {
        return new CudaModelRunner(context, config, "random " + type.name().toLowerCase(Locale.ROOT) + " weights",
                type, kvSpec, useGraphs, DeviceWeights.deviceBytes(config, type),
                (kernels, stream) -> DeviceWeights.random(config, type, seed, kernels, stream), null);
    }

    /**
     * A runner of the first {@code count} layers over this runner's resident weights: the device memory it takes is
     * its cache and step buffers alone. Empty where the layers stream through a window.
     */
    @Override
    public Optional<ModelRunner> firstLayers(int count, KvCacheSpec kv) {
        if (layers.streams()) {
            return Optional.empty();
        }
        return Optional.of(new CudaModelRunner(context, config.withLayers(count), "first " + count + " layers",
                type, kv, useGraphs, 0, (kernels, stream) -> model.weights.firstLayers(count), null));
    }

    /**
     * @param weightBytes device bytes the weights take (all of them, or the resident ones and the streaming window)
     * @param streamed    makes the streaming window for the compute stream, or null where every weight is resident
     */
    private CudaModelRunner(CudaContext context, ModelConfig config, String modelName, DType type, KvCacheSpec kvSpec,
                            boolean useGraphs, long weightBytes, DeviceModel.WeightSource source,
                            Function<CudaStream, LayerResidency> streamed) {
        this.context = context;
        this.config = config;
        this.kvSpec = kvSpec;
        this.useGraphs = useGraphs && streamed == null;  // a streamed step reads other addresses each time: no graphs
        if (kvSpec.numLayers() != config.numLayers() || kvSpec.kvDim() != config.kvDim()) {
            throw new IllegalArgumentException("KV cache geometry " + kvSpec + " does not match the model");
        }
        this.type = type;
        this.shape = AttentionShape.of(config, kvSpec.blockSize());
        EmberKernels.checkSupported(shape);
        long maxTokens = Math.min(kvSpec.tokenCapacity(), config.maxPositions());
        this.maxStride = (int) ((maxTokens + kvSpec.blockSize() - 1) / kvSpec.blockSize());
        this.scratchBlock = kvSpec.numBlocks();
        context.makeCurrent();
        DeviceModel.checkFits(context, modelName, config, type, kvSpec, weightBytes,
                StepBuffers.bytes(config, shape, type, INITIAL_ROWS, INITIAL_CHUNKS, maxStride) + CublasLt.WORKSPACE_BYTES);
        this.allocator = new BlockAllocator(kvSpec);
        this.deviceName = context.device().describe();
        try {
            this.stream = CudaStream.create();
            this.graphs = new DecodeGraphs(stream, this::enqueueStep, counts);
            this.kernels = EmberKernels.load(context.device());
            this.products = new MatrixProducts(kernels);
            this.model = DeviceModel.load(config, type, kvSpec, source, kernels, stream);
            this.layers = streamed != null ? streamed.apply(stream) : ResidentLayers.of(model.weights);
            useLayerStream("1".equals(System.getenv("EMBER_LAYER_STREAM")));
            this.buffers = new StepBuffers(config, shape, type, INITIAL_ROWS, INITIAL_CHUNKS, maxStride);
            this.slots = new StepSlots();
            this.tokensTaken = CudaEvent.forOrdering();
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public KvCacheSpec kvSpec() {
        return kvSpec;
    }

    @Override
    public BlockAllocator blockAllocator() {
        return allocator;
    }

    @Override
    public int kvElementBytes() {
        return type.bytes();
    }

    @Override
    public int weightElementBytes() {
        return type.bytes();
    }

    @Override
    public String deviceName() {
        return deviceName;
    }

    @Override
    public void forward(ForwardBatch batch, float[] logits) {
        int vocab = config.vocabSize();
        int outputs = batch.outputRows();
        if (logits.length < (long) outputs * vocab) {
            throw new IllegalArgumentException("logits buffer holds " + logits.length + " floats, need " + (long) outputs * vocab);
        }
        slots.checkLastAwaited();
        if (batch.carriesTokens()) {
            throw new IllegalArgumentException("forward takes no carried chunks: their tokens are sampled, not returned as logits");
        }
        long start = System.nanoTime();
        StepSlots.Slot slot = slots.next();
        run(batch, null, slot, null);
        slots.noneSubmitted();
        MemorySegment hostLogits = buffers.hostLogits.segment().asSlice(0, 4L * outputs * vocab);
        stages.enter(Stage.MEMCPY_D2H);
        buffers.logits.copyToHostAsync(hostLogits, stream);
        stages.end();
        synchronize();
        MemorySegment.copy(hostLogits, ValueLayout.JAVA_FLOAT, 0, logits, 0, outputs * vocab);
        counts.forwardNanos += System.nanoTime() - start;
    }

    /**
     * Queues the step, its sampling and the copy of its tokens into a pinned buffer of its own (two alternate), and
     * returns. Greedy and plain temperature / top-k / top-p rows are picked on the GPU by sample_tokens, drawing with
     * the sampler's {@link Sampler#nextUniform()}, a row held to a grammar after mask_logits applied the grammar's mask; rows whose sampler needs more (a repetition penalty, min-p) copy
     * back their own logits row and are sampled on the host when the step is awaited, so such a step must be awaited
     * before the next is submitted. Rows sampled on the GPU whose sampler asks for logprobs get them from token_logprobs
     * after sample_tokens, and copy back only those (the token's and the top K ids and logprobs), which the step records
     * in their samplers when awaited. Carried chunks take their tokens from the device's sampled-token buffer, which
     * the previous step wrote and this one overwrites only at its end (carry_tokens in embedding.cu); or, where they
     * name another runner's step (a draft model's last), from that runner's buffer, once this stream has waited for that
     * step's event; that runner's stream then waits in turn until this one has taken them.
     */
    @Override
    public SubmittedStep submit(ForwardBatch batch, Sampler[] samplers) {
        int outputs = batch.outputRows(), vocab = config.vocabSize();
        if (samplers.length < outputs) {
            throw new IllegalArgumentException("a batch of " + outputs + " outputs needs as many samplers, got " + samplers.length);
        }
        boolean hostRows = false;
        for (int i = 0; i < outputs; i++) {
            if (samplers[i] != null && samplers[i].vocabSize() != vocab) {
                throw new IllegalArgumentException("sampler " + i + " is for a vocabulary of " + samplers[i].vocabSize()
                        + ", the model's is " + vocab);
            }
            hostRows |= samplesOnHost(samplers[i]);
        }
        CudaSubmittedStep source = slots.carrySource(batch);
        long start = System.nanoTime();
        StepSlots.Slot slot = slots.next();
        StepSampling sampling = run(batch, samplers, slot, source);
        MemorySegment hostTokens = slot.hostSampled.segment().asSlice(0, 4L * outputs);
        stages.enter(Stage.MEMCPY_D2H);
        buffers.sampled.copyToHostAsync(hostTokens, stream);
        if (sampling.logprobs()) {
            long tops = 4L * outputs * SamplingParams.MAX_LOGPROBS;
            buffers.logprob.copyToHostAsync(slot.hostLogprob.segment().asSlice(0, 4L * outputs), stream);
            buffers.topIds.copyToHostAsync(slot.hostTopIds.segment().asSlice(0, tops), stream);
            buffers.topLogprobs.copyToHostAsync(slot.hostTopLogprobs.segment().asSlice(0, tops), stream);
        }
        for (int i = 0; i < outputs; i++) {
            if (samplesOnHost(samplers[i])) {  // a run of such rows (a prompt scored for its logprobs) in one copy
                int end = i + 1;
                while (end < outputs && samplesOnHost(samplers[end])) {
                    end++;
                }
                long from = 4L * i * vocab;
                buffers.logits.copyToHostAsync(from, buffers.hostLogits.segment().asSlice(from, 4L * (end - i) * vocab), stream);
                i = end - 1;
            }
        }
        stages.end();
        slot.done.record(stream);
        CudaSubmittedStep step = new CudaSubmittedStep(this, slot, samplers, outputs, hostRows);
        slots.submitted(step);
        counts.forwardNanos += System.nanoTime() - start;
        return step;
    }

    @Override
    public boolean computesAhead() {
        return true;
    }

    /** A token drawn on the GPU, unless its sampler must see it before the next draw (a grammar's, masked here too). */
    @Override
    public boolean carriesTokens(Sampler sampler) {
        return sampler == null || !samplesOnHost(sampler) && !sampler.observesTokens();
    }

    /** Whether {@code step} is the step this runner submitted last, whose sampled tokens its buffer still holds. */
    boolean submittedLast(CudaSubmittedStep step) {
        return slots.isLast(step);
    }

    /**
     * A step on {@code consumer} (another runner's stream) has just queued the taking of this runner's last sampled
     * tokens: the work queued on this runner's stream from now on waits for that on the device, so that its next step
     * cannot overwrite them first (the wait holds the event's recording of now, whatever records it later).
     */
    private void tokensTakenOn(CudaStream consumer) {
        tokensTaken.record(consumer);
        stream.waitFor(tokensTaken);
    }

    /**
     * Waits until a submitted step's copies are done ({@code done}), counting the wait from {@code start}; while stages
     * are profiled, waits for the whole stream instead.
     */
    void awaitCopies(CudaEvent done, long start) {
        context.makeCurrent();
        if (stages instanceof EventStageClock) {
            synchronize();  // and collect the stage marks of every queued step
        } else {
            done.synchronize();
            counts.waitNanos += System.nanoTime() - start;
        }
    }

    /**
     * The host-sampling fallback: the token {@code sampler} draws from output {@code output}'s logits row, which a
     * submitted step copies back for a sampler that needs more than sample_tokens does.
     */
    int sampleOnHost(Sampler sampler, int output) {
        int vocab = config.vocabSize();
        if (hostRow.length < vocab) {
            hostRow = new float[vocab];
        }
        MemorySegment.copy(buffers.hostLogits.segment(), ValueLayout.JAVA_FLOAT, 4L * output * vocab, hostRow, 0, vocab);
        return sampler.sampleInStep(hostRow, 0);
    }

    private void synchronize() {
        long start = System.nanoTime();
        stream.synchronize();
        counts.waitNanos += System.nanoTime() - start;
        if (stages instanceof EventStageClock clock) {
            clock.collect();
        }
    }

    @Override
    public void profileStages(StageProfile profile) {
        if (stages instanceof EventStageClock clock) {
            clock.close();
        }
        stages = profile.enabled() ? new EventStageClock(profile, stream) : StageClock.OFF;
    }

    /** Events on this runner's stream: the device's time between the points. */
    @Override
    public WorkMarks workMarks(int points) {
        context.makeCurrent();
        return new EventMarks(stream, points);
    }

    @Override
    public Optional<StreamingReport> streaming() {
        return layers instanceof StreamedLayers s ? Optional.of(s.report()) : Optional.empty();
    }

    @Override
    public StepCounters counters() {
        return counts.snapshot();
    }

    /**
     * Uploads the step's metadata (written into {@code slot}) and queues the step, replaying (or first capturing) a
     * graph for a step of decodes only; with {@code samplers}, the step ends with sample_tokens writing each chunk's
     * choice, and token_logprobs where some row computes its logprobs on the GPU. Carried chunks get their tokens from
     * {@code source}'s on the device (the step before, or another runner's last), or on the host when the buffers had
     * to grow (which waits for the device). Returns what the step queued after its logits.
     */
    private StepSampling run(ForwardBatch batch, Sampler[] samplers, StepSlots.Slot slot, CudaSubmittedStep source) {
        long start = System.nanoTime();
        context.makeCurrent();
        StepLayout exact = StepLayout.of(batch, config.vocabSize(), kvSpec.blockSize(), maxStride);
        int uniform = exact.uniformLength();
        boolean uniformReplay = uniform >= 1 && uniform <= Math.min(kvSpec.blockSize(), MAX_REPLAYED_LENGTH);
        // Profiling marks eager steps. A padding chunk writes its tokens into the one scratch block. Verifications of
        // several lengths (n-gram drafts, sequences near their end) beside decodes replay the decode graph of their rows.
        boolean replay = useGraphs && (uniformReplay || exact.rowsOnly()) && stages == StageClock.OFF;
        StepLayout layout = !replay ? exact
                : uniformReplay ? exact.padded(DecodeGraphs.batchSize(exact.chunks()))
                : exact.asDecodeOf(DecodeGraphs.batchSize(exact.rows()));
        if (ensureCapacity(layout.rows(), Math.max(Math.max(layout.chunks(), layout.outputs()), layout.decode())) && batch.carriesTokens()) {
            batch = batch.withCarriedTokens(source.copiedTokens());  // the device is idle after growing: the copies are done
        }
        slot.fit(buffers);
        MemorySegment hostMeta = slot.hostMeta.segment();
        int splits = decodeSplits(layout);
        int carried = layout.writeMetadata(batch, kvSpec, scratchBlock,
                batch.carriesTokens() ? source.runner.buffers.sampled.address() : 0, hostMeta);
        int vocab = config.vocabSize(), masks = 0;
        StepSampling sampling = StepSampling.NONE;
        if (samplers != null) {
            boolean logprobs = layout.writeSampling(samplers, exact.outputs(), hostMeta);
            masks = layout.writeMasks(samplers, exact.outputs(), vocab, hostMeta, slot.hostMasks.segment());
            sampling = new StepSampling(true, masks > 0, logprobs);
        }
        long choosing = System.nanoTime();
        chooseProducts(layout);
        long chosen = System.nanoTime();
        counts.chooseNanos += chosen - choosing;
        stages.enter(Stage.MEMCPY_H2D);
        buffers.meta.copyFromHostAsync(hostMeta.asSlice(0, 4L * layout.totalInts()), 0, stream);
        if (masks > 0) {
            buffers.tokenMasks.copyFromHostAsync(slot.hostMasks.segment().asSlice(0, 4L * masks * StepLayout.maskInts(vocab)), 0, stream);
        }
        boolean otherRunner = carried > 0 && source.runner != this;
        if (otherRunner) {
            stream.waitFor(source.slot.done);  // its tokens are sampled, on its own stream
        }
        counts.steps++;
        if (replay) {
            long launching = System.nanoTime(), capturedBefore = counts.captureNanos;
            counts.prepareNanos += launching - chosen + choosing - start;
            graphs.graph(layout, splits, sampling).launch(stream);
            counts.replayedSteps++;
            counts.paddedRows += layout.rows() - exact.rows();
            counts.launchNanos += System.nanoTime() - launching - (counts.captureNanos - capturedBefore);
        } else {
            long launching = System.nanoTime();
            counts.prepareNanos += launching - chosen + choosing - start;
            enqueueStep(layout, maxChunkLength(batch), splits, sampling, carried > 0);
            counts.launchNanos += System.nanoTime() - launching;
        }
        if (otherRunner) {
            source.runner.tokensTakenOn(stream);
        }
        return sampling;
    }

    /**
     * Grows the buffers to the largest step (so that no later step reallocates them and drops the graphs), chooses the
     * products of every small step, then captures the decode graphs (with sampling; a step that computes logprobs on the
     * GPU captures its own when it first runs) of every ladder size up to {@code maxBatch} for every block-table
     * width up to that of {@code contextTokens}. Nothing runs on the captured inputs; the metadata buffer is not read
     * until a step uploads its own.
     */
    @Override
    public void warmUp(int maxBatch, int maxStepTokens, int contextTokens) {
        context.makeCurrent();
        int largest = DecodeGraphs.batchSize(Math.max(1, maxBatch));
        ensureCapacity(Math.max(Math.max(largest, maxStepTokens), EmberKernels.GEMV_MAX_ROWS), Math.max(largest, EmberKernels.GEMV_MAX_ROWS));
        chooseSmallProducts();
        if (!useGraphs || stages != StageClock.OFF) {
            return;
        }
        int widest = Math.min(StepLayout.tableWidth(Math.max(1, (contextTokens + kvSpec.blockSize() - 1) / kvSpec.blockSize())), maxStride);
        DecodeGraphs.forEachShape(largest, widest, this::capture);
    }

    /**
     * Times the small products of every row count the matrix-vector kernel takes, so that no step of a run stops to
     * time its own: besides the decode batches, a verification of gamma + 1 rows, a draft's catch-up, and the few
     * tokens of a prompt past its cached prefix are small steps of any size.
     */
    private void chooseSmallProducts() {
        long choosing = System.nanoTime();
        for (int rows = 1; rows <= EmberKernels.GEMV_MAX_ROWS; rows++) {
            chooseProducts(StepLayout.decode(rows, 1));
        }
        counts.chooseNanos += System.nanoTime() - choosing;
    }

    /** Captures the sampled decode graph of {@code size} rows at one block-table width; its products are chosen already. */
    private void capture(int size, int stride) {
        StepLayout layout = StepLayout.decode(size, stride);
        graphs.graph(layout, decodeSplits(layout), StepSampling.TOKENS);
    }

    /**
     * Decides, before the first step of each small size, between cuBLASLt and the matrix-vector kernel for the
     * layers' products (when the step has few rows) and the output projection (when it has few chunks), timing
     * them on this step's scratch buffers. Larger steps (prefill chunks of any length) are never timed, so that no step
     * of a run waits for timing.
     */
    private void chooseProducts(StepLayout layout) {
        int rows = layout.rows(), outputs = layout.outputs();
        int h = config.hiddenSize(), qd = config.qDim(), kvd = config.kvDim(), ff = config.intermediateSize();
        StepBuffers a = buffers;
        DeviceWeights weights = model.weights;
        // In a step every product follows a small kernel: a norm of the scratch rows stands for it.
        float eps = (float) config.rmsNormEps();
        Runnable norm = () -> kernels.rmsNorm(stream, type, a.x.address(), weights.finalNorm.address(),
                a.normed.address(), 0, rows, h, eps);
        if (rows <= EmberKernels.GEMV_MAX_ROWS) {
            // Timed over every layer's matrices, or every window slot's: the addresses the step's products will read.
            // The final norm's weight stands for the layers' (the same size; a norm reads it from L2).
            MatrixProducts.NormedInput normedInput = new MatrixProducts.NormedInput(a.x.address(), weights.finalNorm.address(),
                    eps, a.normed.address());
            products.choose(stream, type, normedInput, layers.attentionAddresses(LayerResidency.Attention::qkv),
                    a.qkv.address(), DType.F32, rows, qd + 2 * kvd, h, norm);
            products.choose(stream, type, a.attention.address(), layers.attentionAddresses(LayerResidency.Attention::o),
                    a.x.address(), DType.F32, rows, h, qd, norm);
            products.choose(stream, type, normedInput, layers.mlpAddresses(LayerResidency.Mlp::gateUp),
                    a.gateUp.address(), type, rows, 2 * ff, h, norm);
            products.choose(stream, type, new MatrixProducts.GatedInput(a.gateUp.address(), a.gated.address()),
                    layers.mlpAddresses(LayerResidency.Mlp::down), a.x.address(), DType.F32, rows, h, ff, norm);
        }
        if (outputs <= EmberKernels.GEMV_MAX_ROWS) {
            products.choose(stream, type, a.last.address(), new long[] {weights.lmHead.address()}, a.logits.address(),
                    DType.F32, outputs, config.vocabSize(), h, norm);
        }
    }

    /** What {@link MatrixProducts} measured and chose for each small shape so far, one line each. */
    @Override
    public List<String> measuredChoices() {
        return products.choices().stream().sorted().toList();
    }

    private static int maxChunkLength(ForwardBatch batch) {
        int longest = 0;
        for (ForwardBatch.Chunk c : batch.chunks()) {
            longest = Math.max(longest, c.tokens().length);
        }
        return longest;
    }

    /** The decode-attention splits of a step ({@link EmberKernels#decodeSplits}), 1 for a step without decodes. */
    private int decodeSplits(StepLayout layout) {
        return layout.decode() == 0 ? 1
                : kernels.decodeSplits(layout.decode(), type, shape, layout.stride() * kvSpec.blockSize());
    }

    /**
     * Grows the step buffers to {@code rows} and {@code chunks} if they are smaller, first waiting for the device to
     * finish any step that uses them; returns whether they grew.
     */
    private boolean ensureCapacity(int rows, int chunks) {
        if (rows <= buffers.rows && chunks <= buffers.chunks) {
            return false;
        }
        stream.synchronize();
        graphs.clear();  // they hold the old buffers' addresses
        int newRows = rows > buffers.rows ? Math.max(rows, 2 * buffers.rows) : buffers.rows;
        int newChunks = chunks > buffers.chunks ? Math.max(chunks, 2 * buffers.chunks) : buffers.chunks;
        buffers.close();
        long needed = StepBuffers.bytes(config, shape, type, newRows, newChunks, maxStride);
        long free = context.memoryInfo().free();
        if (needed > free) {
            throw new EmberException(String.format("a step of %d tokens in %d sequences needs %.2f GiB of GPU buffers but only %.2f GiB is free",
                    rows, chunks, DeviceModel.gib(needed), DeviceModel.gib(free)));
        }
        buffers = new StepBuffers(config, shape, type, newRows, newChunks, maxStride);
        return true;
    }

    /** Queues one whole forward pass; reads everything that varies between steps from the metadata buffer. */
    private void enqueueStep(StepLayout layout, int maxChunkLength, int splits, StepSampling sampling, boolean carries) {
        StepBuffers a = buffers;
        DeviceWeights weights = model.weights;
        int rows = layout.rows(), h = config.hiddenSize(), qd = config.qDim(), kvd = config.kvDim();
        int ff = config.intermediateSize();
        float eps = (float) config.rmsNormEps();
        // Prefill steps keep the q/k/v product in the storage type, as HF does: half the bytes written and read back.
        // Decode steps keep fp32, where cuBLASLt's and the matrix-vector kernel's fp32 outputs are the faster.
        DType qkvType = layout.prefill() > 0 && rows > EmberKernels.GEMV_MAX_ROWS ? type : DType.F32;
        stages.enter(Stage.EMBEDDING);
        if (carries) {
            kernels.carryTokens(stream, a.meta(layout.tokens()), a.meta(layout.carry()));
        }
        kernels.embeddingGather(stream, type, weights.embedding.address(), a.meta(layout.tokens()), a.x.address(), rows, h);
        // x is the residual stream: each layer's two output projections add into it, and the products after each norm
        // read it through MatrixProducts.NormedInput (normalised by the product itself where it can, by a kernel otherwise);
        // the down projection reads the gate/up product through MatrixProducts.GatedInput (SiLU-and-multiply the same way).
        if (streamsLayers() && layout.rows() == 1 && layout.decode() == 1 && stages == StageClock.OFF) {
            // every layer in one launch: the weights stream on across the layer's phases (LayerStream)
            kernels.layerStream(stream, type, layerStream.launch(), a.x.address(), a.meta(layout.positions()),
                    a.meta(layout.slots()), a.meta(layout.blockTables()), layout.stride(), a.meta(layout.rowChunk()),
                    model.inverseFrequencies.address(), shape, h, ff, eps);
        } else {
            for (int l = 0; l < config.numLayers(); l++) {
                LayerResidency.Attention w = layers.attention(l);
                stages.layer(l);
                stages.enter(Stage.ATTENTION);
                products.matmul(stream, type, new MatrixProducts.NormedInput(a.x.address(), w.attnNorm(), eps, a.normed.address()),
                        w.qkv(), a.qkv.address(), qkvType, rows, qd + 2 * kvd, h);
                long keys = model.keys(l), values = model.values(l);
                kernels.qkvRope(stream, type, a.qkv.address(), qkvType, w.qkvBias(), w.qNorm(), w.kNorm(),
                        model.inverseFrequencies.address(), a.meta(layout.positions()), a.meta(layout.slots()), a.q.address(), keys, values,
                        rows, shape, eps);
                PagedKv kv = new PagedKv(keys, values, a.meta(layout.blockTables()), layout.stride());
                if (layout.prefill() > 0) {
                    kernels.prefillAttention(stream, type, a.q.address(), kv, a.meta(layout.prefillChunks()),
                            a.meta(layout.chunkRowStart()), a.meta(layout.chunkLength()), a.meta(layout.chunkStartPosition()),
                            a.attention.address(), layout.prefill(), maxChunkLength, shape);
                }
                if (layout.decode() > 0) {
                    kernels.decodeAttention(stream, type, a.q.address(), kv, a.meta(layout.decodeRows()), a.meta(layout.rowChunk()),
                            a.meta(layout.positions()), a.partialOut.address(), a.partialMaxSum.address(), a.attention.address(),
                            layout.decode(), splits, shape);
                }
                products.accumulate(stream, type, a.attention.address(), w.o(), a.x.address(), rows, h, qd);  // into x
                if (w.oBias() != 0) {
                    kernels.addBias(stream, DType.F32, a.x.address(), w.oBias(), rows, h);
                }
                layers.attentionDone(l);
                LayerResidency.Mlp m = layers.mlp(l);
                stages.enter(Stage.FFN);
                MatrixProducts.NormedInput ffnInput = new MatrixProducts.NormedInput(a.x.address(), m.ffnNorm(), eps, a.normed.address());
                // norm, gate/up (and its bias), SiLU-and-multiply, down added into x
                products.mlp(stream, type, new MatrixProducts.Mlp(ffnInput, m.gateUp(), m.gateUpBias(), a.gateUp.address(),
                        a.gated.address(), m.down()), rows, h, ff);
                if (m.downBias() != 0) {
                    kernels.addBias(stream, DType.F32, a.x.address(), m.downBias(), rows, h);
                }
                layers.mlpDone(l);
            }
        }
        stages.layer(StageClock.NO_LAYER);
        stages.enter(Stage.RMSNORM);
        kernels.rmsNorm(stream, type, a.x.address(), weights.finalNorm.address(), a.last.address(), a.meta(layout.lastRows()),
                layout.outputs(), h, eps);
        stages.enter(Stage.LM_HEAD);
        products.matmul(stream, type, a.last.address(), weights.lmHead.address(), a.logits.address(), DType.F32,
                layout.outputs(), config.vocabSize(), h);
        if (sampling.tokens()) {
            stages.enter(Stage.SAMPLING);
            if (sampling.masks()) {
                kernels.maskLogits(stream, a.logits.address(), a.meta(layout.sampling()), a.tokenMasks.address(),
                        layout.outputs(), config.vocabSize());
            }
            kernels.sampleTokens(stream, a.logits.address(), a.meta(layout.sampling()), a.sampled.address(), layout.outputs(),
                    config.vocabSize());
        }
        if (sampling.logprobs()) {
            kernels.tokenLogprobs(stream, a.logits.address(), a.meta(layout.sampling()), a.sampled.address(), a.logprob.address(),
                    a.topIds.address(), a.topLogprobs.address(), layout.outputs(), config.vocabSize(), SamplingParams.MAX_LOGPROBS);
        }
    }

    /**
     * Runs one-row decode steps as one launch where the model allows it ({@link LayerStream}), or each layer's kernels
     * (for comparing the two). Steps captured in graphs before keep the way they were captured with.
     */
    void useLayerStream(boolean on) {
        if (on && layerStream == null) {
            layerStream = LayerStream.create(config, shape, type, context.device(), layers, model, stream).orElse(null);
        }
        useLayerStream = on;
    }

    /** Whether one-row decode steps run as one launch. */
    boolean streamsLayers() {
        return layerStream != null && useLayerStream;
    }

    /** How many decode graphs are held (one per batch shape seen). */
    int capturedGraphs() {
        return graphs.size();
    }

    @Override
    public void close() {
        context.makeCurrent();
        if (layerStream != null && layerStream.traced()) {  // EMBER_LAYER_STREAM_TRACE=1: the last step's phases
            stream.synchronize();
            layerStream.phaseReport().ifPresent(System.err::println);
        }
        if (graphs != null) {
            graphs.close();
        }
        profileStages(StageProfile.OFF);
        for (AutoCloseable c : new AutoCloseable[] {layerStream, layers, slots, tokensTaken, buffers, model, products, kernels,
                stream}) {
            if (c != null) {
                try {
                    c.close();
                } catch (Exception e) {
                    throw new IllegalStateException("closing the CUDA runner", e);
                }
            }
        }
    }
}
