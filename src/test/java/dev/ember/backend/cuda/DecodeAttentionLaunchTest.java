package dev.ember.backend.cuda;

import dev.ember.model.DType;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * What EmberKernels.decodeAttention launches, checked without a GPU: the entry point it names for each shape is in
 * the built attention_decode.fatbin, and the shared memory it asks for is decode_attention_keys's layout, by hand.
 */
class DecodeAttentionLaunchTest {
    /** The most dynamic shared memory an sm_80 block may opt into (A100: 163 KiB). */
    private static final int SM80_SHARED_PER_BLOCK = 166_912;

    @Test
    void sharedMemoryIsTheKernelsLayout() {
        // The 8B shape in bf16: 2 tiles of 32 keys (128 + 8 elements, the row padded by 16 bytes) and 32 values (128),
        // then 4 heads' queries (128 floats) and probabilities (32 floats): six blocks fit on an H200's multiprocessor.
        assertEquals(2 * 32 * (136 + 128) * 2 + 4 * (128 + 32) * 4, EmberKernels.decodeSharedBytes(DType.BF16, 128, 4));
        assertEquals(36_352, EmberKernels.decodeSharedBytes(DType.BF16, 128, 4));
        // fp32 rows are padded by 4 elements.
        assertEquals(2 * 32 * (260 + 256) * 4 + 2 * (256 + 32) * 4, EmberKernels.decodeSharedBytes(DType.F32, 256, 2));
        // hd=36 in bf16: rows rounded up to 40 elements (80 bytes).
        assertEquals(2 * 32 * (48 + 40) * 2 + 2 * (40 + 32) * 4, EmberKernels.decodeSharedBytes(DType.F16, 36, 2));
    }

    @Test
    void twoWarpsAHeadMergeInTheTileArea() {
        // Two heads a block take two warps each; their merge, a row of output and (max, sum) per head
        // (rowElements + 4 floats), fits in the tiles, so the block is no larger for it.
        assertEquals(2, EmberKernels.decodeKeyParts(2));
        assertEquals(1, EmberKernels.decodeKeyParts(4));
        for (DType type : DType.values()) {
            for (int hd = 2; hd <= EmberKernels.MAX_HEAD_DIM; hd += 2) {
                int rowElements = (hd + 16 / type.bytes() - 1) / (16 / type.bytes()) * (16 / type.bytes());
                int tiles = 2 * 32 * (2 * rowElements + 16 / type.bytes()) * type.bytes();
                assertTrue(2 * (rowElements + 4) * 4 <= tiles, type + " hd=" + hd);
                assertEquals(tiles + 2 * (rowElements + 32) * 4, EmberKernels.decodeSharedBytes(type, hd, 2), type + " hd=" + hd);
            }
        }
    }

    @Test
    void tensorCoresTakeSixteenBitTypesAtHeadDimensionsOfSixteensAndGroupsOverTwo() {
        assertTrue(EmberKernels.decodeOnTensorCores(DType.BF16, new AttentionShape(32, 8, 128, 16, 0)));
        assertTrue(EmberKernels.decodeOnTensorCores(DType.F16, new AttentionShape(14, 2, 64, 16, 0)));
        assertTrue(EmberKernels.decodeOnTensorCores(DType.BF16, new AttentionShape(24, 8, 96, 16, 0)));
        assertFalse(EmberKernels.decodeOnTensorCores(DType.BF16, new AttentionShape(16, 8, 128, 16, 0)));
        assertFalse(EmberKernels.decodeOnTensorCores(DType.BF16, new AttentionShape(8, 8, 128, 16, 0)));
        assertFalse(EmberKernels.decodeOnTensorCores(DType.F32, new AttentionShape(32, 8, 128, 16, 0)));
        assertFalse(EmberKernels.decodeOnTensorCores(DType.BF16, new AttentionShape(32, 8, 36, 16, 0)));
        assertFalse(EmberKernels.decodeOnTensorCores(DType.BF16, new AttentionShape(32, 8, 256, 16, 0)));
        // Two stages of 64 key rows and 64 value rows of 136 bf16 elements: three blocks share an H200 multiprocessor.
        assertEquals(69_632, EmberKernels.DECODE_MMA_SHARED_BYTES);
        assertTrue(3 * (EmberKernels.DECODE_MMA_SHARED_BYTES + 1024) <= 233_472);
        assertTrue(EmberKernels.DECODE_MMA_SHARED_BYTES <= SM80_SHARED_PER_BLOCK);
    }

