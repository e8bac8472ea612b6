package dev.ember.backend.cpu;

import dev.ember.EmberException;
import dev.ember.backend.KernelSuite;
import dev.ember.kvcache.BlockTable;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.model.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The CPU backend's kernels at a model's shapes, for {@code ember bench kernel}: the operations
 * {@link CpuModelRunner} runs as separable steps (the Vector API matrix product, RMSNorm, RoPE, attention,
 * SiLU-and-multiply, the residual add, the embedding lookup), called through the same static entry points.
 *
 * <p>Each run reads its inputs from a fresh place in a working set of {@link CpuCeilings#COPY_BYTES} (the size the
 * copy ceiling is measured at, beyond the caches), so that it streams them from memory as the copy ceiling does,
 * not from a cache a smaller benchmark would leave them in; its outputs go to scratch arrays. Timed with
 * {@link System#nanoTime()} around each call.
 */
final class CpuKernelSuite implements KernelSuite {
    private static final int F = Float.BYTES;
    private static final int POOL_FLOATS = (int) (CpuCeilings.COPY_BYTES / 2 / F);

    private final Parallel parallel;
    private final ModelConfig config;
    private final Arena arena = Arena.ofShared();
    /** Two halves of the working set: activations, keys and gates in one, values and up projections in the other. */
    private final float[] poolA = new float[POOL_FLOATS];
    private final float[] poolB = new float[POOL_FLOATS];
    private final MemorySegment weightPool;
    private final DType weightType;
    private final Map<Case, Kernel> kernels = new LinkedHashMap<>();
    private final SplittableRandom random;

    /** A kernel whose {@code replica}-th run reads its inputs from the replica-th place in the working set. */
    @FunctionalInterface
    private interface Kernel {
        Runnable at(int replica);
    }

    CpuKernelSuite(Parallel parallel, Workload w) {
        this.parallel = parallel;
        this.config = w.config();
        this.random = new SplittableRandom(w.seed());
        // The backend reads bf16 weights as they are stored and widens f16 to f32 at load (WeightMatrix).
        this.weightType = w.dtype() == DType.BF16 ? DType.BF16 : DType.F32;
        fill(poolA, 1f);
        fill(poolB, 1f);
        ModelConfig c = config;
        int h = c.hiddenSize(), qd = c.qDim(), kvd = c.kvDim(), ff = c.intermediateSize();
        long largest = Math.max(Math.max((long) qd * h, (long) ff * h), (long) c.vocabSize() * h) * weightType.bytes();
        this.weightPool = arena.allocate(Math.max(CpuCeilings.COPY_BYTES, largest), 64);
        fillWeights(weightPool);

        for (int rows : w.decodeRows()) {
            addStep("decode", rows, rows, w.seqLen(), w.includeEmbedding());
        }
        addStep("prefill", w.seqLen(), 1, w.seqLen(), w.includeEmbedding());
    }

    /** The kernels of one forward step of {@code rows} tokens in {@code sequences} sequences, in the runner's order. */
    private void addStep(String phase, int rows, int sequences, int seqLen, boolean includeEmbedding) {
        ModelConfig c = config;
        int h = c.hiddenSize(), qd = c.qDim(), kvd = c.kvDim(), ff = c.intermediateSize(), hd = c.headDim();
        int wb = weightType.bytes();
        String wt = weightType.name().toLowerCase(java.util.Locale.ROOT);
        if (includeEmbedding) {
            WeightMatrix table = matrix(c.vocabSize(), h, 0);
            int[] tokens = random.ints(rows, 0, c.vocabSize()).toArray();
            add(new Case("embedding", "WeightMatrix.rowInto (" + wt + ")", phase, "rows=" + rows + " hidden=" + h + " vocab="
                    + c.vocabSize(), rows, embeddingBytes(rows, h, wb), Double.NaN), replica -> {
                float[] out = poolA;
                int at = slice(replica, (long) rows * h);
                return () -> {
                    for (int r = 0; r < rows; r++) {
                        table.rowInto(tokens[r], out, at + r * h);
                    }
                };
            });
        }
        float[] normWeight = randomArray(h, 1f, 0.1f);
        float[] normed = new float[rows * h];
        float eps = (float) c.rmsNormEps();
        add(new Case("rmsnorm", "VectorOps.rmsNorm", phase, "rows=" + rows + " hidden=" + h, rows, rmsNormBytes(rows, h),
                Double.NaN), replica -> {
            int at = slice(replica, (long) rows * h);
            return () -> {
                for (int r = 0; r < rows; r++) {
                    VectorOps.rmsNorm(poolA, at + r * h, normWeight, eps, normed, r * h, h);
                }
            };
        });
        float[] x = randomArray(rows * Math.max(h, Math.max(qd, ff)), 0f, 1f);
        addMatmul("matmul_q", phase, rows, qd, h, x, wt);
        addMatmul("matmul_k", phase, rows, kvd, h, x, wt);
        addMatmul("matmul_v", phase, rows, kvd, h, x, wt);

        int half = hd / 2;
        float[] cos = randomArray(rows * half, 0f, 1f), sin = randomArray(rows * half, 0f, 1f);
        add(new Case("rope", "CpuModelRunner.rotate", phase, "rows=" + rows + " heads=" + c.numHeads() + " kv_heads="
                + c.numKvHeads() + " head_dim=" + hd, rows, ropeBytes(rows, qd, kvd, hd), Double.NaN), replica -> {
            int at = slice(replica, (long) rows * (qd + kvd));
            return () -> {
                for (int r = 0; r < rows; r++) {
                    for (int head = 0; head < c.numHeads() + c.numKvHeads(); head++) {
                        CpuModelRunner.rotate(poolA, at + r * (qd + kvd) + head * hd, cos, sin, r * half, half);
                    }
                }
            };
        });

        addAttention(phase, rows, sequences, seqLen);
        addMatmul("matmul_o", phase, rows, h, qd, x, wt);
        add(new Case("residual_add", "VectorOps.add", phase, "rows=" + rows + " hidden=" + h, rows, residualAddBytes(rows, h),
                Double.NaN), replica -> {
            int at = slice(replica, (long) rows * h);
            return () -> VectorOps.add(poolA, at, poolB, at, rows * h);
        });
        addMatmul("matmul_gate", phase, rows, ff, h, x, wt);
        addMatmul("matmul_up", phase, rows, ff, h, x, wt);
        add(new Case("silu_mul", "VectorOps.siluMul", phase, "rows=" + rows + " ff=" + ff, rows, siluMulBytes(rows, ff),
                Double.NaN), replica -> {
            int at = slice(replica, (long) rows * ff);
            return () -> VectorOps.siluMul(poolA, poolB, at, rows * ff);
        });
        addMatmul("matmul_down", phase, rows, h, ff, x, wt);
        if (phase.equals("decode")) {
            addMatmul("lm_head", phase, sequences, c.vocabSize(), h, x, wt);
        }
    }

    private void addMatmul(String kernel, String phase, int m, int n, int k, float[] x, String wt) {
        float[] out = new float[m * n];
        add(new Case(kernel, "CpuModelRunner.matmul (" + wt + ")", phase, "m=" + m + " n=" + n + " k=" + k, m,
                matmulBytes(m, n, k, weightType.bytes()), 2.0 * m * n * k), replica -> {
            WeightMatrix w = matrix(n, k, replica);
            return () -> CpuModelRunner.matmul(parallel, w, x, m, out, false);  // from memory, as weightPool is
        });
    }

    /**
     * Attention of {@code rows} tokens: for decode, one token per sequence at position seqLen - 1 (a context of seqLen);
     * for prefill, one sequence of seqLen tokens from position 0, causal. Each replica's sequences own their own
     * blocks of the working set, so their keys and values come from memory.
     */
    private void addAttention(String phase, int rows, int sequences, int seqLen) {
        ModelConfig c = config;
        int qd = c.qDim(), kvd = c.kvDim(), hd = c.headDim(), heads = c.numHeads();
        int bs = dev.ember.kvcache.KvCacheSpec.DEFAULT_BLOCK_SIZE;
        boolean decode = phase.equals("decode");
        int blocksPerSequence = (seqLen + bs - 1) / bs;
        int blocksPerReplica = sequences * blocksPerSequence;
        if ((long) blocksPerReplica * bs * kvd > POOL_FLOATS) {
            throw new EmberException("the CPU kernel benchmark holds at most " + POOL_FLOATS / kvd + " tokens of KV cache; "
                    + sequences + " sequences of " + seqLen + " need more: use a smaller --batch or --seq-len");
        }
        int replicas = Math.max(1, POOL_FLOATS / (blocksPerReplica * bs * kvd));
        float[] q = randomArray(rows * qd, 0f, 1f);
        float[] out = new float[rows * qd];
        long attended = decode ? (long) rows * seqLen : (long) seqLen * (seqLen + 1) / 2;
        add(new Case(decode ? "decode_attention" : "prefill_attention", "CpuModelRunner.attend", phase, "rows=" + rows
                + " context=" + seqLen + " heads=" + heads + " kv_heads=" + c.numKvHeads() + " head_dim=" + hd, rows,
                attentionBytes(rows, sequences, seqLen, qd, kvd, F, F), 4.0 * hd * heads * attended), replica -> {
            int first = (replica % replicas) * blocksPerReplica;
            BlockTable[] tables = new BlockTable[sequences];
            for (int s = 0; s < sequences; s++) {
                tables[s] = new BlockTable(bs);
                for (int b = 0; b < blocksPerSequence; b++) {
                    tables[s].append(first + s * blocksPerSequence + b);
                }
            }
            return () -> parallel.forRange(rows * heads, 4, (from, to) -> {
                for (int task = from; task < to; task++) {
                    int row = task / heads, head = task % heads;
                    int offset = row * qd + head * hd;
                    BlockTable table = tables[decode ? row : 0];
                    int position = decode ? seqLen - 1 : row;
                    CpuModelRunner.attend(c, q, offset, poolA, poolB, table, position, head, out, offset);
                }
            });
        });
    }

    // Bytes each kernel must read and write (docs/benchmarks.md); the CPU keeps activations and the cache in f32.

    static long embeddingBytes(int rows, int h, int weightBytes) {
        return (long) rows * h * (weightBytes + F);
    }

    static long rmsNormBytes(int rows, int h) {
        return (long) rows * h * 2 * F + (long) h * F;
    }

    static long ropeBytes(int rows, int qd, int kvd, int hd) {
        return (long) rows * (qd + kvd) * 2 * F + (long) rows * hd * F;
    }

    static long residualAddBytes(int rows, int h) {
        return (long) rows * h * 3 * F;
    }

    static long siluMulBytes(int rows, int ff) {
        return (long) rows * ff * 3 * F;
    }

    /** Weights once, the input rows in f32 and the output rows in f32. */
    static long matmulBytes(int m, int n, int k, int weightBytes) {
        return (long) n * k * weightBytes + (long) m * k * F + (long) m * n * F;
    }

    /** Each sequence's keys and values once, each row's query read and output written. */
    static long attentionBytes(int rows, int sequences, int context, int qd, int kvd, int cacheBytes, int activationBytes) {
        return (long) sequences * context * kvd * 2 * cacheBytes + (long) rows * qd * 2 * activationBytes;
    }

    private void add(Case c, Kernel k) {
        kernels.put(c, k);
    }

    /** Offset of the replica-th slice of {@code floats} in a pool, cycling through the pool, 64-byte aligned. */
    private static int slice(int replica, long floats) {
        long span = (floats + 15) / 16 * 16;
        long slices = Math.max(1, POOL_FLOATS / span);
        return (int) (replica % slices * span);
    }

    /** An {@code n x k} weight matrix: the replica-th such slice of the weight pool. */
    private WeightMatrix matrix(int n, int k, int replica) {
        long bytes = (long) n * k * weightType.bytes();
        long span = (bytes + 63) / 64 * 64;
        long slices = Math.max(1, weightPool.byteSize() / span);
        MemorySegment data = weightPool.asSlice(replica % slices * span, bytes);
        return WeightMatrix.of(new Tensor("bench", weightType, new long[] {n, k}, data), arena);
    }

    private float[] randomArray(int n, float center, float halfWidth) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = center + halfWidth * (2 * (float) random.nextDouble() - 1);
        }
        return a;
    }

    private void fill(float[] pool, float halfWidth) {
        parallel.forRange(pool.length, 1 << 16, (from, to) -> {
            SplittableRandom r = new SplittableRandom(from ^ random.nextLong());
            for (int i = from; i < to; i++) {
                pool[i] = halfWidth * (2 * (float) r.nextDouble() - 1);
            }
        });
    }

    /** Uniform weights in ±0.05 in the storage type: normal numbers, never zero. */
    private void fillWeights(MemorySegment pool) {
        long n = pool.byteSize() / weightType.bytes();
        long seed = random.nextLong();
        int pieces = 256;
        parallel.forRange(pieces, 1, (from, to) -> {
            for (int piece = from; piece < to; piece++) {
                SplittableRandom r = new SplittableRandom(seed + piece);
                for (long i = n * piece / pieces, end = n * (piece + 1) / pieces; i < end; i++) {
                    float v = (float) (0.05 * (2 * r.nextDouble() - 1));
                    if (weightType == DType.BF16) {
                        pool.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) (Float.floatToRawIntBits(v) >>> 16));
                    } else {
                        pool.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, v);
                    }
                }
            }
        });
    }

    @Override
    public List<Case> cases() {
        return new ArrayList<>(kernels.keySet());
    }

    @Override
    public double[] time(Case c, int warmup, int iters) {
        Kernel kernel = kernels.get(c);
        if (kernel == null) {
            throw new IllegalArgumentException("not a case of this suite: " + c);
        }
        double[] seconds = new double[iters];
        for (int i = 0; i < warmup + iters; i++) {
            Runnable run = kernel.at(i);
            long start = System.nanoTime();
            run.run();
            long elapsed = System.nanoTime() - start;
            if (i >= warmup) {
                seconds[i - warmup] = elapsed / 1e9;
            }
        }
        return seconds;
    }

    @Override
    public String method() {
        return "System.nanoTime around each call; inputs from a fresh place in a " + (CpuCeilings.COPY_BYTES >> 20)
                + " MiB working set each run";
    }

    @Override
    public void close() {
        arena.close();
    }
}
