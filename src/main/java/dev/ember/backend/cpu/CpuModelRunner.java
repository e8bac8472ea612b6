package dev.ember.backend.cpu;

import dev.ember.EmberException;
import dev.ember.backend.Collective;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.Stage;
import dev.ember.backend.StageClock;
import dev.ember.backend.StageProfile;
import dev.ember.backend.SubmittedStep;
import dev.ember.backend.WorkMarks;
import dev.ember.backend.streaming.StreamingReport;
import dev.ember.kvcache.BlockAllocator;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.sampling.Sampler;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;

/**
 * The reference forward pass, in f32 arithmetic over weights kept in their storage type. Every token of a
 * batch is one row: the projections run as matrix products over all rows at once (prefill of many tokens
 * costs one pass over the weights), attention runs per row and head against the paged cache.
 */
final class CpuModelRunner implements ModelRunner {
    /** How the ranks of a group divide a model: each a share of every layer, or each a run of whole layers. */
    enum Split { TENSOR, PIPELINE }

    /**
     * What a runner that is one rank of a group holds beside its part of the weights (a tensor shard, or a pipeline
     * stage's layers): its end of the group, the whole model's config and cache geometry (what its callers see, where it
     * computes its part's), and on rank 0, which the engine drives, the other ranks' runners, the threads that compute
     * them as it computes, and what closing it frees besides itself (the shards' copied columns, the ranks' teams).
     */
    record Group(Split split, Collective collective, ModelConfig model, KvCacheSpec modelKv, List<CpuModelRunner> followers,
                 ExecutorService threads, List<AutoCloseable> owned) {
    }

    /** The shape this runner computes: the model's, or its tensor shard's or pipeline stage's. */
    private final ModelConfig config;
    private final Parallel parallel;
    /** Whether one-row products take two weight rows a pass ({@link #matmul}): where the weights stay cached. */
    private final boolean rowPairs;
    private final String deviceName;
    private final KvCacheSpec kvSpec;
    private final BlockAllocator allocator;
    private final Arena arena;
    /** The decoder layers' weights: held for the runner's life, or streamed through a window. */
    private final LayerResidency layers;
    private final WeightMatrix embedding;
    private final WeightMatrix lmHead;
    private final float[] finalNorm;
    private final float[] inverseFrequencies;
    /** Per layer: K and V for every token slot, {@code [numBlocks * blockSize][kvDim]}. */
    private final float[][] keyCache;
    private final float[][] valueCache;
    /** Per-thread scratch of the matrix product and attention (a weight row, a row's scores). */
    private static final ThreadLocal<float[]> ROW_SCRATCH = ThreadLocal.withInitial(() -> new float[0]);
    /** Per-thread scratch of attention: the cache offsets of a row's values. */
    private static final ThreadLocal<int[]> OFFSET_SCRATCH = ThreadLocal.withInitial(() -> new int[0]);
    private Activations act = new Activations(0, null);
    /** The logits of the last step computed, grown to the largest batch seen. */
    private float[] sampleLogits = new float[0];
    private static final int[] NO_TOKENS = new int[0];
    /** Submitted steps not computed yet, oldest first. */
    private final ArrayDeque<CpuSubmittedStep> uncomputed = new ArrayDeque<>();
    /** The tokens of the last submitted step computed: what the next one's carried chunks take. */
    private int[] previousTokens = NO_TOKENS;
    /** The step submitted last, the one whose tokens another runner's step may carry; null after a forward. */
    private CpuSubmittedStep lastSubmitted;
    private int unawaited;
    /** Marks between the stages of a step: {@link StageClock#OFF} unless {@link #profileStages} turned it on. */
    private StageClock stages = StageClock.OFF;
    /** Null for a runner of the whole model. */
    private final Group group;
    /** A pipeline stage's activations of each micro-batch of a step. */
    private final List<Activations> microBatches = new ArrayList<>();
    /** A tensor-parallel rank's logits for its share of the vocabulary, before the ranks gather them. */
    private float[] vocabularyShare = new float[0];

    /**
     * A runner of {@code model} (the whole model, or one rank's part of it, {@link Model#tensorShard} or
     * {@link Model#layerRange}, with {@code group} its place in the group); its layers streamed through
     * {@code streamed}, or held whole where that is null.
     */
    CpuModelRunner(Model model, KvCacheSpec kvSpec, Parallel parallel, String deviceName, StreamedLayers streamed,
                   Group group) {
        Arena arena = Arena.ofShared();
        WeightMatrix embedding = WeightMatrix.of(model.embedding(), arena);
        this(model.config(), kvSpec, parallel, deviceName, arena,
                streamed != null ? streamed : ResidentLayers.of(model, arena), embedding,
                model.lmHead() == model.embedding() ? embedding : WeightMatrix.of(model.lmHead(), arena),
                WeightMatrix.vector(model.finalNorm(), arena), group, model.weightBytes() <= LastLevelCache.BYTES);
    }

