package dev.ember.backend.cuda;

import dev.ember.backend.KernelSuite;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Every kernel of the CUDA forward step ({@link CudaModelRunner}'s order: embedding, RMSNorm, the q/k/v product,
 * qkv_rope, prefill or decode attention, the o product, the gate/up product, SiLU-and-multiply, the down product,
 * the output projection, the token choice) at a model's shapes, launched as the runner launches them on random
 * operands, for {@code ember bench kernel}. Matrix products are timed with each implementation
 * {@link MatrixProducts} chooses between: cuBLASLt at every size, and at up to {@link EmberKernels#GEMV_MAX_ROWS} rows
 * each build of the matrix-vector kernel, on its input rows and, where the runner may stage them inside it, normalising
 * (q/k/v, gate/up) or gating (down) them itself.
 *
 * <p>Each timed launch is preceded by a read of {@link #flushBytes} (at least four times the L2 cache) through the
 * matrix-vector kernel: it evicts the launch's operands from L2, so that they come from memory as the bandwidth
 * ceiling assumes, and keeps the GPU busy while the host queues the launch between its two events, so that no launch
 * latency is timed. The flush reads rather than writes, so it leaves no dirty lines for the launch to write back.
 */
final class CudaKernelSuite implements KernelSuite {
    private static final int F = Float.BYTES;
    /** The decode kernel splits a context at most this many ways (as the runner does). */
    private static final int FLUSH_COLUMNS = 4096;

    private final CudaContext context;
    private final ModelConfig config;
    private final DType type;
    private final AttentionShape shape;
    private final CudaStream stream;
    private final EmberKernels kernels;
    private final CublasLt blas;
    private final CudaEvent start;
    private final CudaEvent end;
    private final List<DeviceBuffer> buffers = new ArrayList<>();
    private final Map<Case, Runnable> launches = new LinkedHashMap<>();
    private final SplittableRandom rng;
    private long fillSeed;
    private final long flushBytes;
    private final DeviceBuffer flush;
    private final DeviceBuffer flushX;
    private final DeviceBuffer flushOut;

    CudaKernelSuite(CudaContext context, Workload w) {
        context.makeCurrent();
        this.context = context;
        this.config = w.config();
        this.type = w.dtype();
        this.rng = new SplittableRandom(w.seed());
        this.fillSeed = w.seed();
        this.shape = AttentionShape.of(config, KvCacheSpec.DEFAULT_BLOCK_SIZE);
        EmberKernels.checkSupported(shape);
        try {
            this.stream = CudaStream.create();
            this.kernels = EmberKernels.load(context.device());
            this.blas = new CublasLt();
            this.start = CudaEvent.create();
            this.end = CudaEvent.create();
            long flushRows = Math.max(256L << 20, 4L * context.device().l2CacheBytes()) / (2L * FLUSH_COLUMNS);
            this.flushBytes = flushRows * FLUSH_COLUMNS * 2;
            this.flush = random(DType.BF16, flushRows * FLUSH_COLUMNS, 0f, 1f);
            this.flushX = random(DType.BF16, FLUSH_COLUMNS, 0f, 1f);
            this.flushOut = allocate(flushRows * F);
            new Step(w).addAll();
            stream.synchronize();
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** The operands of every step, sized for the largest, and the cases of each step. */
    private final class Step {
        final Workload w;
        final int h = config.hiddenSize(), qd = config.qDim(), kvd = config.kvDim(), ff = config.intermediateSize();
        final int hd = config.headDim(), vocab = config.vocabSize(), t = type.bytes();
        final int bs = shape.blockSize();
        final int maxDecode, maxRows, blocksPerSequence;
        final DeviceBuffer x, residual, normWeight, normed, qkv, q, attention, gateUp, gated, logits, sampled;
        final DeviceBuffer wQkv, wO, wGateUp, wDown, lmHead, qkvBias, qNorm, kNorm, inverseFrequencies;
        final DeviceBuffer keys, values, partialOut, partialMaxSum;
        final DeviceBuffer tokens, prefillPositions, prefillSlots, decodePositions, decodeSlots, blockTables, rowList,
                prefillMeta, greedyParams, temperatureParams;

        Step(Workload w) {
            this.w = w;
            maxDecode = Math.max(1, w.maxDecodeRows());
            maxRows = Math.max(maxDecode, w.seqLen());
            blocksPerSequence = (w.seqLen() + bs - 1) / bs;
            x = random(DType.F32, (long) maxRows * h, 0f, 1f);
            // The o and down products add into a residual of their own, as the runner's add into x: x, which the norms
            // read, keeps its values.
            residual = random(DType.F32, (long) maxRows * h, 0f, 1f);
            normWeight = random(DType.F32, h, 1f, 0.1f);
            normed = random(type, (long) maxRows * h, 0f, 1f);
            qkv = random(DType.F32, (long) maxRows * (qd + 2 * kvd), 0f, 1f);
            q = random(type, (long) maxRows * qd, 0f, 1f);
            attention = random(type, (long) maxRows * qd, 0f, 1f);
            gateUp = random(type, 2L * maxRows * ff, 0f, 1f);
            gated = random(type, (long) maxRows * ff, 0f, 1f);
            logits = random(DType.F32, (long) maxDecode * vocab, 0f, 4f);
            sampled = allocate(4L * maxDecode);
            wQkv = random(type, (long) (qd + 2 * kvd) * h, 0f, 0.05f);
            wO = random(type, (long) h * qd, 0f, 0.05f);
            wGateUp = random(type, 2L * ff * h, 0f, 0.05f);
            wDown = random(type, (long) h * ff, 0f, 0.05f);
            lmHead = random(type, (long) vocab * h, 0f, 0.05f);
            qkvBias = config.biases().qkv() ? random(DType.F32, qd + 2 * kvd, 0f, 0.1f) : null;
            qNorm = config.qkNorm() ? random(DType.F32, hd, 1f, 0.1f) : null;
            kNorm = config.qkNorm() ? random(DType.F32, hd, 1f, 0.1f) : null;
            inverseFrequencies = upload(config.ropeScaling().inverseFrequencies(hd, config.ropeTheta()));
            int sequences = Math.max(maxDecode, 1);
            long slots = (long) sequences * blocksPerSequence * bs;
            keys = random(type, slots * kvd, 0f, 1f);
            values = random(type, slots * kvd, 0f, 1f);
            partialOut = allocate(F * EmberKernels.decodePartialFloats(maxDecode, shape, EmberKernels.MAX_DECODE_SPLITS));
            partialMaxSum = allocate(F * EmberKernels.decodeMaxSumFloats(maxDecode, shape, EmberKernels.MAX_DECODE_SPLITS));

            // Each sequence's blocks in a shuffled order, as a paged cache hands them out after some use.
            List<Integer> order = new ArrayList<>(IntStream.range(0, sequences * blocksPerSequence).boxed().toList());
            Collections.shuffle(order, new java.util.Random(rng.nextLong()));
            int[] tables = order.stream().mapToInt(Integer::intValue).toArray();
            blockTables = uploadInts(tables);
            tokens = uploadInts(rng.ints(maxRows, 0, vocab).toArray());
            int seqLen = w.seqLen();
            prefillPositions = uploadInts(IntStream.range(0, seqLen).toArray());
            prefillSlots = uploadInts(IntStream.range(0, seqLen).map(p -> tables[p / bs] * bs + p % bs).toArray());
            decodePositions = uploadInts(IntStream.range(0, maxDecode).map(r -> seqLen - 1).toArray());
            decodeSlots = uploadInts(IntStream.range(0, maxDecode)
                    .map(r -> tables[r * blocksPerSequence + (seqLen - 1) / bs] * bs + (seqLen - 1) % bs).toArray());
            rowList = uploadInts(IntStream.range(0, maxDecode).toArray());
            // One prefill chunk: its index, first row, length and start position.
            prefillMeta = uploadInts(new int[] {0, 0, seqLen, 0});
            greedyParams = uploadInts(sampleParams(maxDecode, 1, 1f, rng));
            temperatureParams = uploadInts(sampleParams(maxDecode, 2, 0.6f, rng));
        }

        /** sample_tokens' parameters for {@code rows} rows of one mode (1 greedy, 2 sampled) at {@code temperature}, no logprobs. */
        private static int[] sampleParams(int rows, int mode, float temperature, SplittableRandom rng) {
            int[] params = new int[StepLayout.SAMPLE_PARAMS * rows];
            for (int r = 0; r < rows; r++) {
                int at = StepLayout.SAMPLE_PARAMS * r;
                params[at] = mode;
                params[at + 2] = Float.floatToRawIntBits(temperature);
                params[at + 3] = Float.floatToRawIntBits(1f);  // top-p 1: temperature alone
                params[at + 4] = Float.floatToRawIntBits(rng.nextInt(1 << 24) / (float) (1 << 24));  // in [0, 1)
                params[at + 5] = -1;  // no logprobs
                params[at + 6] = -1;  // no grammar mask
            }
            return params;
        }

        void addAll() {
            for (int rows : w.decodeRows()) {
                add("decode", rows);
            }
            add("prefill", w.seqLen());
        }

        /** One step's kernels, in the order the runner queues them (a layer's, then the output's). */
        void add(String phase, int rows) {
            boolean decode = phase.equals("decode");
            float eps = (float) config.rmsNormEps();
            String typed = type.name().toLowerCase(Locale.ROOT);
            if (w.includeEmbedding()) {
                launch(new Case("embedding", "embedding_gather_" + typed, phase, "rows=" + rows + " hidden=" + h + " vocab=" + vocab,
                        rows, embeddingBytes(rows, h, t), Double.NaN), () ->
                        kernels.embeddingGather(stream, type, lmHead.address(), tokens.address(), x.address(), rows, h));
            }
            launch(new Case("rmsnorm", "rmsnorm_" + typed, phase, "rows=" + rows + " hidden=" + h, rows,
                    rmsNormBytes(rows, h, t), Double.NaN), () ->
                    kernels.rmsNorm(stream, type, x.address(), normWeight.address(), normed.address(), 0, rows, h, eps));
            products("matmul_qkv", phase, normed, wQkv, qkv, DType.F32, rows, qd + 2 * kvd, h, false);
            normedProducts("matmul_qkv", phase, eps, wQkv, qkv, DType.F32, rows, qd + 2 * kvd, h);
            DeviceBuffer positions = decode ? decodePositions : prefillPositions;
            DeviceBuffer slots = decode ? decodeSlots : prefillSlots;
            launch(new Case("qkv_rope", "qkv_rope_" + typed, phase, "rows=" + rows + " heads=" + shape.heads() + " kv_heads="
                    + shape.kvHeads() + " head_dim=" + hd, rows, qkvRopeBytes(rows, shape, t), Double.NaN), () ->
                    kernels.qkvRope(stream, type, qkv.address(), DType.F32, DeviceBuffer.addressOf(qkvBias),
                            DeviceBuffer.addressOf(qNorm), DeviceBuffer.addressOf(kNorm), inverseFrequencies.address(),
                            positions.address(), slots.address(), q.address(), keys.address(), values.address(), rows, shape,
                            eps));
            int seqLen = w.seqLen();
            if (decode) {
                PagedKv kv = new PagedKv(keys.address(), values.address(), blockTables.address(), blocksPerSequence);
                int splits = decodeSplits(rows, blocksPerSequence);
                String kernel = kernels.decodeKernelName(type, shape) + "+reduce_";
                launch(new Case("decode_attention", kernel + typed, phase, "rows=" + rows + " context="
                        + seqLen + " heads=" + shape.heads() + " kv_heads=" + shape.kvHeads() + " head_dim=" + hd + " splits="
                        + splits, rows, decodeAttentionBytes(rows, seqLen, shape, splits, t),
                        attentionFlops(shape, (long) rows * seqLen)), () ->
                        kernels.decodeAttention(stream, type, q.address(), kv, rowList.address(), rowList.address(),
                                decodePositions.address(), partialOut.address(), partialMaxSum.address(), attention.address(),
                                rows, splits, shape));
            } else {
                PagedKv kv = new PagedKv(keys.address(), values.address(), blockTables.address(), blocksPerSequence);
                long meta = prefillMeta.address();
                launch(new Case("prefill_attention", kernels.prefillKernelName(type, shape) + "_" + typed,
                        phase, "rows=" + rows + " context=" + seqLen + " heads=" + shape.heads() + " kv_heads=" + shape.kvHeads()
                        + " head_dim=" + hd, rows, prefillAttentionBytes(rows, shape, t),
                        attentionFlops(shape, (long) rows * (rows + 1) / 2)), () ->
                        kernels.prefillAttention(stream, type, q.address(), kv, meta, meta + 4, meta + 8, meta + 12,
                                attention.address(), 1, rows, shape));
            }
            products("matmul_o", phase, attention, wO, residual, DType.F32, rows, h, qd, true);
            products("matmul_gate_up", phase, normed, wGateUp, gateUp, type, rows, 2 * ff, h, false);
            normedProducts("matmul_gate_up", phase, eps, wGateUp, gateUp, type, rows, 2 * ff, h);
            launch(new Case("silu_mul", "silu_mul_" + typed, phase, "rows=" + rows + " ff=" + ff, rows, siluMulBytes(rows, ff, t),
                    Double.NaN), () -> kernels.siluMul(stream, type, gateUp.address(), gated.address(), rows, ff));
            products("matmul_down", phase, gated, wDown, residual, DType.F32, rows, h, ff, true);
            gatedProducts("matmul_down", phase, wDown, residual, rows, h, ff);
            if (decode) {
                products("lm_head", phase, normed, lmHead, logits, DType.F32, rows, vocab, h, false);
                launch(new Case("sample_tokens", "sample_tokens (greedy)", phase, "rows=" + rows + " vocab=" + vocab, rows,
                        sampleTokensBytes(rows, vocab), Double.NaN), () ->
                        kernels.sampleTokens(stream, logits.address(), greedyParams.address(), sampled.address(), rows, vocab));
                launch(new Case("sample_tokens", "sample_tokens (temperature 0.6)", phase, "rows=" + rows + " vocab=" + vocab, rows,
                        sampleTokensBytes(rows, vocab), Double.NaN), () ->
                        kernels.sampleTokens(stream, logits.address(), temperatureParams.address(), sampled.address(), rows, vocab));
            }
        }

        /**
         * The product with cuBLASLt, and with the matrix-vector kernel where it takes the shape; {@code accumulate}: added
         * to the fp32 output's values (an output projection's residual add), which reads the output too.
         */
        void products(String kernel, String phase, DeviceBuffer in, DeviceBuffer weights, DeviceBuffer out, DType outType,
                      int m, int n, int k, boolean accumulate) {
            String dims = "m=" + m + " n=" + n + " k=" + k;
            long bytes = matmulBytes(m, n, k, t, outType.bytes()) + (accumulate ? (long) m * n * F : 0);
            double flops = 2.0 * m * n * k;
            launch(new Case(kernel, "cublaslt", phase, dims, m, bytes, flops), () ->
                    blas.matmul(stream, type, in.address(), weights.address(), out.address(), outType, m, n, k, accumulate));
            if (EmberKernels.gemvSupports(type, m, k)) {
                for (MatrixProducts.Implementation i : MatrixProducts.Implementation.MATRIX_VECTOR) {
                    launch(new Case(kernel, gemvLabel("gemv", i), phase, dims, m, bytes, flops), () -> kernels.gemv(stream, type, in.address(),
                            weights.address(), out.address(), outType, m, n, k, i.inFlight, i.warps, accumulate));
                }
            }
        }

        /**
         * The product whose input is the RMSNorm of the fp32 residual x, as the runner queues q/k/v and gate/up at small
         * batches: each matrix-vector build normalising x in its prologue (gemv.cu's NORM builds), where the rows fit.
         */
        void normedProducts(String kernel, String phase, float eps, DeviceBuffer weights, DeviceBuffer out, DType outType,
                            int m, int n, int k) {
            if (!EmberKernels.gemvSupports(type, m, k) || !kernels.gemvStagedFits(type, m, k)) {
                return;
            }
            String dims = "m=" + m + " n=" + n + " k=" + k;
            long bytes = normedMatmulBytes(m, n, k, t, outType.bytes());
            double flops = 2.0 * m * n * k;
            for (MatrixProducts.Implementation i : MatrixProducts.Implementation.MATRIX_VECTOR) {
                launch(new Case(kernel, gemvLabel("gemv normed", i), phase, dims, m, bytes, flops), () -> kernels.gemvNormed(stream,
                        type, x.address(), normWeight.address(), eps, weights.address(), out.address(), outType, m, n, k,
                        i.inFlight, i.warps));
            }
        }

        /**
         * The down projection whose input is the SwiGLU gate of the gate/up product, as the runner queues it at small
         * batches: each matrix-vector build gating the rows in its prologue (gemv.cu's GATE builds), where they fit.
         */
        void gatedProducts(String kernel, String phase, DeviceBuffer weights, DeviceBuffer out, int m, int n, int k) {
            if (!EmberKernels.gemvSupports(type, m, k) || !kernels.gemvStagedFits(type, m, k)) {
                return;
            }
            String dims = "m=" + m + " n=" + n + " k=" + k;
            long bytes = gatedMatmulBytes(m, n, k, t) + (long) m * n * F;  // added to the output, as the runner adds it
            double flops = 2.0 * m * n * k;
            for (MatrixProducts.Implementation i : MatrixProducts.Implementation.MATRIX_VECTOR) {
                launch(new Case(kernel, gemvLabel("gemv gated", i), phase, dims, m, bytes, flops), () -> kernels.gemvGated(stream,
                        type, gateUp.address(), weights.address(), out.address(), m, n, k, i.inFlight, i.warps, true));
            }
        }

        /** A matrix-vector build's row label: {@code gemv (8 in flight, 2 warps a column)}. */
        private static String gemvLabel(String kernel, MatrixProducts.Implementation i) {
            return kernel + " (" + i.inFlight + " in flight" + (i.warps > 1 ? ", " + i.warps + " warps a column)" : ")");
        }

        /** The runner's split count, from the one policy both use. */
        int decodeSplits(int rows, int blocks) {
            return kernels.decodeSplits(rows, type, shape, blocks * bs);
        }
    }

    // Bytes each kernel must read and write, as the comments of src/main/cuda/*.cu count them (docs/benchmarks.md):
    // activations, weights and cache; the per-row int metadata (token ids, positions, slots, block tables) is left out.

    /** embedding.cu: a table row in the storage type read, an fp32 row written, per token. */
    static long embeddingBytes(int rows, int h, int t) {
        return (long) rows * h * (t + F);
    }

    /**
     * rmsnorm.cu as the runner launches it where a product cannot normalise its own input (the output projections add
     * into the residual stream themselves): the fp32 residual read, out written; the fp32 weight.
     */
    static long rmsNormBytes(int rows, int h, int t) {
        return (long) rows * h * (F + t) + (long) h * F;
    }

    /** rope.cu: the fp32 q/k/v row read, q and the new keys and values written in the storage type. */
    static long qkvRopeBytes(int rows, AttentionShape s, int t) {
        return (long) rows * (s.heads() + 2L * s.kvHeads()) * s.headDim() * (F + t);
    }

    /**
     * attention_decode.cu: per row, its context's keys and values (2 * context * kvDim), its query and output
     * (2 * qDim) in the storage type, and with two or more splits the partial results (splits * heads * (headDim + 2)
     * floats) written and read back by the reduction.
     */
    static long decodeAttentionBytes(int rows, int context, AttentionShape s, int splits, int t) {
        long kvDim = (long) s.kvHeads() * s.headDim(), qDim = (long) s.heads() * s.headDim();
        long partials = splits > 1 ? (long) splits * s.heads() * (s.headDim() + 2) * F : 0;
        return rows * (2 * context * kvDim * t + 2 * qDim * t + 2 * partials);
    }

    /**
     * attention_prefill*.cu, one chunk of {@code rows} tokens from position 0: the chunk's keys and values, its
     * queries and output, each once (the tiles re-read from L2 are not counted).
     */
    static long prefillAttentionBytes(int rows, AttentionShape s, int t) {
        long kvDim = (long) s.kvHeads() * s.headDim(), qDim = (long) s.heads() * s.headDim();
        return (long) rows * (2 * kvDim + 2 * qDim) * t;
    }

    /** Scores and weighted values: 4 * headDim FLOPs per head for every (query, key) pair attended. */
    static double attentionFlops(AttentionShape s, long pairs) {
        return 4.0 * s.headDim() * s.heads() * pairs;
    }

    /** activation.cu: the gate and up halves read, the product written, in the storage type. */
    static long siluMulBytes(int rows, int ff, int t) {
        return 3L * rows * ff * t;
    }

    /** gemv.cu and cuBLASLt: the weights once, the input rows, the output rows in the output type. */
    static long matmulBytes(int m, int n, int k, int t, int outBytes) {
        return (long) n * k * t + (long) m * k * t + (long) m * n * outBytes;
    }

    /**
     * gemv.cu's NORM builds: the weights, the fp32 residual rows and the fp32 norm weight read, the output written. Each
     * resident block reads the residual again, from L2; memory sees it once.
     */
    static long normedMatmulBytes(int m, int n, int k, int t, int outBytes) {
        return (long) n * k * t + (long) m * k * F + (long) k * F + (long) m * n * outBytes;
    }

    /**
     * gemv.cu's GATE builds: the weights and the gate/up rows (2k values each) read, the fp32 output written. Each resident
     * block reads the gate/up rows again, from L2; memory sees them once.
     */
    static long gatedMatmulBytes(int m, int n, int k, int t) {
        return (long) n * k * t + 2L * m * k * t + (long) m * n * F;
    }

    /** sampling.cu (greedy or temperature-only rows): each row's fp32 logits read once. */
    static long sampleTokensBytes(int rows, int vocab) {
        return (long) rows * vocab * F;
    }

    private void launch(Case c, Runnable launch) {
        launches.put(c, launch);
    }

    private DeviceBuffer allocate(long bytes) {
        DeviceBuffer b = DeviceBuffer.allocate(bytes);
        buffers.add(b);
        return b;
    }

    /** {@code n} elements of {@code t}, uniform in center ± halfWidth, each buffer from its own seed. */
    private DeviceBuffer random(DType t, long n, float center, float halfWidth) {
        DeviceBuffer b = allocate(n * t.bytes());
        kernels.fillUniform(stream, t, b.address(), n, center, halfWidth, ++fillSeed);
        return b;
    }

    private DeviceBuffer upload(double[] values) {
        DeviceBuffer b = allocate((long) values.length * F);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(ValueLayout.JAVA_FLOAT, values.length);
            for (int i = 0; i < values.length; i++) {
                host.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) values[i]);
            }
            b.copyFromHost(host);
        }
        return b;
    }

    private DeviceBuffer uploadInts(int[] values) {
        DeviceBuffer b = allocate(4L * Math.max(values.length, 1));
        if (values.length > 0) {
            try (Arena arena = Arena.ofConfined()) {
                b.copyFromHost(arena.allocateFrom(ValueLayout.JAVA_INT, values));
            }
        }
        return b;
    }

    @Override
    public List<Case> cases() {
        return new ArrayList<>(launches.keySet());
    }

    @Override
    public double[] time(Case c, int warmup, int iters) {
        Runnable launch = launches.get(c);
        if (launch == null) {
            throw new IllegalArgumentException("not a case of this suite: " + c);
        }
        context.makeCurrent();
        double[] seconds = new double[iters];
        int flushRows = (int) (flushBytes / (2L * FLUSH_COLUMNS));
        for (int i = 0; i < warmup + iters; i++) {
            kernels.gemv(stream, DType.BF16, flushX.address(), flush.address(), flushOut.address(), DType.F32, 1, flushRows,
                    FLUSH_COLUMNS);
            start.record(stream);
            launch.run();
            end.record(stream);
            end.synchronize();
            if (i >= warmup) {
                seconds[i - warmup] = end.elapsedMillisSince(start) / 1e3;
            }
        }
        return seconds;
    }

    @Override
    public String method() {
        return String.format(Locale.ROOT, "CUDA events around each launch, after a %d MiB read that evicts the L2 cache",
                flushBytes >> 20);
    }

    @Override
    public void close() {
        context.makeCurrent();
        for (DeviceBuffer b : buffers) {
            b.close();
        }
        buffers.clear();
        for (AutoCloseable c : new AutoCloseable[] {start, end, blas, kernels, stream}) {
            if (c != null) {
                try {
                    c.close();
                } catch (Exception e) {
                    throw new IllegalStateException("closing the kernel benchmark", e);
                }
            }
        }
    }
}