    @Test
    void bulkCopiesTakeSixteenBitRowsOfWholeLinesAtAnyGroup() {
        assertTrue(EmberKernels.bulkTakes(DType.BF16, new AttentionShape(32, 8, 128, 16, 0)));
        assertTrue(EmberKernels.bulkTakes(DType.BF16, new AttentionShape(16, 8, 128, 16, 0)));  // groups of two
        assertTrue(EmberKernels.bulkTakes(DType.F16, new AttentionShape(8, 8, 64, 12, 4)));  // of one, any block size
        assertTrue(EmberKernels.bulkTakes(DType.BF16, new AttentionShape(34, 2, 128, 16, 0)));  // two batches of 16 heads
        assertFalse(EmberKernels.bulkTakes(DType.F32, new AttentionShape(32, 8, 128, 16, 0)));
        assertFalse(EmberKernels.bulkTakes(DType.BF16, new AttentionShape(24, 8, 96, 16, 0)));  // 192-byte rows: in order
        assertFalse(EmberKernels.bulkTakes(DType.BF16, new AttentionShape(32, 8, 256, 16, 0)));
        assertFalse(EmberKernels.bulkTakes(DType.BF16, new AttentionShape(32, 8, 32, 16, 0)));  // 64-byte rows
        // Three stages of 64 unpadded key rows and 64 value rows of 128 bf16 elements and three 8-byte barriers: two
        // blocks share an H200 multiprocessor (233,472 bytes, 1 KiB a block reserved); three at two stages, one at four.
        assertEquals(98_328, EmberKernels.decodeBulkSharedBytes(DType.BF16, 128, 3));
        assertEquals(3 * (2 * 64 * 128 * 2 + 8), EmberKernels.decodeBulkSharedBytes(DType.BF16, 128, 3));
        assertEquals(2, 233_472 / (EmberKernels.decodeBulkSharedBytes(DType.BF16, 128, 3) + 1024));
        assertEquals(3, 233_472 / (EmberKernels.decodeBulkSharedBytes(DType.BF16, 128, 2) + 1024));
        assertEquals(1, 233_472 / (EmberKernels.decodeBulkSharedBytes(DType.BF16, 128, 4) + 1024));
        assertEquals(2 * (2 * 64 * 64 * 2 + 8), EmberKernels.decodeBulkSharedBytes(DType.F16, 64, 2));
        // The warps' merge after the last tile (3 warps x 17 x 32 float4) fits the smallest tile area, two stages at hd 64.
        assertTrue(3 * 17 * 32 * 16 <= 2 * 2 * 64 * 64 * 2);
        // Every stage count fits an H100/H200 block (227 KiB); two fit the 99 KiB of sm_120 parts.
        assertTrue(EmberKernels.decodeBulkSharedBytes(DType.BF16, 128, EmberKernels.DECODE_BULK_MAX_STAGES) <= 232_448);
        assertTrue(EmberKernels.decodeBulkSharedBytes(DType.BF16, 128, EmberKernels.DECODE_BULK_MIN_STAGES) <= 101_376);
    }

