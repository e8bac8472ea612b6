package dev.ember.backend.cuda;

import dev.ember.model.DType;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * The runner's matrix products, {@code out[m][n] = x[m][k] · w[n][k]ᵀ}: cuBLASLt, or for a few rows (small decode
 * batches) Ember's matrix-vector kernel, whichever {@link #choose} measured fastest for that shape on this GPU. At
 * one row cuBLASLt reads the 8B-shape projections at 72-94% of the copy bandwidth (gpu-host.md), a plain stream of
 * the weights can do better; which one wins depends on the shape and the GPU, so it is timed, not assumed.
 * A product may add into its output ({@link #accumulate}: the residual add of an output projection) and take an input
 * that a small kernel would otherwise compute first ({@link StagedInput}: the RMSNorm of the residual, or the SwiGLU
 * gate of the gate/up product), which the matrix-vector kernel can compute itself in its prologue; for such a shape both
 * ways are timed, the small kernel apart and inside (they compute the same bits). Until a shape is timed it goes to
 * cuBLASLt. A shape is timed once a process for each GPU (and launch mode), and every runner on that GPU takes that
 * choice: the candidates sum in different orders, so two runners of one model (a graph-replaying and an eager one, a
 * target and its self:K draft) compute the same bits only if they agree.
 * One per runner; not thread-safe, but runners on several threads may share the choices.
 */
final class MatrixProducts implements AutoCloseable {
    /** Products of each candidate in one timed graph, and rounds (the fastest round counts). */
    private static final int LAUNCHES = 16;
    private static final int ROUNDS = 3;

    /**
     * EMBER_PRODUCTS=CUBLASLT|GEMV4|GEMV8|GEMV16|GEMV8_2W|GEMV4_4W, for measuring: every shape that would be
     * timed and that the implementation takes runs it untimed (a product timed alone does not see what a step's
     * neighbouring kernels overlap).
     */
    private static final Implementation FORCED = forced(System.getenv("EMBER_PRODUCTS"));

    /**
     * EMBER_GEMV_MAX_ROWS=N, for measuring: shapes of more than N rows (1 to 8) go to cuBLASLt untimed, so that the
     * matrix-vector builds of a row count can be compared with cuBLASLt inside whole steps while the others keep their
     * choice (a verification of a few tokens against the decode step beside it, say). 0 or unset: all eight.
     */
    private static final int MAX_ROWS = maxRows(EmberKernels.positiveEnvironment("EMBER_GEMV_MAX_ROWS"));

    /** Every choice of this process, by GPU and launch mode. */
    private static final ConcurrentMap<Measured, Choice> MEASURED = new ConcurrentHashMap<>();

    private final CublasLt blas;
    private final EmberKernels kernels;
    private final Map<Shape, Choice> choices = new HashMap<>();

    /** A product's shape; {@code input}: what its x is (the rows, or a {@link StagedInput} of that kind). */
    record Shape(DType type, DType outType, int m, int n, int k, EmberKernels.GemvInput input) {
    }

    /**
     * An input that a small kernel computes from another buffer before the product, or the matrix-vector kernel in its
     * prologue (gemv.cu's NORM and GATE builds); {@link #staged()} is the buffer the small kernel writes.
     */
    sealed interface StagedInput permits NormedInput, GatedInput {
        long staged();
    }

    /**
     * The input of a product that begins with an RMSNorm: the m fp32 rows of the residual stream, the norm's fp32 weight
     * and epsilon, and the buffer the normalised rows go to where the norm runs as a kernel of its own.
     */
    record NormedInput(long residual, long weight, float eps, long normed) implements StagedInput {
        @Override
        public long staged() {
            return normed;
        }
    }

    /**
     * The input of a down projection: the m rows of the fused gate/up product (2k values each, the storage type), whose
     * SwiGLU gate {@code silu(gate) * up} is the input, and the buffer it goes to where silu_mul runs as a kernel of its own.
     */
    record GatedInput(long gateUp, long gated) implements StagedInput {
        @Override
        public long staged() {
            return gated;
        }
    }

    /**
     * One way to run a shape: an implementation, and for a staged input whether the matrix-vector kernel computes it in
     * its prologue ({@code fused}) or its small kernel runs first.
     */
    record Candidate(Implementation implementation, boolean fused) {
        @Override
        public String toString() {
            return implementation + (fused ? " fused" : "");
        }
    }

    /** Where a shape was timed: the GPU, and whether kernels launched their successors early. */
    private record Measured(int device, boolean dependentLaunch, Shape shape) {
    }

    /**
     * A layer's MLP: the residual (in {@code in}, with the norm before it), the gate/up weights, bias (0 for none) and
     * output, the gate (its output where silu_mul runs apart) and the down weights; the down product adds into the
     * residual.
     */
    record Mlp(NormedInput in, long gateUpWeights, long gateUpBias, long gateUp, long gated, long downWeights) {
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
    record Choice(Shape shape, Candidate chosen, Map<Candidate, Double> micros) {
        @Override
        public String toString() {
            StringBuilder s = new StringBuilder(String.format("m=%d n=%d k=%d %s->%s%s:", shape.m(), shape.n(), shape.k(),
                    shape.type(), shape.outType(), shape.input() == EmberKernels.GemvInput.ROWS ? ""
                            : " " + shape.input().name().toLowerCase(Locale.ROOT)));
            micros.forEach((c, us) -> s.append(String.format(" %s %.1f us,", c, us)));
            return s.append(" -> ").append(chosen).toString();
        }
    }

    MatrixProducts(EmberKernels kernels) {
        this.kernels = kernels;
        this.blas = new CublasLt();
    }

    /** Queues the product with the implementation chosen for its shape (cuBLASLt where none was chosen). */
    void matmul(CudaStream stream, DType type, long x, long w, long out, DType outType, int m, int n, int k) {
        Shape shape = new Shape(type, outType, m, n, k, EmberKernels.GemvInput.ROWS);
        run(chosen(shape), stream, shape, x, null, w, out, false);
    }

    /**
     * Queues {@code out += x · wᵀ} (fp32 out): an output projection added to the residual stream, with the
     * implementation chosen for the plain product of its shape (the add costs one read of out).
     */
    void accumulate(CudaStream stream, DType type, long x, long w, long out, int m, int n, int k) {
        Shape shape = new Shape(type, DType.F32, m, n, k, EmberKernels.GemvInput.ROWS);
        run(chosen(shape), stream, shape, x, null, w, out, true);
    }

    /** Queues {@code out += gate(in) · wᵀ} (fp32 out): the down projection of the gate/up product, into the residual. */
    void accumulate(CudaStream stream, DType type, GatedInput in, long w, long out, int m, int n, int k) {
        Shape shape = new Shape(type, DType.F32, m, n, k, EmberKernels.GemvInput.GATE);
        run(chosen(shape), stream, shape, 0, in, w, out, true);
    }

    /** Queues {@code out = rmsnorm(residual) · wᵀ} with the implementation chosen for it. */
    void matmul(CudaStream stream, DType type, NormedInput in, long w, long out, DType outType, int m, int n, int k) {
        Shape shape = new Shape(type, outType, m, n, k, EmberKernels.GemvInput.NORM);
        run(chosen(shape), stream, shape, 0, in, w, out, false);
    }

    private Candidate chosen(Shape shape) {
        Choice c = shape.m() <= EmberKernels.GEMV_MAX_ROWS ? choices.get(shape) : null;
        return c == null ? new Candidate(Implementation.CUBLASLT, false) : c.chosen();
    }

    /**
     * One product. A staged input is computed by the matrix-vector kernel itself where the candidate says so (gemv.cu's
     * NORM and GATE builds), otherwise by its small kernel (rmsnorm, silu_mul) into {@code in.staged()} first.
     */
    private void run(Candidate c, CudaStream stream, Shape shape, long x, StagedInput in, long w, long out, boolean accumulate) {
        DType type = shape.type(), outType = shape.outType();
        int m = shape.m(), n = shape.n(), k = shape.k();
        Implementation i = c.implementation();
        boolean fused = in != null && c.fused() && i != Implementation.CUBLASLT && kernels.gemvStagedFits(type, m, k);
        if (fused) {
            switch (in) {
                case NormedInput norm -> kernels.gemvNormed(stream, type, norm.residual(), norm.weight(), norm.eps(), w, out,
                        outType, m, n, k, i.inFlight, i.warps);
                case GatedInput gate -> kernels.gemvGated(stream, type, gate.gateUp(), w, out, m, n, k, i.inFlight, i.warps,
                        accumulate);
            }
            return;
        }
        long input = x;
        if (in != null) {
            switch (in) {
                case NormedInput norm -> kernels.rmsNorm(stream, type, norm.residual(), norm.weight(), norm.normed(), 0, m, k,
                        norm.eps());
                case GatedInput gate -> kernels.siluMul(stream, type, gate.gateUp(), gate.gated(), m, k);
            }
            input = in.staged();
        }
        if (i == Implementation.CUBLASLT) {
            blas.matmul(stream, type, input, w, out, outType, m, n, k, accumulate);
        } else {
            kernels.gemv(stream, type, input, w, out, outType, m, n, k, i.inFlight, i.warps, accumulate);
        }
    }

    /**
     * Decides the shape, if it is small enough and not yet decided, by timing its candidates on {@code stream}
     * (synchronously; never while a graph is being captured) with the weights rotating through {@code weights}, so
     * that they come from memory as in a real step and not from L2. {@code x} and {@code out} are scratch. Each timed
     * product follows {@code precede}, a small kernel, as every product in a step follows one: under programmatic
     * dependent launch the matrix-vector kernel starts (and asks for its first weights) while that kernel runs, which
     * cuBLASLt's kernels cannot, and products timed back to back would not show it.
     */
    void choose(CudaStream stream, DType type, long x, long[] weights, long out, DType outType, int m, int n, int k,
                Runnable precede) {
        choose(stream, new Shape(type, outType, m, n, k, EmberKernels.GemvInput.ROWS), x, null, weights, out, precede);
    }

    /**
     * As above for a product whose input is staged: cuBLASLt and the matrix-vector builds are timed with the small kernel
     * before them, and the builds also with the input computed in their prologue.
     */
    void choose(CudaStream stream, DType type, StagedInput in, long[] weights, long out, DType outType, int m, int n, int k,
                Runnable precede) {
        EmberKernels.GemvInput input = switch (in) {
            case NormedInput norm -> EmberKernels.GemvInput.NORM;
            case GatedInput gate -> EmberKernels.GemvInput.GATE;
        };
        choose(stream, new Shape(type, outType, m, n, k, input), 0, in, weights, out, precede);
    }

    private void choose(CudaStream stream, Shape shape, long x, StagedInput in, long[] weights, long out, Runnable precede) {
        if (choices.containsKey(shape)) {
            return;
        }
        List<Candidate> candidates = candidates(shape, in != null && kernels.gemvStagedFits(shape.type(), shape.m(), shape.k()));
        if (candidates.size() == 1) {
            return;
        }
        if (FORCED != null) {
            forced(candidates, FORCED).ifPresent(c -> choices.put(shape, new Choice(shape, c, Map.of())));
            return;
        }
        Measured where = new Measured(kernels.device().ordinal(), kernels.dependentLaunch(), shape);
        choices.put(shape, MEASURED.computeIfAbsent(where, key -> time(stream, shape, candidates, x, in, weights, out, precede)));
    }

    /**
     * What is timed for a shape: cuBLASLt, and where the matrix-vector kernel takes the shape each of its builds, after
     * the staged input's small kernel (or on the rows themselves) and, where the staged rows fit its shared memory
     * ({@code stagedFits}), computing them in its prologue.
     */
    static List<Candidate> candidates(Shape shape, boolean stagedFits) {
        List<Candidate> candidates = new ArrayList<>(List.of(new Candidate(Implementation.CUBLASLT, false)));
        if (shape.m() <= MAX_ROWS && EmberKernels.gemvSupports(shape.type(), shape.m(), shape.k())) {
            boolean fusable = stagedFits && shape.input() != EmberKernels.GemvInput.ROWS;
            for (Implementation i : Implementation.MATRIX_VECTOR) {
                candidates.add(new Candidate(i, false));
                if (fusable) {
                    candidates.add(new Candidate(i, true));
                }
            }
        }
        return candidates;
    }

    /** The most rows the matrix-vector builds are timed for: {@code configured} (EMBER_GEMV_MAX_ROWS), or all they take. */
    static int maxRows(int configured) {
        return configured == 0 ? EmberKernels.GEMV_MAX_ROWS : Math.min(configured, EmberKernels.GEMV_MAX_ROWS);
    }

    /** The candidate EMBER_PRODUCTS pins among {@code candidates}: its build computing a staged input itself where it can. */
    static Optional<Candidate> forced(List<Candidate> candidates, Implementation implementation) {
        Candidate fused = new Candidate(implementation, true), apart = new Candidate(implementation, false);
        return candidates.contains(fused) ? Optional.of(fused) : candidates.contains(apart) ? Optional.of(apart) : Optional.empty();
    }

    /**
     * Times each candidate as a step's graph replays it: {@code LAUNCHES} products, each after {@code precede}, captured
     * into a graph and launched between two events, the fastest of {@code ROUNDS} launches, the candidates in turn each
     * round. Launched one by one, a small product would measure the host's launch (cuBLASLt's above all), which a
     * replayed step does not pay, rather than the device's work.
     */
    private Choice time(CudaStream stream, Shape shape, List<Candidate> candidates, long x, StagedInput in, long[] weights,
                        long out, Runnable precede) {
        List<Runnable> launches = new ArrayList<>(candidates.size());
        for (Candidate candidate : candidates) {
            launches.add(() -> {
                for (int i = 0; i < LAUNCHES; i++) {
                    precede.run();
                    run(candidate, stream, shape, x, in, weights[i % weights.length], out, false);
                }
            });
        }
        launches.forEach(Runnable::run);  // warms each up and plans cuBLASLt's algorithm, which a capture may not do
        stream.synchronize();
        Map<Candidate, Double> best = new LinkedHashMap<>();
        List<CudaGraph> graphs = new ArrayList<>(candidates.size());
        try (CudaEvent start = CudaEvent.create(); CudaEvent end = CudaEvent.create()) {
            for (Runnable launch : launches) {
                graphs.add(CudaGraph.capture(stream, launch));
            }
            for (int round = 0; round <= ROUNDS; round++) {  // round 0: each graph's first launch
                for (int c = 0; c < candidates.size(); c++) {
                    start.record(stream);
                    graphs.get(c).launch(stream);
                    end.record(stream);
                    end.synchronize();
                    if (round > 0) {
                        best.merge(candidates.get(c), 1000.0 * end.elapsedMillisSince(start) / LAUNCHES, Math::min);
                    }
                }
            }
        } finally {
            graphs.forEach(CudaGraph::close);
        }
        Candidate fastest = best.entrySet().stream().min(Map.Entry.comparingByValue()).orElseThrow().getKey();
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

    /**
     * Queues a layer's MLP ({@code x += down(gate(gateUp(rmsnorm(x))))}, m rows, hidden h, intermediate ff) as its two
     * products, each as chosen for its shape, with the gate/up bias added between them.
     */
    void mlp(CudaStream stream, DType type, Mlp mlp, int m, int h, int ff) {
        matmul(stream, type, mlp.in(), mlp.gateUpWeights(), mlp.gateUp(), type, m, 2 * ff, h);
        if (mlp.gateUpBias() != 0) {
            kernels.addBias(stream, type, mlp.gateUp(), mlp.gateUpBias(), m, 2 * ff);
        }
        accumulate(stream, type, new GatedInput(mlp.gateUp(), mlp.gated()), mlp.downWeights(), mlp.in().residual(), m, h, ff);
    }

    /** Every decision so far, one line each, for benchmark notes. */
    List<String> choices() {
        List<String> all = new ArrayList<>();
        choices.values().forEach(c -> all.add(c.toString()));
        return all;
    }

    @Override
    public void close() {
        blas.close();
    }
}
