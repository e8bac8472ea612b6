package dev.ember.model;

import dev.ember.Progress;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** {@code --dtype}'s conversion: every matrix in the asked type, rounded as torch casts; the rest as stored. */
class ModelWeightTypeTest {
    private static final ModelConfig TIED = new ModelConfig(Architecture.QWEN2, 32, 64, 2, 4, 2, 8, 50, 128, 1e-6,
            10000, new RopeScaling.None(), true, Biases.QKV, 0, 1, List.of(2), DType.F32);

    @Test
    void everyMatrixIsConvertedElementByElementAndTheRestKept() {
        MemorySegment one = Arena.ofAuto().allocate(4);
        for (DType type : new DType[] {DType.BF16, DType.F16}) {
            Model original = RandomWeights.create(TIED, DType.F32, 7);
            Model converted = original.withWeightType(type, Progress.NONE);
            try (converted) {
                assertEquals(type, converted.config().dtype());
                assertSame(converted.embedding(), converted.lmHead(), "tied embeddings stay one matrix");
                List<Tensor> before = original.tensors().toList(), after = converted.tensors().toList();
                assertEquals(before.size(), after.size());
                for (int i = 0; i < before.size(); i++) {
                    Tensor a = before.get(i), b = after.get(i);
                    assertArrayEquals(a.shape(), b.shape(), a.name());
                    if (a.rank() == 1) {
                        assertSame(a, b, a.name() + ": norms and biases are read in fp32 by every backend");
                        continue;
                    }
                    assertEquals(type, b.dtype(), a.name());
                    int changed = 0;
                    for (long e = 0; e < a.elementCount(); e++) {
                        float wide = DType.F32.get(a.data(), e);
                        type.set(one, 0, wide);  // one rounding to the nearest of the narrow type: torch's cast
                        assertEquals(type.get(one, 0), b.dtype().get(b.data(), e), a.name() + "[" + e + "]");
                        changed += type.get(one, 0) != wide ? 1 : 0;
                    }
                    assertTrue(changed > 0, a.name() + ": random fp32 values are not all representable in " + type);
                }
            }
            assertThrows(IllegalStateException.class, () -> original.tensors().findFirst().orElseThrow().data().get(
                    ValueLayout.JAVA_BYTE, 0), "closing the converted model closes the one it came from");
        }
    }

    /** A tensor of several runs of a million elements (converted on several threads), the last run partial. */
    @Test
    void aLargeTensorIsConvertedWhole() {
        long n = (5L << 20) / 2 + 7;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment data = arena.allocate(n * 4, 64);
            SplittableRandom random = new SplittableRandom(11);
            for (long i = 0; i < n; i++) {
                DType.F32.set(data, i, (float) random.nextGaussian());
            }
            Tensor wide = new Tensor("w", DType.F32, new long[] {1, n}, data);
            Tensor narrow = wide.converted(DType.BF16, arena);
            MemorySegment one = arena.allocate(2);
            for (long i = 0; i < n; i++) {
                DType.BF16.set(one, 0, DType.F32.get(data, i));
                assertEquals(DType.BF16.get(one, 0), DType.BF16.get(narrow.data(), i), "element " + i);
            }
        }
    }

    @Test
    void aModelAlreadyOfTheTypeIsItselfAndAViewIsRefused() {
        try (Model model = RandomWeights.create(TIED, DType.BF16, 7)) {
            assertSame(model, model.withWeightType(DType.BF16, Progress.NONE));
            assertThrows(IllegalStateException.class, () -> model.firstLayers(1).withWeightType(DType.F32, Progress.NONE));
        }
    }
}
