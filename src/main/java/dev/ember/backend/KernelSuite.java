package dev.ember.backend;

import dev.ember.model.DType;
import dev.ember.model.ModelConfig;

import java.util.List;

/**
 * The kernels one backend runs in a forward step, set up at the shapes of a model on random inputs (never zeros),
 * for {@code ember bench kernel} to time one at a time. Each backend makes its own ({@link Backend#kernelSuite}): a
 * kernel the backend does not have is simply not among its cases.
 */
public interface KernelSuite extends AutoCloseable {

    /**
     * What to set up.
     *
     * @param dtype            the weights' storage type
     * @param decodeRows       the decode batches to time: each is that many single-token sequences
     * @param seqLen           the tokens of the prefill chunk timed (one sequence from position 0), and the context
     *                         every decode row attends to
     * @param includeEmbedding whether to time the embedding lookup (it needs the whole vocabulary-sized table)
     * @param seed             of the random inputs
     */
    record Workload(ModelConfig config, DType dtype, List<Integer> decodeRows, int seqLen, boolean includeEmbedding,
                    long seed) {
        public Workload {
            decodeRows = List.copyOf(decodeRows);
        }

        public int maxDecodeRows() {
            return decodeRows.stream().mapToInt(Integer::intValue).max().orElse(0);
        }
    }

    /**
     * One kernel at one shape.
     *
     * @param kernel         the operation, as the forward pass names it (rmsnorm, matmul_qkv, decode_attention...)
     * @param implementation what computes it: the CUDA function, cuBLASLt, the CPU method
     * @param phase          decode or prefill
     * @param shape          its dimensions, e.g. {@code m=1 n=6144 k=4096}
     * @param rows           token rows it processes
     * @param bytesMoved     bytes it must read and write, from its shape (formulas: docs/benchmarks.md)
     * @param flops          arithmetic of a matrix product or attention; NaN for the memory-bound kernels
     */
    record Case(String kernel, String implementation, String phase, String shape, int rows, long bytesMoved,
                double flops) {
    }

    /** Every kernel at every shape of the workload, in forward-pass order. */
    List<Case> cases();

    /** Runs {@code c} {@code warmup} times untimed, then {@code iters} times timed: the seconds of each timed run. */
    double[] time(Case c, int warmup, int iters);

    /** How {@link #time} measures, for the header: the clock and what it does about caches. */
    String method();

    @Override
    void close();
}