    @Test
    void bulkSplitsFillWholeWaves() {
        int h200 = 2 * 132;  // blocks resident at once: two a multiprocessor at three stages
        // Batch 64 of the 8B shape (512 blocks a split, 640-slot tables): one split, 1.94 waves and no reduction.
        assertEquals(1, EmberKernels.wholeWaveSplits(64 * 8, h200, 640, 16));
        // Three blocks a multiprocessor (two stages): 2 splits fill three waves of 396 at 2.59, 1 leaves two at 1.29.
        assertEquals(2, EmberKernels.wholeWaveSplits(64 * 8, 3 * 132, 640, 16));
        // Batch 1 (8 blocks a split, 384-slot tables): splits of 32 keys, one wave of 96 blocks.
        assertEquals(12, EmberKernels.wholeWaveSplits(8, h200, 384, 16));
        // Offline Qwen3-0.6B (about 200 rows of 8 KV heads, contexts to 1,120): the rows fill seven waves alone (6.06);
        // two splits would take 13 (12.1) of half the keys and the reduction.
        assertEquals(1, EmberKernels.wholeWaveSplits(200 * 8, h200, 1120, 16));
        // Batch 16 of the 8B shape (128 blocks a split): two splits fill one wave (256 of 264), three would take two.
        assertEquals(2, EmberKernels.wholeWaveSplits(16 * 8, h200, 640, 16));
        // Long contexts at batch 1: the most splits, 32.
        assertEquals(EmberKernels.MAX_DECODE_SPLITS, EmberKernels.wholeWaveSplits(8, h200, 32_768, 16));
        // Never more splits than 32-key runs of the context, never fewer than one.
        assertEquals(1, EmberKernels.wholeWaveSplits(8, h200, 20, 16));
        for (int blocks : new int[] {1, 7, 100, 512, 5000}) {
            for (int context : new int[] {16, 100, 640, 4096}) {
                for (int blockSize : new int[] {1, 12, 16, 32}) {
                    int s = EmberKernels.wholeWaveSplits(blocks, h200, context, blockSize);
                    assertTrue(s >= 1 && s <= Math.max(1, Math.min(EmberKernels.MAX_DECODE_SPLITS, context / 32)),
                            blocks + " blocks, context " + context + ", block size " + blockSize + ": " + s);
                }
            }
        }
    }

    @Test
    void everySupportedShapeFitsAnSm80Block() {
        for (DType type : DType.values()) {
            for (int hd = 2; hd <= EmberKernels.MAX_HEAD_DIM; hd += 2) {
                for (int group = 1; group <= EmberKernels.MAX_GROUP; group++) {
                    int bytes = EmberKernels.decodeSharedBytes(type, hd, EmberKernels.decodeHeadsPerBlock(group));
                    assertTrue(bytes <= SM80_SHARED_PER_BLOCK, type + " hd=" + hd + " group=" + group + ": " + bytes);
                }
            }
        }
    }

    @Test
    void headsPerBlockAndEntryPoints() {
        assertEquals(2, EmberKernels.decodeHeadsPerBlock(1));
        assertEquals(2, EmberKernels.decodeHeadsPerBlock(2));
        assertEquals(4, EmberKernels.decodeHeadsPerBlock(3));
        assertEquals(4, EmberKernels.decodeHeadsPerBlock(32));
        assertEquals("decode_attention_keys_d128_g4", EmberKernels.decodeKernel(128, 4));
        assertEquals("decode_attention_keys_d128_g2", EmberKernels.decodeKernel(36, 2));
        assertEquals("decode_attention_keys_d256_g2", EmberKernels.decodeKernel(130, 2));
        assertEquals("decode_attention_keys_d256_g4", EmberKernels.decodeKernel(256, 4));
    }

    /**
     * The bytes of a bundled fatbin as text, where its entry points' names stand NUL-terminated; skips the test in a
     * build without kernels. Fails where {@code knownEntry} is not found: nvcc compresses a fatbin that grows past its
     * threshold, which hides the names (and these tests with them), so a kernel file that grows that large is split.
     */
    static String fatbinText(String file, String knownEntry) throws IOException {
        assumeTrue(EmberKernels.bundled(), "this build has no CUDA kernels (no nvcc)");
        String fatbin;
        try (InputStream in = EmberKernels.class.getResourceAsStream(EmberKernels.RESOURCE_DIR + file)) {
            assertNotNull(in);
            fatbin = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
        }
        assertTrue(fatbin.contains(knownEntry + "\0"), file + " has no readable " + knownEntry
                + ": nvcc compressed it (it grew past nvcc's size threshold) or does not build it; split its .cu file");
        return fatbin;
    }

