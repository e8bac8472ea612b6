package dev.ember.backend.cuda;

import dev.ember.model.DType;
import dev.ember.nativelib.NvidiaLibraries;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.HashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Matrix products through cuBLASLt: {@code out[m][n] = x[m][k] · w[n][k]ᵀ}, the shape of every linear layer
 * (row-major activations times an nn.Linear weight stored {@code [out, in]}), with bf16, fp16 or fp32
 * operands, fp32 accumulation and an fp32 result (or one rounded to the operand type).
 *
 * <p>cuBLAS is column-major. A row-major {@code [r][c]} matrix is the column-major {@code c × r} matrix, so
 * the product is computed as {@code outᵀ (n × m) = w (n × k, stored as the column-major k × n, transposed)
 * · xᵀ (k × m)}: A = w with op T, B = x with op N, D = out with leading dimension n (the "TN" layout
 * cuBLAS runs fastest). The algorithm is chosen by cuBLASLt's heuristic once per shape and cached, together
 * with the descriptors. A workspace buffer lets it pick split-K algorithms without allocating, which keeps
 * the products capturable in a {@link CudaGraph}. Every operand must be 256-byte aligned, which the
 * heuristic assumes by default (every {@link DeviceBuffer} is). One per stream; not thread-safe.
 */
public final class CublasLt implements AutoCloseable {
    private static final int CUDA_R_32F = 0;
    private static final int CUDA_R_16F = 2;
    private static final int CUDA_R_16BF = 14;
    private static final int CUBLAS_COMPUTE_32F = 68;
    private static final int CUBLAS_OP_N = 0;
    private static final int CUBLAS_OP_T = 1;
    private static final int CUBLASLT_MATMUL_DESC_TRANSA = 3;
    private static final int CUBLASLT_MATMUL_DESC_TRANSB = 4;
    private static final int CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1;
    /** sizeof(cublasLtMatmulHeuristicResult_t): algo (64 bytes), workspaceSize, state, wavesCount, reserved[4]. */
    private static final long HEURISTIC_RESULT_BYTES = 96;
    private static final long ALGO_BYTES = 64;
    /** Hopper's cuBLAS wants 32 MiB to choose freely among its kernels. */
    public static final long WORKSPACE_BYTES = 32L << 20;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIB = NvidiaLibraries.open(NvidiaLibraries.CUBLAS_LT);

