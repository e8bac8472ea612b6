package dev.ember.backend.cuda;

import dev.ember.model.DType;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * The runner's matrix products, {@code out[m][n] = x[m][k] · w[n][k]ᵀ}: cuBLASLt, or for a few rows (small decode
 * batches) Ember's matrix-vector kernel, whichever {@link #choose} measured fastest for that shape on this GPU. At
 * one row cuBLASLt reads the 8B-shape projections at 72-94% of the copy bandwidth (gpu-host.md), a plain stream of
 * the weights can do better; which one wins depends on the shape and the GPU, so it is timed, not assumed.
 * A product may add into its output ({@link #accumulate}: the residual add of an output projection) or take the RMSNorm
 * of the residual as its input ({@link NormedInput}: the matrix-vector kernel normalises it itself, cuBLASLt after
 * add_rmsnorm). Until a shape is timed it goes to cuBLASLt. A shape is timed once a process for each GPU (and launch mode), and
 * every runner on that GPU takes that choice: the candidates sum in different orders, so two runners of one model
 * (a graph-replaying and an eager one, a target and its self:K draft) compute the same bits only if they agree.
 * One per runner; not thread-safe, but runners on several threads may share the choices.
 */
final class MatrixProducts implements AutoCloseable {
    /** Timed launches of each candidate per round, and rounds (the faster round counts). */
    private static final int LAUNCHES = 16;
    private static final int ROUNDS = 3;

    /**
     * EMBER_PRODUCTS=CUBLASLT|GEMV4|GEMV8|GEMV16|GEMV8_2W|GEMV4_4W, for measuring: every shape that would be
     * timed and that the implementation takes runs it untimed (a product timed alone does not see what a step's
     * neighbouring kernels overlap).
     */
    private static final Implementation FORCED = forced(System.getenv("EMBER_PRODUCTS"));

    /** Every choice of this process, by GPU and launch mode. */
    private static final ConcurrentMap<Measured, Choice> MEASURED = new ConcurrentHashMap<>();

    private final CublasLt blas;
    private final EmberKernels kernels;
    private final Map<Shape, Choice> choices = new HashMap<>();

    /** A product's shape; {@code normed}: its input is the RMSNorm of the residual ({@link NormedInput}). */
    record Shape(DType type, DType outType, int m, int n, int k, boolean normed) {
    }

    /**
     * The input of a product that begins with an RMSNorm: the m fp32 rows of the residual stream, the norm's fp32 weight
     * and epsilon, and the buffer the normalised rows go to where the norm runs as a kernel of its own (before cuBLASLt,
     * or where the rows do not fit the matrix-vector kernel's shared memory).
     */
    record NormedInput(long residual, long weight, float eps, long normed) {
    }

    /** Where a shape was timed: the GPU, and whether kernels launched their successors early. */
    private record Measured(int device, boolean dependentLaunch, Shape shape) {
    }

    /**
     * The candidates: cuBLASLt; the matrix-vector kernel with 4, 8 or 16 slices in flight per lane and one warp a column,
     * 8 slices and two warps, or 4 slices and four warps (more of a short row in flight at once).
     */
    enum Implementation {
        CUBLASLT(0, 0), GEMV4(4, 1), GEMV8(8, 1), GEMV16(16, 1), GEMV8_2W(8, 2), GEMV4_4W(4, 4);

        /** The matrix-vector kernel's builds. */
        static final List<Implementation> MATRIX_VECTOR = Arrays.stream(values()).filter(i -> i.inFlight > 0).toList();

        final int inFlight, warps;

        Implementation(int inFlight, int warps) {
            this.inFlight = inFlight;
            this.warps = warps;
        }
    }

    /** What was measured for a shape: microseconds per product of each candidate, and the fastest, which is used. */
    record Choice(Shape shape, Implementation chosen, Map<Implementation, Double> micros) {
        @Override
        public String toString() {
            StringBuilder s = new StringBuilder(String.format("m=%d n=%d k=%d %s->%s%s:", shape.m(), shape.n(), shape.k(),
                    shape.type(), shape.outType(), shape.normed() ? " normed" : ""));
            micros.forEach((i, us) -> s.append(String.format(" %s %.1f us,", i, us)));
            return s.append(" -> ").append(chosen).toString();
        }
    }

    MatrixProducts(EmberKernels kernels) {
        this.kernels = kernels;
        this.blas = new CublasLt();
    }

    /** Queues the product with the implementation chosen for its shape (cuBLASLt where none was chosen). */
    void matmul(CudaStream stream, DType type, long x, long w, long out, DType outType, int m, int n, int k) {
        run(chosen(new Shape(type, outType, m, n, k, false)), stream, type, x, null, w, out, outType, m, n, k, false);
    }

    /**
     * Queues {@code out += x · wᵀ} (fp32 out): an output projection added to the residual stream, with the
     * implementation chosen for the plain product of its shape (the add costs one read of out).
     */
    void accumulate(CudaStream stream, DType type, long x, long w, long out, int m, int n, int k) {
        run(chosen(new Shape(type, DType.F32, m, n, k, false)), stream, type, x, null, w, out, DType.F32, m, n, k, true);
    }

    /** Queues {@code out = rmsnorm(residual) · wᵀ} with the implementation chosen for it. */
    void matmul(CudaStream stream, DType type, NormedInput in, long w, long out, DType outType, int m, int n, int k) {
        run(chosen(new Shape(type, outType, m, n, k, true)), stream, type, 0, in, w, out, outType, m, n, k, false);
    }

    private Implementation chosen(Shape shape) {
        Choice c = shape.m() <= EmberKernels.GEMV_MAX_ROWS ? choices.get(shape) : null;
        return c == null ? Implementation.CUBLASLT : c.chosen();
    }

    /**
     * One product. A normed input is normalised by the matrix-vector kernel itself where it can (gemv.cu's NORM builds),
     * otherwise by add_rmsnorm into {@code in.normed()} first.
     */
    private void run(Implementation i, CudaStream stream, DType type, long x, NormedInput in, long w, long out, DType outType,
                     int m, int n, int k, boolean accumulate) {
        boolean fused = in != null && i != Implementation.CUBLASLT && kernels.gemvNormFits(type, m, k);
        long input = x;
        if (in != null && !fused) {
            kernels.addRmsNorm(stream, type, in.residual(), 0, in.weight(), in.normed(), 0, m, k, in.eps(), false);
            input = in.normed();
        }
        if (i == Implementation.CUBLASLT) {
            blas.matmul(stream, type, input, w, out, outType, m, n, k, accumulate);
        } else if (fused) {
            kernels.gemvNormed(stream, type, in.residual(), in.weight(), in.eps(), w, out, outType, m, n, k, i.inFlight, i.warps);
        } else {
            kernels.gemv(stream, type, input, w, out, outType, m, n, k, i.inFlight, i.warps, accumulate);
        }
    }

    /**
     * Decides the shape, if it is small enough and not yet decided, by timing both candidates on {@code stream}
     * (synchronously; never while a graph is being captured) with the weights rotating through {@code weights}, so
     * that they come from memory as in a real step and not from L2. {@code x} and {@code out} are scratch. Each timed
     * product follows {@code precede}, a small kernel, as every product in a step follows one: under programmatic
     * dependent launch the matrix-vector kernel starts (and asks for its first weights) while that kernel runs, which
     * cuBLASLt's kernels cannot, and products timed back to back would not show it.
     */
    void choose(CudaStream stream, DType type, long x, long[] weights, long out, DType outType, int m, int n, int k,
                Runnable precede) {
        choose(stream, new Shape(type, outType, m, n, k, false), x, null, weights, out, precede);
    }

    /** As above for a product whose input is normalised first: cuBLASLt is timed with the norm's kernel before it. */
    void choose(CudaStream stream, DType type, NormedInput in, long[] weights, long out, DType outType, int m, int n, int k,
                Runnable precede) {
        choose(stream, new Shape(type, outType, m, n, k, true), 0, in, weights, out, precede);
    }

    private void choose(CudaStream stream, Shape shape, long x, NormedInput in, long[] weights, long out, Runnable precede) {
        if (choices.containsKey(shape)) {
            return;
        }
        List<Implementation> candidates = new ArrayList<>(List.of(Implementation.CUBLASLT));
        if (EmberKernels.gemvSupports(shape.type(), shape.m(), shape.k())) {
            candidates.addAll(Implementation.MATRIX_VECTOR);
        }
        if (candidates.size() == 1) {
            return;
        }
        if (FORCED != null) {
            if (candidates.contains(FORCED)) {
                choices.put(shape, new Choice(shape, FORCED, Map.of()));
            }
            return;
        }
        Measured where = new Measured(kernels.device().ordinal(), kernels.dependentLaunch(), shape);
        choices.put(shape, MEASURED.computeIfAbsent(where, key -> time(stream, shape, candidates, x, in, weights, out, precede)));
    }

    private Choice time(CudaStream stream, Shape shape, List<Implementation> candidates, long x, NormedInput in, long[] weights,
                        long out, Runnable precede) {
        DType type = shape.type(), outType = shape.outType();
        int m = shape.m(), n = shape.n(), k = shape.k();
        Map<Implementation, Double> best = new EnumMap<>(Implementation.class);
        try (CudaEvent start = CudaEvent.create(); CudaEvent end = CudaEvent.create()) {
            for (int round = 0; round <= ROUNDS; round++) {  // round 0 warms up (and plans cuBLASLt's algorithm)
                for (Implementation candidate : candidates) {
                    start.record(stream);
                    for (int i = 0; i < LAUNCHES; i++) {
                        precede.run();
                        run(candidate, stream, type, x, in, weights[i % weights.length], out, outType, m, n, k, false);
                    }
                    end.record(stream);
                    end.synchronize();
                    double micros = 1000.0 * end.elapsedMillisSince(start) / LAUNCHES;
                    if (round > 0) {
                        best.merge(candidate, micros, Math::min);
                    }
                }
            }
        }
        Implementation fastest = best.entrySet().stream().min(Map.Entry.comparingByValue()).orElseThrow().getKey();
        return new Choice(shape, fastest, best);
    }

    private static Implementation forced(String name) {
        for (Implementation i : Implementation.values()) {
            if (i.name().equalsIgnoreCase(name == null ? "" : name.strip())) {
                return i;
            }
        }
        return null;
    }

    /** Every decision so far, for benchmark notes. */
    List<Choice> choices() {
        return new ArrayList<>(choices.values());
    }

    @Override
    public void close() {
        blas.close();
    }
}