    /**
     * @param arena what this runner frees when closed: its own copies of weights (f16 widened), none where it reads
     *              another runner's
     */
    private CpuModelRunner(ModelConfig config, KvCacheSpec kvSpec, Parallel parallel, String deviceName, Arena arena,
                           LayerResidency layers, WeightMatrix embedding, WeightMatrix lmHead, float[] finalNorm,
                           Group group, boolean rowPairs) {
        this.config = config;
        this.group = group;
        this.parallel = parallel;
        this.rowPairs = rowPairs;
        this.deviceName = deviceName;
        this.kvSpec = kvSpec;
        this.arena = arena;
        this.layers = layers;
        this.embedding = embedding;
        this.lmHead = lmHead;
        this.finalNorm = finalNorm;
        if (kvSpec.numLayers() != config.numLayers() || kvSpec.kvDim() != config.kvDim()) {
            throw new IllegalArgumentException("KV cache geometry " + kvSpec + " does not match the model");
        }
        long slots = kvSpec.tokenCapacity() * kvSpec.kvDim();
        if (slots > Integer.MAX_VALUE - 16) {
            throw new EmberException("KV cache of " + kvSpec.tokenCapacity() + " tokens is too large for the CPU backend");
        }
        this.allocator = new BlockAllocator(kvSpec);
        this.keyCache = new float[config.numLayers()][(int) slots];
        this.valueCache = new float[config.numLayers()][(int) slots];
        this.inverseFrequencies = toFloat(config.ropeScaling().inverseFrequencies(config.headDim(), config.ropeTheta()));
    }

    @Override
    public Optional<ModelRunner> firstLayers(int count, KvCacheSpec kv) {
        if (!(layers instanceof ResidentLayers resident) || group != null) {
            return Optional.empty();
        }
        return Optional.of(new CpuModelRunner(config.withLayers(count), kv, parallel, deviceName, Arena.ofShared(),
                resident.firstLayers(count), embedding, lmHead, finalNorm, null, rowPairs));
    }

    private static float[] toFloat(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return f;
    }

    @Override
    public ModelConfig config() {
        return group != null ? group.model() : config;
    }

    @Override
    public KvCacheSpec kvSpec() {
        return group != null ? group.modelKv() : kvSpec;
    }

    @Override
    public BlockAllocator blockAllocator() {
        return allocator;
    }

    @Override
    public int kvElementBytes() {
        return Float.BYTES;
    }

    @Override
    public int weightElementBytes() {
        return lmHead.storage().bytes();
    }

    @Override
    public String deviceName() {
        return deviceName;
    }

    /** Per-step buffers, reused while a step has no more rows than the last large one. */
    private static final class Activations {
        final int rows;
        final float[] x, xn, q, k, v, attn, proj, gate, up, cos, sin;
        final int[] position, slot, chunkOf;

        Activations(int rows, ModelConfig c) {
            this.rows = rows;
            int h = c == null ? 0 : c.hiddenSize();
            int qd = c == null ? 0 : c.qDim();
            int kvd = c == null ? 0 : c.kvDim();
            int ff = c == null ? 0 : c.intermediateSize();
            int half = c == null ? 0 : c.headDim() / 2;
            x = new float[rows * h];
            xn = new float[rows * h];
            q = new float[rows * qd];
            k = new float[rows * kvd];
            v = new float[rows * kvd];
            attn = new float[rows * qd];
            proj = new float[rows * h];
            gate = new float[rows * ff];
            up = new float[rows * ff];
            cos = new float[rows * half];
            sin = new float[rows * half];
            position = new int[rows];
            slot = new int[rows];
            chunkOf = new int[rows];
        }
    }

    /**
     * Queues the step and computes nothing yet: the CPU computes a submitted step when it is awaited (or when a later
     * call needs the cache), so that, as on a GPU, the caller learns its tokens only from {@link SubmittedStep#await}.
     */
    @Override
    public SubmittedStep submit(ForwardBatch batch, Sampler[] samplers) {
        checkSampling(batch, samplers, batch.outputRows());
        if (unawaited > 1) {
            throw new IllegalStateException("two submitted steps are not awaited yet; await the older first");
        }
        batch.carrySource(CpuSubmittedStep.class, named -> named.runner().lastSubmitted == named);
        CpuSubmittedStep step = new CpuSubmittedStep(batch.snapshot(), samplers);
        uncomputed.addLast(step);
        unawaited++;
        lastSubmitted = step;
        return step;
    }

    /**
     * The CPU computes a submitted step when it is awaited, after the host has seen the tokens of the step before; so
     * every token can be carried, but for a sampler that must observe the previous token before it draws.
     */
    @Override
    public boolean carriesTokens(Sampler sampler) {
        return sampler == null || !sampler.observesTokens();
    }

    /** The host's clock, read when the steps submitted before a mark have been computed. */
    @Override
    public WorkMarks workMarks(int points) {
        return WorkMarks.onHost(points, reading -> {
            if (uncomputed.isEmpty()) {
                reading.run();
            } else {
                uncomputed.peekLast().afterCompute.add(reading);
            }
        });
    }