    /** Where nvcc built the kernels: every name decodeAttention may launch is an entry point of the fatbin. */
    @Test
    void everyLaunchedNameIsInTheFatbin() throws IOException {
        String fatbin = fatbinText("attention_decode.fatbin", "decode_attention_reduce_f32");
        for (String suffix : new String[] {"_f32", "_bf16", "_f16"}) {
            for (int hd : new int[] {128, 256}) {
                for (int heads : new int[] {2, 4}) {
                    String name = EmberKernels.decodeKernel(hd, heads) + suffix;
                    assertTrue(fatbin.contains(name + "\0"), name + " is not in attention_decode.fatbin");
                }
            }
            assertTrue(fatbin.contains("decode_attention_reduce" + suffix + "\0"));
            if (!suffix.equals("_f32")) {
                assertTrue(fatbin.contains("decode_attention_mma" + suffix + "\0"));
                for (int headDim : new int[] {64, 128}) {
                    assertTrue(fatbin.contains(EmberKernels.decodeBulkEntry(headDim) + suffix + "\0"));
                }
            }
        }
    }

    /** Where nvcc built the kernels: every name prefillAttention may launch on the tensor cores is an entry point. */
    @Test
    void everyLaunchedPrefillNameIsInTheFatbin() throws IOException {
        String fatbin = fatbinText("attention_prefill_mma.fatbin", "prefill_attention_mma_bf16");
        List<String> kernels = new ArrayList<>(List.of("prefill_attention_mma"));
        for (int warps : new int[] {4, 8}) {
            for (int headDim : new int[] {64, 128}) {
                kernels.add(EmberKernels.prefillBulkEntry(warps, headDim));
            }
        }
        for (String suffix : new String[] {"_bf16", "_f16"}) {
            for (String kernel : kernels) {
                assertTrue(fatbin.contains(kernel + suffix + "\0"), kernel + suffix + " is not in attention_prefill_mma.fatbin");
            }
        }
    }

    /** Which shapes prefill_attention_bulk takes, and how many query heads a block packs. */
    @Test
    void bulkPrefillTakesSwizzledRowsInBlocksOfEightTokens() {
        assertTrue(EmberKernels.prefillBulkTakes(DType.BF16, new AttentionShape(32, 8, 128, 16, 0)));
        assertTrue(EmberKernels.prefillBulkTakes(DType.F16, new AttentionShape(8, 2, 64, 8, 20)));
        assertTrue(EmberKernels.prefillBulkTakes(DType.BF16, new AttentionShape(17, 1, 128, 80, 0)));
        assertFalse(EmberKernels.prefillBulkTakes(DType.BF16, new AttentionShape(32, 8, 128, 12, 0)));
        assertFalse(EmberKernels.prefillBulkTakes(DType.BF16, new AttentionShape(32, 8, 128, 1, 0)));
        assertFalse(EmberKernels.prefillBulkTakes(DType.BF16, new AttentionShape(4, 2, 96, 16, 0)));
        assertFalse(EmberKernels.prefillBulkTakes(DType.F32, new AttentionShape(32, 8, 128, 16, 0)));
        assertEquals(4, EmberKernels.prefillPacked(4));
        assertEquals(4, EmberKernels.prefillPacked(8));
        assertEquals(2, EmberKernels.prefillPacked(2));
        assertEquals(2, EmberKernels.prefillPacked(6));
        assertEquals(1, EmberKernels.prefillPacked(1));
        assertEquals(1, EmberKernels.prefillPacked(17));
    }
}
