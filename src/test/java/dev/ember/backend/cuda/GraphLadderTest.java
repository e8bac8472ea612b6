package dev.ember.backend.cuda;

import org.junit.jupiter.api.Test;

import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The batch sizes decode steps are padded to (no GPU needed). */
class GraphLadderTest {

    @Test
    void aDecodeBatchPadsToTheNextCapturedSize() {
        int[][] expected = {{1, 1}, {2, 2}, {3, 4}, {5, 8}, {9, 16}, {17, 24}, {25, 32}, {33, 48}, {49, 64}, {65, 96},
                {97, 128}, {129, 160}, {200, 224}, {256, 256}, {257, 320}, {320, 320}, {321, 384}};
        for (int[] e : expected) {
            assertEquals(e[1], DecodeGraphs.batchSize(e[0]), "batch " + e[0]);
        }
    }

    @Test
    void aBatchShrinkingOneByOneFrom256ReplaysFifteenSizes() {
        Set<Integer> sizes = new TreeSet<>();
        for (int n = 256; n >= 1; n--) {
            sizes.add(DecodeGraphs.batchSize(n));
        }
        assertEquals(15, sizes.size(), sizes.toString());
    }
}