    /** Computes every submitted step not computed yet, oldest first. */
    private void computeSubmitted() {
        computeSubmitted(null);
    }

    /**
     * Computes the submitted steps not computed yet, oldest first, up to {@code last} (null: all). Not past it: a later
     * step may carry tokens from a step of another runner that is itself waiting, mid-computation, for {@code last}'s.
     */
    private void computeSubmitted(CpuSubmittedStep last) {
        while (!uncomputed.isEmpty() && (last == null || last.tokens == null)) {
            CpuSubmittedStep step = uncomputed.pollFirst();
            int[] tokens = new int[step.batch.outputRows()];
            int[] carried = step.batch.carrySource() instanceof CpuSubmittedStep source ? source.computedTokens() : previousTokens;
            computeAndSample(step.batch.withCarriedTokens(carried), step.samplers, tokens);
            step.tokens = tokens;
            previousTokens = tokens;
            step.afterCompute.forEach(Runnable::run);
        }
        if (last != null && last.tokens == null) {
            throw new IllegalStateException("a step's tokens were asked for while it was being computed");
        }
    }

    /** This runner's {@link SubmittedStep}: the batch (its tables copied) and samplers, computed when first needed. */
    private final class CpuSubmittedStep implements SubmittedStep {
        final ForwardBatch batch;
        final Sampler[] samplers;
        /** Clock readings of work marks placed after this step ({@link #workMarks}). */
        final List<Runnable> afterCompute = new ArrayList<>();
        int[] tokens;
        boolean awaited;

        CpuSubmittedStep(ForwardBatch batch, Sampler[] samplers) {
            this.batch = batch;
            this.samplers = samplers;
        }

        @Override
        public void await(int[] out) {
            if (awaited) {
                throw new IllegalStateException("this step was awaited already");
            }
            computedTokens();
            awaited = true;
            unawaited--;
            System.arraycopy(tokens, 0, out, 0, tokens.length);
        }

        /** Its tokens, computing it (and its runner's steps before it) first if need be: what a carrying step reads. */
        int[] computedTokens() {
            if (tokens == null) {
                computeSubmitted(this);
            }
            return tokens;
        }

        CpuModelRunner runner() {
            return CpuModelRunner.this;
        }
    }

    private static void checkSampling(ForwardBatch batch, Sampler[] samplers, int tokenSlots) {
        int outputs = batch.outputRows();
        if (samplers.length < outputs || tokenSlots < outputs) {
            throw new IllegalArgumentException("a batch of " + outputs + " outputs needs as many samplers and token slots, got "
                    + samplers.length + " and " + tokenSlots);
        }
    }

    private void computeAndSample(ForwardBatch batch, Sampler[] samplers, int[] tokens) {
        int outputs = batch.outputRows();
        int vocab = config.vocabSize();
        if (sampleLogits.length < outputs * vocab) {
            sampleLogits = new float[outputs * vocab];
        }
        compute(batch, sampleLogits);
        stages.enter(Stage.SAMPLING);
        for (int i = 0; i < outputs; i++) {
            tokens[i] = samplers[i] == null ? -1 : samplers[i].sampleInStep(sampleLogits, i * vocab);
        }
        stages.end();
    }

    @Override
    public void profileStages(StageProfile profile) {
        stages = StageClock.onHost(profile);
    }

    @Override
    public void forward(ForwardBatch batch, float[] logits) {
        if (batch.carriesTokens()) {
            throw new IllegalArgumentException("forward takes no carried chunks: their tokens are sampled, not returned as logits");
        }
        computeSubmitted();
        previousTokens = NO_TOKENS;
        lastSubmitted = null;
        compute(batch, logits);
        stages.end();
    }