    private static final MethodHandle cublasLtGetStatusName = LINKER.downcallHandle(
            LIB.find("cublasLtGetStatusName").orElseThrow(), FunctionDescriptor.of(ADDRESS, JAVA_INT));
    private static final MethodHandle cublasLtCreate = bind("cublasLtCreate", ADDRESS);
    private static final MethodHandle cublasLtDestroy = bind("cublasLtDestroy", ADDRESS);
    private static final MethodHandle cublasLtMatmulDescCreate = bind("cublasLtMatmulDescCreate", ADDRESS, JAVA_INT, JAVA_INT);
    private static final MethodHandle cublasLtMatmulDescDestroy = bind("cublasLtMatmulDescDestroy", ADDRESS);
    private static final MethodHandle cublasLtMatmulDescSetAttribute = bind("cublasLtMatmulDescSetAttribute",
            ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG);
    private static final MethodHandle cublasLtMatrixLayoutCreate = bind("cublasLtMatrixLayoutCreate",
            ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG);
    private static final MethodHandle cublasLtMatrixLayoutDestroy = bind("cublasLtMatrixLayoutDestroy", ADDRESS);
    private static final MethodHandle cublasLtMatmulPreferenceCreate = bind("cublasLtMatmulPreferenceCreate", ADDRESS);
    private static final MethodHandle cublasLtMatmulPreferenceDestroy = bind("cublasLtMatmulPreferenceDestroy", ADDRESS);
    private static final MethodHandle cublasLtMatmulPreferenceSetAttribute = bind("cublasLtMatmulPreferenceSetAttribute",
            ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG);
    private static final MethodHandle cublasLtMatmulAlgoGetHeuristic = bind("cublasLtMatmulAlgoGetHeuristic",
            ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle cublasLtMatmul = bind("cublasLtMatmul",
            ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG,
            ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS);

    private final Arena arena = Arena.ofShared();
    private final MemorySegment handle;
    private final MemorySegment one;
    private final MemorySegment zero;
    private final DeviceBuffer workspace;
    private final Map<Shape, Plan> plans = new HashMap<>();

    /** A product shape: the cache key for descriptors and the chosen algorithm. */
    private record Shape(DType type, DType outType, int m, int n, int k) {
    }

    /** Descriptors and algorithm for one shape, created once. */
    private record Plan(MemorySegment desc, MemorySegment a, MemorySegment b, MemorySegment d, MemorySegment algo) {
    }

    public CublasLt() {
        try (Arena local = Arena.ofConfined()) {
            MemorySegment out = local.allocate(ADDRESS);
            check((int) cublasLtCreate.invokeExact(out), "cublasLtCreate");
            handle = out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
        one = arena.allocateFrom(JAVA_FLOAT, 1f);
        zero = arena.allocateFrom(JAVA_FLOAT, 0f);
        workspace = DeviceBuffer.allocate(WORKSPACE_BYTES);
    }

    private static MethodHandle bind(String name, MemoryLayout... args) {
        MemorySegment symbol = LIB.find(name).orElseThrow(() -> new IllegalStateException("libcublasLt has no symbol " + name));
        return LINKER.downcallHandle(symbol, FunctionDescriptor.of(JAVA_INT, args));
    }

    private static void check(int status, String call) {
        if (status != 0) {
            throw new CudaException(call, status, statusName(status));
        }
    }

    private static String statusName(int status) {
        try {
            MemorySegment name = (MemorySegment) cublasLtGetStatusName.invokeExact(status);
            return name.equals(MemorySegment.NULL) ? "unknown cublasStatus_t" : name.reinterpret(128).getString(0);
        } catch (Throwable t) {
            return "unknown cublasStatus_t";
        }
    }

    /**
     * Queues {@code out[m][n] = x[m][k] · w[n][k]ᵀ} on {@code stream}: x and w of storage type {@code type},
     * out fp32, all row-major at the given device addresses.
     */
    public void matmul(CudaStream stream, DType type, long x, long w, long out, int m, int n, int k) {
        matmul(stream, type, x, w, out, DType.F32, m, n, k);
    }

    /** As {@link #matmul(CudaStream, DType, long, long, long, int, int, int)}, with out rounded to {@code outType}. */
    public void matmul(CudaStream stream, DType type, long x, long w, long out, DType outType, int m, int n, int k) {
        matmul(stream, type, x, w, out, outType, m, n, k, false);
    }

    /**
     * As above; with {@code accumulate} the product is added to out's values ({@code beta = 1}, out both C and D): an
     * output projection's residual add, in fp32.
     */
    public void matmul(CudaStream stream, DType type, long x, long w, long out, DType outType, int m, int n, int k,
                       boolean accumulate) {
        if (((x | w | out) & 255) != 0) {
            throw new IllegalArgumentException("cuBLASLt operands must be 256-byte aligned");
        }
        Plan p = plans.computeIfAbsent(new Shape(type, outType, m, n, k), this::plan);
        MemorySegment beta = accumulate ? one : zero;  // a local: invokeExact takes the static type of each argument
        try {
            check((int) cublasLtMatmul.invokeExact(handle, p.desc(), one, w, p.a(), x, p.b(), beta, out, p.d(), out, p.d(),
                    p.algo(), workspace.address(), workspace.byteSize(), stream.handle()),
                    "cublasLtMatmul(" + type + "->" + outType + " m=" + m + " n=" + n + " k=" + k + (accumulate ? ", accumulating" : "") + ")");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    private static int dataType(DType type) {
        return switch (type) {
            case BF16 -> CUDA_R_16BF;
            case F16 -> CUDA_R_16F;
            case F32 -> CUDA_R_32F;
        };
    }

    private Plan plan(Shape s) {
        int operandType = dataType(s.type());
        String what = s.type() + "->" + s.outType() + " m=" + s.m() + " n=" + s.n() + " k=" + s.k();
        try (Arena local = Arena.ofConfined()) {
            MemorySegment out = local.allocate(ADDRESS);
            check((int) cublasLtMatmulDescCreate.invokeExact(out, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
            MemorySegment desc = out.get(ADDRESS, 0);
            MemorySegment op = local.allocateFrom(JAVA_INT, CUBLAS_OP_T);
            check((int) cublasLtMatmulDescSetAttribute.invokeExact(desc, CUBLASLT_MATMUL_DESC_TRANSA, op, 4L), "cublasLtMatmulDescSetAttribute(TRANSA)");
            op = local.allocateFrom(JAVA_INT, CUBLAS_OP_N);
            check((int) cublasLtMatmulDescSetAttribute.invokeExact(desc, CUBLASLT_MATMUL_DESC_TRANSB, op, 4L), "cublasLtMatmulDescSetAttribute(TRANSB)");
            MemorySegment a = layout(local, operandType, s.k(), s.n());
            MemorySegment b = layout(local, operandType, s.k(), s.m());
            MemorySegment d = layout(local, dataType(s.outType()), s.n(), s.m());

            check((int) cublasLtMatmulPreferenceCreate.invokeExact(out), "cublasLtMatmulPreferenceCreate");
            MemorySegment preference = out.get(ADDRESS, 0);
            MemorySegment bytes = local.allocateFrom(JAVA_LONG, workspace.byteSize());
            check((int) cublasLtMatmulPreferenceSetAttribute.invokeExact(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                    bytes, 8L), "cublasLtMatmulPreferenceSetAttribute");
            MemorySegment result = local.allocate(HEURISTIC_RESULT_BYTES, 8);
            MemorySegment returned = local.allocate(JAVA_INT);
            int status = (int) cublasLtMatmulAlgoGetHeuristic.invokeExact(handle, desc, a, b, d, d, preference, 1, result, returned);
            check((int) cublasLtMatmulPreferenceDestroy.invokeExact(preference), "cublasLtMatmulPreferenceDestroy");
            check(status, "cublasLtMatmulAlgoGetHeuristic(" + what + ")");
            if (returned.get(JAVA_INT, 0) == 0) {
                throw new CudaException("cublasLtMatmulAlgoGetHeuristic(" + what + ")", 15, "no algorithm for this shape");
            }
            MemorySegment algo = arena.allocate(ALGO_BYTES, 8);
            algo.copyFrom(result.asSlice(0, ALGO_BYTES));
            return new Plan(desc, a, b, d, algo);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    /** A column-major {@code rows × cols} layout with leading dimension {@code rows}. */
    private static MemorySegment layout(Arena local, int type, long rows, long cols) throws Throwable {
        MemorySegment out = local.allocate(ADDRESS);
        check((int) cublasLtMatrixLayoutCreate.invokeExact(out, type, rows, cols, rows), "cublasLtMatrixLayoutCreate");
        return out.get(ADDRESS, 0);
    }

    /** How many shapes have a cached algorithm. */
    public int cachedShapes() {
        return plans.size();
    }

    @Override
    public void close() {
        try {
            for (Plan p : plans.values()) {
                check((int) cublasLtMatrixLayoutDestroy.invokeExact(p.a()), "cublasLtMatrixLayoutDestroy");
                check((int) cublasLtMatrixLayoutDestroy.invokeExact(p.b()), "cublasLtMatrixLayoutDestroy");
                check((int) cublasLtMatrixLayoutDestroy.invokeExact(p.d()), "cublasLtMatrixLayoutDestroy");
                check((int) cublasLtMatmulDescDestroy.invokeExact(p.desc()), "cublasLtMatmulDescDestroy");
            }
            plans.clear();
            check((int) cublasLtDestroy.invokeExact(handle), "cublasLtDestroy");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        } finally {
            workspace.close();
            arena.close();
        }
    }
}
