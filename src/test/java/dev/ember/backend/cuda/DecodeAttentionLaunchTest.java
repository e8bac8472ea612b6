package dev.ember.backend.cuda;

import dev.ember.model.DType;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

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

    /** Where nvcc built the kernels: every name decodeAttention may launch is an entry point of the fatbin. */
    @Test
    void everyLaunchedNameIsInTheFatbin() throws IOException {
        assumeTrue(EmberKernels.bundled(), "this build has no CUDA kernels (no nvcc)");
        String fatbin;
        try (InputStream in = EmberKernels.class.getResourceAsStream(EmberKernels.RESOURCE_DIR + "attention_decode.fatbin")) {
            assertNotNull(in);
            fatbin = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
        }
        assumeTrue(fatbin.contains("decode_attention_reduce_f32\0"), "the fatbin's names are not readable (compressed?)");
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
            }
        }
    }
}