    /**
     * The forward pass, leaving its last stage (the output projection) open; on rank 0 of a group, with the other ranks
     * computing the same batch on their threads meanwhile (they meet it in every collective).
     */
    private void compute(ForwardBatch batch, float[] logits) {
        if (logits.length < (long) batch.outputRows() * config.vocabSize()) {
            throw new IllegalArgumentException("logits buffer holds " + logits.length + " floats, need "
                    + (long) batch.outputRows() * config.vocabSize());
        }
        if (group == null || group.followers().isEmpty()) {
            computeOwnPart(batch, logits);
            return;
        }
        List<Future<?>> others = new ArrayList<>(group.followers().size());
        for (CpuModelRunner rank : group.followers()) {
            others.add(group.threads().submit(() -> rank.computeAsFollower(batch)));
        }
        List<RuntimeException> failures = new ArrayList<>();
        try {
            computeOwnPart(batch, logits);
        } catch (RuntimeException e) {
            group.collective().abort();
            failures.add(e);
        }
        for (Future<?> other : others) {
            try {
                other.get();
            } catch (ExecutionException e) {
                failures.add(e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause()));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                group.collective().abort();
                failures.add(new IllegalStateException("interrupted while the ranks computed", e));
            }
        }
        if (!failures.isEmpty()) {
            group.collective().reset();
            // The rank that failed first says why; the others failed in a collective because it did.
            throw failures.stream().filter(f -> !(f instanceof Collective.Aborted)).findFirst().orElse(failures.getFirst());
        }
    }

    /** A rank other than 0: its part of the step rank 0 computes; the logits it may gather are left unread. */
    private void computeAsFollower(ForwardBatch batch) {
        int size = batch.outputRows() * config.vocabSize();
        if (sampleLogits.length < size) {
            sampleLogits = new float[size];
        }
        try {
            computeOwnPart(batch, sampleLogits);
        } catch (RuntimeException e) {
            group.collective().abort();
            throw e;
        }
    }

    private void computeOwnPart(ForwardBatch batch, float[] logits) {
        if (group != null && group.split() == Split.PIPELINE) {
            computeStage(batch, logits);
        } else {
            computeShard(batch, logits);
        }
    }

    /**
     * One pipeline stage's part of a step: the step's rows in micro-batches (one per stage), each through this stage's
     * layers as soon as the stage before has sent it, so that every stage works on one while the next works on the one
     * before (GPipe's schedule within a step). The first stage embeds; the last projects each micro-batch's outputs and
     * sends their logits to the first, which writes them into {@code logits}.
     */
    private void computeStage(ForwardBatch batch, float[] logits) {
        Collective pipe = group.collective();
        int stage = pipe.rank(), last = pipe.size() - 1;
        int rows = batch.totalTokens(), h = config.hiddenSize(), vocab = config.vocabSize();
        int[] outputRow = prepare(batch, stage == 0);
        int micro = Math.min(pipe.size(), rows);
        for (int m = 0, firstOutput = 0; m < micro; m++) {
            int from = microBatchStart(rows, micro, m), to = microBatchStart(rows, micro, m + 1), count = to - from;
            Activations mb = microBatch(m, count);
            System.arraycopy(act.position, from, mb.position, 0, count);
            System.arraycopy(act.slot, from, mb.slot, 0, count);
            System.arraycopy(act.chunkOf, from, mb.chunkOf, 0, count);
            if (stage == 0) {
                System.arraycopy(act.x, from * h, mb.x, 0, count * h);
            } else {
                stages.enter(Stage.P2P);
                pipe.receive(mb.x, 0, count * h, stage - 1);
            }
            runLayers(mb, count, batch.chunks());
            if (stage < last) {
                stages.enter(Stage.P2P);
                pipe.send(mb.x, 0, count * h, stage + 1);
                continue;
            }
            int outputs = outputsBefore(outputRow, firstOutput, to);
            int[] local = new int[outputs];
            for (int o = 0; o < outputs; o++) {
                local[o] = outputRow[firstOutput + o] - from;
            }
            float[] projected = new float[outputs * vocab];
            project(mb, local, projected);
            stages.enter(Stage.P2P);
            pipe.send(projected, 0, projected.length, 0);
            firstOutput += outputs;
        }
        if (stage == 0) {
            stages.enter(Stage.P2P);  // the wait for the last stage is the pipeline's drain, transfers and all
            for (int m = 0, firstOutput = 0; m < micro; m++) {
                int outputs = outputsBefore(outputRow, firstOutput, microBatchStart(rows, micro, m + 1));
                pipe.receive(logits, firstOutput * vocab, outputs * vocab, last);
                firstOutput += outputs;
            }
        }
    }

    /** The first row of micro-batch {@code m} of {@code micro} over a step of {@code rows} rows (nearly equal shares). */
    private static int microBatchStart(int rows, int micro, int m) {
        return (int) ((long) rows * m / micro);
    }

    /** How many of the outputs from {@code outputRow[first]} on lie in rows before {@code end}. */
    private static int outputsBefore(int[] outputRow, int first, int end) {
        int outputs = 0;
        while (first + outputs < outputRow.length && outputRow[first + outputs] < end) {
            outputs++;
        }
        return outputs;
    }

    /** The activations of a pipeline stage's micro-batch {@code m}, holding at least {@code rows} rows. */
    private Activations microBatch(int m, int rows) {
        while (microBatches.size() <= m) {
            microBatches.add(new Activations(0, null));
        }
        if (microBatches.get(m).rows < rows) {
            microBatches.set(m, new Activations(Math.max(rows, 2 * microBatches.get(m).rows), config));
        }
        return microBatches.get(m);
    }

    /** The whole model's step, or a tensor shard's (whose ranks meet after o, down and the output projection). */
    private void computeShard(ForwardBatch batch, float[] logits) {
        int[] outputRow = prepare(batch, true);
        runLayers(act, batch.totalTokens(), batch.chunks());
        project(act, outputRow, logits);
    }

    /**
     * Checks the batch and lays out its rows in {@link #act}: each row's position, cache slot and chunk, and, where
     * {@code embed}, its token's embedding. Returns the row of each output, in output order.
     */
    private int[] prepare(ForwardBatch batch, boolean embed) {
        stages.enter(Stage.EMBEDDING);
        int rows = batch.totalTokens();
        int vocab = config.vocabSize();
        if (act.rows < rows) {
            act = new Activations(Math.max(rows, 2 * act.rows), config);
        }
        Activations a = act;
        int h = config.hiddenSize();
        int[] outputRow = new int[batch.outputRows()];
        int row = 0, output = 0;
        List<ForwardBatch.Chunk> chunks = batch.chunks();
        for (int ci = 0; ci < chunks.size(); ci++) {
            ForwardBatch.Chunk chunk = chunks.get(ci);
            BlockTable table = chunk.blockTable();
            int end = chunk.startPosition() + chunk.tokens().length;
            if (table.capacity() < end) {
                throw new IllegalArgumentException("block table holds " + table.capacity() + " slots, chunk needs " + end);
            }
            for (int i = 0; i < chunk.tokens().length; i++, row++) {
                int token = chunk.tokens()[i];
                if (token < 0 || token >= vocab) {
                    throw new EmberException("token id " + token + " is outside the vocabulary of " + vocab);
                }
                int pos = chunk.startPosition() + i;
                a.position[row] = pos;
                a.chunkOf[row] = ci;
                a.slot[row] = table.block(pos / table.blockSize()) * table.blockSize() + pos % table.blockSize();
                if (embed) {
                    embedding.rowInto(token, a.x, row * h);
                }
            }
            for (int k = chunk.outputs(); k > 0; k--) {
                outputRow[output++] = row - k;
            }
        }
        return outputRow;
    }

    /** This runner's decoder layers over the first {@code rows} rows of {@code a}, in order. */
    private void runLayers(Activations a, int rows, List<ForwardBatch.Chunk> chunks) {
        stages.enter(Stage.ATTENTION);  // the rotations belong to attention
        computeRotations(a, rows);
        for (int l = 0; l < config.numLayers(); l++) {
            stages.layer(l);
            attentionBlock(l, layers.attention(l), a, rows, chunks);
            layers.attentionDone(l);
            feedForwardBlock(layers.mlp(l), a, rows);
            layers.mlpDone(l);
        }
        stages.layer(StageClock.NO_LAYER);
    }

    /** The final norm and output projection of rows {@code outputRow} of {@code a}: their logits, in order. */
    private void project(Activations a, int[] outputRow, float[] logits) {
        int outputs = outputRow.length, h = config.hiddenSize();
        stages.enter(Stage.RMSNORM);
        float[] last = new float[outputs * h];
        for (int o = 0; o < outputs; o++) {
            VectorOps.rmsNorm(a.x, outputRow[o] * h, finalNorm, (float) config.rmsNormEps(), last, o * h, h);
        }
        stages.enter(Stage.LM_HEAD);
        if (group == null || group.split() == Split.PIPELINE) {
            matmul(lmHead, last, outputs, logits);
            return;
        }
        if (vocabularyShare.length < outputs * lmHead.rows) {
            vocabularyShare = new float[outputs * lmHead.rows];
        }
        matmul(lmHead, last, outputs, vocabularyShare);
        group.collective().allGatherColumns(vocabularyShare, outputs, lmHead.rows, logits);
    }

    /** A tensor-parallel rank's partial sums of a projection into the hidden state become the whole sums. */
    private void sumOverRanks(float[] partial, int length) {
        if (group != null && group.split() == Split.TENSOR) {
            group.collective().allReduceSum(partial, 0, length);
        }
    }

    private void computeRotations(Activations a, int rows) {
        int half = config.headDim() / 2;
        for (int r = 0; r < rows; r++) {
            float pos = a.position[r];
            for (int i = 0; i < half; i++) {
                // The angle is formed in f32, as HF does, so long positions round the same way.
                float angle = inverseFrequencies[i] * pos;
                a.cos[r * half + i] = (float) Math.cos(angle);
                a.sin[r * half + i] = (float) Math.sin(angle);
            }
        }
    }

    private void attentionBlock(int layerIndex, LayerResidency.Attention w, Activations a, int rows, List<ForwardBatch.Chunk> chunks) {
        int h = config.hiddenSize();
        int hd = config.headDim();
        int qd = config.qDim();
        int kvd = config.kvDim();
        float eps = (float) config.rmsNormEps();
        stages.enter(Stage.RMSNORM);
        for (int r = 0; r < rows; r++) {
            VectorOps.rmsNorm(a.x, r * h, w.attnNorm(), eps, a.xn, r * h, h);
        }
        stages.enter(Stage.ATTENTION);
        matmul(w.wq(), a.xn, rows, a.q);
        matmul(w.wk(), a.xn, rows, a.k);
        matmul(w.wv(), a.xn, rows, a.v);
        addBias(a.q, rows, w.bq());
        addBias(a.k, rows, w.bk());
        addBias(a.v, rows, w.bv());
        float[] keys = keyCache[layerIndex];
        float[] values = valueCache[layerIndex];
        for (int r = 0; r < rows; r++) {
            for (int head = 0; head < config.numHeads(); head++) {
                int off = r * qd + head * hd;
                if (w.qNorm() != null) {
                    VectorOps.rmsNorm(a.q, off, w.qNorm(), eps, a.q, off, hd);
                }
                rotate(a.q, off, a, r);
            }
            for (int head = 0; head < config.numKvHeads(); head++) {
                int off = r * kvd + head * hd;
                if (w.kNorm() != null) {
                    VectorOps.rmsNorm(a.k, off, w.kNorm(), eps, a.k, off, hd);
                }
                rotate(a.k, off, a, r);
            }
            storeKey(keys, a.k, r * kvd, a.slot[r], kvSpec.blockSize(), config.numKvHeads(), hd);
            System.arraycopy(a.v, r * kvd, values, a.slot[r] * kvd, kvd);
        }
        int heads = config.numHeads();
        parallel.forRange(rows * heads, 4, (from, to) -> {
            for (int task = from; task < to; task++) {
                attend(task / heads, task % heads, a, keys, values, chunks);
            }
        });
        matmul(w.wo(), a.attn, rows, a.proj);
        sumOverRanks(a.proj, rows * h);
        addBias(a.proj, rows, w.bo());  // after the sum: a tensor-parallel rank holds the whole bias, added once
        VectorOps.add(a.x, 0, a.proj, 0, rows * h);
    }

    /** Adds {@code bias} to each of the first {@code rows} rows of {@code x} (rows of its length); a null bias adds nothing. */
    private static void addBias(float[] x, int rows, float[] bias) {
        if (bias != null) {
            for (int r = 0; r < rows; r++) {
                VectorOps.add(x, r * bias.length, bias, 0, bias.length);
            }
        }
    }

    private void rotate(float[] x, int offset, Activations a, int row) {
        int half = config.headDim() / 2;
        rotate(x, offset, a.cos, a.sin, row * half, half);
    }

    /**
     * HF's rotate-half RoPE of one head at {@code x[offset ..]}: pairs element i with element i + half, by the
     * angles whose cosines and sines are at {@code cos[angles ..]} and {@code sin[angles ..]}.
     */
    static void rotate(float[] x, int offset, float[] cos, float[] sin, int angles, int half) {
        for (int i = 0; i < half; i++) {
            float x0 = x[offset + i];
            float x1 = x[offset + i + half];
            float c = cos[angles + i];
            float s = sin[angles + i];
            x[offset + i] = x0 * c - x1 * s;
            x[offset + i + half] = x1 * c + x0 * s;
        }
    }

    private void attend(int row, int head, Activations a, float[] keys, float[] values, List<ForwardBatch.Chunk> chunks) {
        int offset = row * config.qDim() + head * config.headDim();
        attend(config, a.q, offset, keys, values, chunks.get(a.chunkOf[row]).blockTable(), a.position[row], head, a.attn, offset);
    }

    /**
     * Writes the keys of one token ({@code kvHeads} heads of {@code hd} at {@code k[kOffset ..]}) into cache slot
     * {@code slot}. Keys are kept dimension-major within a block and KV head, {@code [block][kvHead][d][offset]}, so
     * that a block's scores are {@code hd} vector products with no sum across lanes ({@link #attend}); values stay
     * token-major, {@code [slot][kvHead][d]}, as the weighted sum reads them.
     */
    static void storeKey(float[] keys, float[] k, int kOffset, int slot, int blockSize, int kvHeads, int hd) {
        int base = slot / blockSize * kvHeads * hd * blockSize + slot % blockSize;
        for (int i = 0; i < kvHeads * hd; i++) {
            keys[base + i * blockSize] = k[kOffset + i];
        }
    }

    /**
     * Causal (optionally sliding-window) attention of query head {@code head} at {@code q[qOffset ..]}, the token at
     * {@code position}, over its sequence's keys ({@link #storeKey}'s layout) and values cached through {@code table};
     * writes {@code out[outOffset ..]}.
     */
    static void attend(ModelConfig config, float[] q, int qOffset, float[] keys, float[] values, BlockTable table, int position,
                       int head, float[] out, int outOffset) {
        int hd = config.headDim();
        int kvd = config.kvDim();
        int kvHead = head / (config.numHeads() / config.numKvHeads());
        int bs = table.blockSize();
        int first = config.slidingWindow() > 0 ? Math.max(0, position - config.slidingWindow() + 1) : 0;
        int n = position - first + 1;
        // Whole blocks of scores, from the start of the first one: their lanes before `first` are never read.
        int lead = first % bs;
        float[] scores = scratch(lead + n + bs);
        float scale = config.attentionScale();
        for (int b = first / bs, last = position / bs; b <= last; b++) {
            scoreBlock(q, qOffset, keys, (table.block(b) * config.numKvHeads() + kvHead) * hd * bs, bs, hd, scores,
                    (b - first / bs) * bs);
        }
        float max = scaleAndMax(scores, lead, n, scale);
        double sum = exponentiate(scores, lead, n, max);
        float inv = (float) (1.0 / sum);
        int[] rows = rowScratch(n);
        for (int j = 0; j < n; j++) {
            int p = first + j;
            rows[j] = (table.block(p / bs) * bs + p % bs) * kvd + kvHead * hd;
            scores[lead + j] *= inv;
        }
        weightedSum(values, rows, scores, lead, n, hd, out, outOffset);
    }

    /**
     * Rows shorter than this take the softmax's scalar loops. Vector API code runs as boxed objects until C2 compiles
     * it, and a short row gives the vector loops too few iterations to be compiled early: with vectors on every row a
     * 200-token {@code ember generate} from a cold JVM ran 10-20% slower, while warm decode at short contexts was the
     * same either way. The long rows of a long prompt's prefill are where the vectors gain (1,024-token TTFT 0.86x).
     */
    private static final int VECTOR_SOFTMAX_MIN_ROW = 256;

    /** Multiplies {@code scores[from, from + n)} by {@code scale} and returns their largest. */
    private static float scaleAndMax(float[] scores, int from, int n, float scale) {
        float max = Float.NEGATIVE_INFINITY;
        int j = from;
        if (n >= VECTOR_SOFTMAX_MIN_ROW) {
            VectorSpecies<Float> f = WeightMatrix.F;
            FloatVector largest = FloatVector.broadcast(f, Float.NEGATIVE_INFINITY);
            for (int upper = from + f.loopBound(n); j < upper; j += f.length()) {
                FloatVector v = FloatVector.fromArray(f, scores, j).mul(scale);
                v.intoArray(scores, j);
                largest = largest.max(v);
            }
            max = largest.reduceLanes(VectorOperators.MAX);
        }
        for (; j < from + n; j++) {
            scores[j] *= scale;
            max = Math.max(max, scores[j]);
        }
        return max;
    }

    /**
     * {@code scores[j] = exp(scores[j] - max)} over {@code [from, from + n)}, a vector of exponentials at a time (a
     * decode step of a long context takes tens of thousands); returns their sum, added in double.
     */
    private static double exponentiate(float[] scores, int from, int n, float max) {
        int j = from;
        if (n >= VECTOR_SOFTMAX_MIN_ROW) {
            VectorSpecies<Float> f = WeightMatrix.F;
            for (int upper = from + f.loopBound(n); j < upper; j += f.length()) {
                FloatVector.fromArray(f, scores, j).sub(max).lanewise(VectorOperators.EXP).intoArray(scores, j);
            }
        }
        for (; j < from + n; j++) {
            scores[j] = (float) Math.exp(scores[j] - max);
        }
        double sum = 0;
        for (j = from; j < from + n; j++) {
            sum += scores[j];
        }
        return sum;
    }

    /**
     * {@code out[outOffset + d] = sum over j of weights[from + j] * values[rows[j] + d]} for d below {@code hd}: up to
     * two vectors of d a pass over the values, their sums held in registers (one FMA a vector and value, in j order,
     * as adding each weighted value into {@code out} in turn would round).
     */
    private static void weightedSum(float[] values, int[] rows, float[] weights, int from, int n, int hd, float[] out,
                                    int outOffset) {
        int lanes = WeightMatrix.F.length(), d = 0;
        for (; d + 2 * lanes <= hd; d += 2 * lanes) {
            FloatVector acc0 = FloatVector.zero(WeightMatrix.F), acc1 = FloatVector.zero(WeightMatrix.F);
            for (int j = 0; j < n; j++) {
                FloatVector w = FloatVector.broadcast(WeightMatrix.F, weights[from + j]);
                acc0 = FloatVector.fromArray(WeightMatrix.F, values, rows[j] + d).fma(w, acc0);
                acc1 = FloatVector.fromArray(WeightMatrix.F, values, rows[j] + d + lanes).fma(w, acc1);
            }
            acc0.intoArray(out, outOffset + d);
            acc1.intoArray(out, outOffset + d + lanes);
        }
        for (; d + lanes <= hd; d += lanes) {
            FloatVector acc = FloatVector.zero(WeightMatrix.F);
            for (int j = 0; j < n; j++) {
                acc = FloatVector.fromArray(WeightMatrix.F, values, rows[j] + d)
                        .fma(FloatVector.broadcast(WeightMatrix.F, weights[from + j]), acc);
            }
            acc.intoArray(out, outOffset + d);
        }
        for (; d < hd; d++) {
            float acc = 0;
            for (int j = 0; j < n; j++) {
                acc += weights[from + j] * values[rows[j] + d];
            }
            out[outOffset + d] = acc;
        }
    }

    /**
     * The unscaled scores of query {@code q[qOffset ..]} against the {@code blockSize} keys of one block and KV head
     * stored dimension-major at {@code keys[base ..]}, into {@code scores[at, at + blockSize)}: lanes over the block's
     * keys, an FMA per dimension.
     */
    private static void scoreBlock(float[] q, int qOffset, float[] keys, int base, int blockSize, int hd, float[] scores, int at) {
        int lanes = WeightMatrix.F.length(), vectorEnd = blockSize - blockSize % lanes;
        for (int c = 0; c < vectorEnd; c += lanes) {
            FloatVector acc = FloatVector.zero(WeightMatrix.F);
            for (int d = 0; d < hd; d++) {
                acc = FloatVector.fromArray(WeightMatrix.F, keys, base + d * blockSize + c)
                        .fma(FloatVector.broadcast(WeightMatrix.F, q[qOffset + d]), acc);
            }
            acc.intoArray(scores, at + c);
        }
        for (int c = vectorEnd; c < blockSize; c++) {
            float s = 0;
            for (int d = 0; d < hd; d++) {
                s += q[qOffset + d] * keys[base + d * blockSize + c];
            }
            scores[at + c] = s;
        }
    }

    private void feedForwardBlock(LayerResidency.Mlp w, Activations a, int rows) {
        int h = config.hiddenSize();
        int ff = config.intermediateSize();
        float eps = (float) config.rmsNormEps();
        stages.enter(Stage.RMSNORM);
        for (int r = 0; r < rows; r++) {
            VectorOps.rmsNorm(a.x, r * h, w.ffnNorm(), eps, a.xn, r * h, h);
        }
        stages.enter(Stage.FFN);
        matmul(w.wGate(), a.xn, rows, a.gate);
        matmul(w.wUp(), a.xn, rows, a.up);
        addBias(a.gate, rows, w.bGate());
        addBias(a.up, rows, w.bUp());
        VectorOps.siluMul(a.gate, a.up, 0, rows * ff);
        matmul(w.wDown(), a.gate, rows, a.proj);
        sumOverRanks(a.proj, rows * h);
        addBias(a.proj, rows, w.bDown());
        VectorOps.add(a.x, 0, a.proj, 0, rows * h);
    }

    private void matmul(WeightMatrix w, float[] in, int rows, float[] out) {
        matmul(parallel, w, in, rows, out, rowPairs);
    }

    /**
     * {@code out[t][j] = in[t] · W[j]} for {@code rows} input rows. Output features are split across threads; with
     * several rows the weight rows are widened once, two at a time, into a scratch buffer and reused for every input
     * row, two input rows by two weight rows a pass (VectorOps.dotRowsPair): bench offline on ember-tiny and 2 cores
     * 1.10-1.45 against 0.91-1.13 thousand tok/s with one weight row a pass. One row takes two weight rows a pass
     * (WeightMatrix.dotRowPair) where {@code rowPairs}, the weights staying in the cache from step to step (the default
     * model: decode 1.17x), and one a pass where they stream from memory every step: the pair's two interleaved
     * streams cost Qwen3-0.6B's decode on two cores 1.5-1.9x (docs/benchmarks.md). Every row's products are accumulated
     * in one order whatever the row count.
     */
    static void matmul(Parallel parallel, WeightMatrix w, float[] in, int rows, float[] out, boolean rowPairs) {
        parallel.forRange(w.rows, 8, (from, to) -> {
            if (rows == 1) {
                int j = from;
                for (; rowPairs && j + 2 <= to; j += 2) {
                    w.dotRowPair(j, in, 0, out, j);
                }
                for (; j < to; j++) {
                    out[j] = w.dotRow(j, in, 0);
                }
            } else {
                matmulRows(w, in, rows, out, from, to);
            }
        });
    }

    /** Output features [from, to) of several rows: weight rows widened two at a time, then two input rows a pass. */
    private static void matmulRows(WeightMatrix w, float[] in, int rows, float[] out, int from, int to) {
        int n = w.rows, k = w.cols;
        float[] wRows = scratch(2 * k);
        int j = from;
        for (; j + 2 <= to; j += 2) {
            w.rowInto(j, wRows, 0);
            w.rowInto(j + 1, wRows, k);
            VectorOps.dotRowsPair(wRows, in, rows, k, out, n, j);
        }
        if (j < to) {
            w.rowInto(j, wRows, 0);
            VectorOps.dotRows(wRows, in, rows, k, out, n, j);
        }
    }

    private static int[] rowScratch(int n) {
        int[] s = OFFSET_SCRATCH.get();
        if (s.length < n) {
            s = new int[Math.max(n, 2 * s.length)];
            OFFSET_SCRATCH.set(s);
        }
        return s;
    }

    private static float[] scratch(int n) {
        float[] s = ROW_SCRATCH.get();
        if (s.length < n) {
            s = new float[Math.max(n, 2 * s.length)];
            ROW_SCRATCH.set(s);
        }
        return s;
    }

    @Override
    public Optional<StreamingReport> streaming() {
        return layers instanceof StreamedLayers s ? Optional.of(s.report()) : Optional.empty();
    }

    @Override
    public void close() {
        layers.close();
        arena.close();
        if (group != null && !group.followers().isEmpty()) {
            group.threads().shutdownNow();
            group.followers().forEach(CpuModelRunner::close);
            for (AutoCloseable owned : group.owned()) {
                try {
                    owned.close();
                } catch (Exception e) {
                    throw new IllegalStateException("closing a rank's resources", e);
                }
            }
        }
    }
}
