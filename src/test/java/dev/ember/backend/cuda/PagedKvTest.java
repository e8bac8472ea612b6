package dev.ember.backend.cuda;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The KV cache's layout as the kernels define it (kv_row in common.cuh), checked without a GPU. */
class PagedKvTest {

    @Test
    void rowsOfWholeLinesSwizzleTheirChunksByTheOffsetInTheBlock() {
        // bf16, hd 128, blocks of 16, 8 KV heads: slot 19 is offset 3 of block 1; its row starts at
        // ((1 * 8 + 2) * 16 + 3) * 128 for KV head 2, and chunk c of it is stored at chunk c ^ 3.
        long row = ((1L * 8 + 2) * 16 + 3) * 128;
        assertEquals(row + 3 * 8, PagedKv.offset(19, 16, 8, 2, 128, 2, 0));
        assertEquals(row + 3 * 8 + 5, PagedKv.offset(19, 16, 8, 2, 128, 2, 5));
        assertEquals(row, PagedKv.offset(19, 16, 8, 2, 128, 2, 24));
        assertEquals(row + 10 * 8 + 1, PagedKv.offset(19, 16, 8, 2, 128, 2, 9 * 8 + 1));
        // Offset 11 of a block of 16 takes 11 % 8 = 3 too; offset 8 none.
        assertEquals(PagedKv.offset(16, 16, 8, 2, 128, 2, 0) + 11 * 128 + 3 * 8, PagedKv.offset(27, 16, 8, 2, 128, 2, 0));
        assertEquals(PagedKv.offset(16, 16, 8, 2, 128, 2, 0) + 8 * 128, PagedKv.offset(24, 16, 8, 2, 128, 2, 0));
        // fp32 chunks are 4 elements.
        assertEquals(((0L * 2 + 1) * 16 + 5) * 64 + 5 * 4, PagedKv.offset(5, 16, 2, 1, 64, 4, 0));
    }

    @Test
    void otherRowsAreInOrder() {
        for (int[] hdBytes : new int[][] {{96, 2}, {36, 2}, {48, 2}, {40, 4}, {16, 2}, {2, 2}}) {
            assertFalse(PagedKv.swizzled(hdBytes[0], hdBytes[1]));
            for (int d = 0; d < hdBytes[0]; d++) {
                assertEquals(((0L * 4 + 3) * 12 + 7) * hdBytes[0] + d, PagedKv.offset(7, 12, 4, 3, hdBytes[0], hdBytes[1], d));
            }
        }
        assertTrue(PagedKv.swizzled(64, 2));
        assertTrue(PagedKv.swizzled(128, 2));
        assertTrue(PagedKv.swizzled(256, 2));
        assertTrue(PagedKv.swizzled(96, 4));
        assertTrue(PagedKv.swizzled(32, 4));
    }

    /**
     * Each row keeps its elements (a permutation of its own range), 16-byte chunks whole and in order, and 8
     * consecutive rows of a block put any one chunk on 8 distinct 16-byte bank groups (what ldmatrix needs of a run copied
     * byte for byte into shared memory), for block sizes that are and are not multiples of 8.
     */
    @Test
    void rowsArePermutationsOfWholeChunksAndEightRowsSpreadOverTheBanks() {
        for (int bytes : new int[] {2, 4}) {
            for (int hd : new int[] {32, 64, 96, 128, 256}) {
                int e = 16 / bytes;
                for (int bs : new int[] {1, 8, 12, 16, 32}) {
                    int kvHeads = 3;
                    for (int slot = 0; slot < 4 * bs; slot++) {
                        long start = (((long) (slot / bs) * kvHeads + 1) * bs + slot % bs) * hd;
                        Set<Long> seen = new HashSet<>();
                        for (int d = 0; d < hd; d++) {
                            long at = PagedKv.offset(slot, bs, kvHeads, 1, hd, bytes, d);
                            assertTrue(at >= start && at < start + hd, "within the row");
                            assertTrue(seen.add(at), "no two dimensions share an element");
                            if (d % e != 0) {
                                assertEquals(PagedKv.offset(slot, bs, kvHeads, 1, hd, bytes, d - 1) + 1, at, "chunks whole");
                            }
                        }
                    }
                    if (!PagedKv.swizzled(hd, bytes) || bs % 8 != 0) {
                        continue;
                    }
                    for (int first = 0; first + 8 <= bs; first += 8) {
                        for (int c = 0; c < hd / e; c++) {
                            Set<Long> groups = new HashSet<>();
                            for (int r = first; r < first + 8; r++) {
                                groups.add(PagedKv.offset(r, bs, kvHeads, 1, hd, bytes, c * e) * bytes % 128 / 16);
                            }
                            assertEquals(8, groups.size(), bytes + " bytes hd=" + hd + " bs=" + bs + " chunk " + c);
                        }
                    }
                }
            }
        }
    }
}
