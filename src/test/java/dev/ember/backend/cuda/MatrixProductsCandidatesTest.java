package dev.ember.backend.cuda;

import dev.ember.backend.cuda.EmberKernels.GemvInput;
import dev.ember.backend.cuda.MatrixProducts.Candidate;
import dev.ember.backend.cuda.MatrixProducts.Implementation;
import dev.ember.backend.cuda.MatrixProducts.Shape;
import dev.ember.model.DType;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What {@link MatrixProducts} times for a shape, and what EMBER_PRODUCTS pins (no GPU needed). */
class MatrixProductsCandidatesTest {

    /** EMBER_GEMV_MAX_ROWS: 0 (unset) keeps every row count the builds take; N caps it, and never above it. */
    @Test
    void theRowCapKeepsWhatTheBuildsTakeUnlessGiven() {
        assertEquals(EmberKernels.GEMV_MAX_ROWS, MatrixProducts.maxRows(0));
        assertEquals(4, MatrixProducts.maxRows(4));
        assertEquals(EmberKernels.GEMV_MAX_ROWS, MatrixProducts.maxRows(64));
    }

    @Test
    void aStagedInputIsTimedWithItsKernelApartAndInsideEachBuild() {
        Shape down = new Shape(DType.BF16, DType.F32, 1, 4096, 14336, GemvInput.GATE);
        List<Candidate> candidates = MatrixProducts.candidates(down, true);
        assertEquals(1 + 2 * Implementation.MATRIX_VECTOR.size(), candidates.size(), candidates.toString());
        assertEquals(new Candidate(Implementation.CUBLASLT, false), candidates.getFirst());
        for (Implementation i : Implementation.MATRIX_VECTOR) {
            assertTrue(candidates.contains(new Candidate(i, false)) && candidates.contains(new Candidate(i, true)), i.toString());
        }
        // Rows too wide for a block's shared memory: only apart.
        List<Candidate> wide = MatrixProducts.candidates(down, false);
        assertEquals(1 + Implementation.MATRIX_VECTOR.size(), wide.size(), wide.toString());
        assertTrue(wide.stream().noneMatch(Candidate::fused), wide.toString());
    }

    @Test
    void plainRowsAndShapesTheKernelDoesNotTakeAreNeverFused() {
        Shape o = new Shape(DType.BF16, DType.F32, 4, 4096, 4096, GemvInput.ROWS);
        assertTrue(MatrixProducts.candidates(o, true).stream().noneMatch(Candidate::fused));
        // Nine rows, or a depth that is not a whole number of 16-byte vectors: cuBLASLt alone.
        assertEquals(List.of(new Candidate(Implementation.CUBLASLT, false)),
                MatrixProducts.candidates(new Shape(DType.BF16, DType.F32, 9, 4096, 4096, GemvInput.NORM), true));
        assertEquals(List.of(new Candidate(Implementation.CUBLASLT, false)),
                MatrixProducts.candidates(new Shape(DType.BF16, DType.BF16, 1, 4096, 4100, GemvInput.NORM), true));
    }

    @Test
    void aPinnedBuildComputesAStagedInputItselfWhereItCan() {
        Shape qkv = new Shape(DType.BF16, DType.F32, 1, 6144, 4096, GemvInput.NORM);
        assertEquals(Optional.of(new Candidate(Implementation.GEMV8, true)),
                MatrixProducts.forced(MatrixProducts.candidates(qkv, true), Implementation.GEMV8));
        assertEquals(Optional.of(new Candidate(Implementation.GEMV8, false)),
                MatrixProducts.forced(MatrixProducts.candidates(qkv, false), Implementation.GEMV8));
        assertEquals(Optional.of(new Candidate(Implementation.CUBLASLT, false)),
                MatrixProducts.forced(MatrixProducts.candidates(qkv, true), Implementation.CUBLASLT));
        Shape tooMany = new Shape(DType.BF16, DType.F32, 16, 6144, 4096, GemvInput.NORM);
        assertEquals(Optional.empty(), MatrixProducts.forced(MatrixProducts.candidates(tooMany, true), Implementation.GEMV8));
    }
}
