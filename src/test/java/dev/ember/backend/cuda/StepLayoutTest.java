package dev.ember.backend.cuda;

import dev.ember.backend.ForwardBatch;
import dev.ember.backend.SubmittedStep;
import dev.ember.kvcache.BlockAllocator;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import dev.ember.sampling.ScriptedGrammar;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.BitSet;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which steps a graph can replay, and how they are padded (no GPU needed). */
class StepLayoutTest {
    private static final int VOCAB = 1000, BLOCK = 16, MAX_STRIDE = 8;
    private final KvCacheSpec spec = new KvCacheSpec(2, 2, 8, BLOCK, 40);
    private final BlockAllocator allocator = new BlockAllocator(spec);
    private final Random random = new Random(11);

    private ForwardBatch.Chunk chunk(int start, int length, int outputs) {
        BlockTable table = allocator.newTable();
        table.reserveOrFail(start + length, allocator);
        return new ForwardBatch.Chunk(random.ints(length, 1, VOCAB).toArray(), start, table, -1, outputs);
    }

    private StepLayout layout(ForwardBatch.Chunk... chunks) {
        return StepLayout.of(ForwardBatch.of(chunks), VOCAB, BLOCK, MAX_STRIDE);
    }

    @Test
    void decodesAndEqualVerificationsAndCatchUpsAreUniform() {
        assertEquals(1, layout(chunk(30, 1, 1), chunk(7, 1, 1)).uniformLength());
        assertEquals(5, layout(chunk(30, 5, 5), chunk(7, 5, 5), chunk(60, 5, 5)).uniformLength(), "verifications, gamma 4");
        assertEquals(3, layout(chunk(30, 3, 1), chunk(7, 3, 1)).uniformLength(), "a draft's catch-up of 3 tokens each");
        assertEquals(0, layout(chunk(30, 5, 5), chunk(7, 1, 1)).uniformLength(), "a verification beside a decode");
        assertEquals(0, layout(chunk(30, 5, 5), chunk(7, 4, 4)).uniformLength(), "verifications of two lengths");
        assertEquals(0, layout(chunk(30, 5, 5), chunk(7, 5, 1)).uniformLength(), "outputs differ");
        assertEquals(0, layout(chunk(30, 5, 2)).uniformLength(), "two outputs of five tokens");
    }

    @Test
    void paddingAVerificationStepAddsChunksOfItsShapeInTheScratchBlock() {
        ForwardBatch batch = ForwardBatch.of(chunk(30, 5, 5), chunk(7, 5, 5), chunk(60, 5, 5));
        StepLayout exact = StepLayout.of(batch, VOCAB, BLOCK, MAX_STRIDE);
        StepLayout padded = exact.padded(4);
        assertEquals(new StepLayout(20, 4, 20, 0, 20, exact.stride(), 5), padded, "every row a decode row");
        assertEquals(5, padded.uniformLength());
        assertThrows(IllegalArgumentException.class, () -> exact.padded(2));
        int scratch = spec.numBlocks();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(4L * StepLayout.capacityInts(padded.rows(), padded.outputs(), MAX_STRIDE));
            assertEquals(0, padded.writeMetadata(batch, spec, scratch, 0, m));
            assertEquals(0, read(m, padded.carry()), "a replay of the graph carries nothing");
            assertTrue(padded.totalInts() <= StepLayout.capacityInts(padded.rows(), padded.outputs(), MAX_STRIDE));
            // The real chunks as an eager step writes them.
            assertEquals(10, read(m, padded.chunkRowStart() + 2));
            assertEquals(60, read(m, padded.chunkStartPosition() + 2));
            assertEquals(62, read(m, padded.positions() + 12));
            // The padding chunk: five tokens at positions 0-4 of the scratch block, all of them outputs, each attended
            // by the decode kernel at its own position, as every row of the real verifications is.
            assertEquals(15, read(m, padded.chunkRowStart() + 3));
            assertEquals(5, read(m, padded.chunkLength() + 3));
            assertEquals(0, read(m, padded.chunkStartPosition() + 3));
            assertEquals(scratch, read(m, padded.blockTables() + 3 * padded.stride()));
            for (int row = 0; row < 20; row++) {
                assertEquals(row, read(m, padded.decodeRows() + row));
            }
            for (int i = 0; i < 5; i++) {
                assertEquals(i, read(m, padded.positions() + 15 + i));
                assertEquals(scratch * BLOCK + i, read(m, padded.slots() + 15 + i));
                assertEquals(3, read(m, padded.rowChunk() + 15 + i));
                assertEquals(15 + i, read(m, padded.lastRows() + 15 + i));
            }
        }
    }

    @Test
    void verificationsOfSeveralLengthsBesideADecodeReplayTheDecodeGraphOfTheirRows() {
        ForwardBatch batch = ForwardBatch.of(chunk(30, 3, 3), chunk(7, 1, 1), chunk(60, 2, 2));
        StepLayout exact = StepLayout.of(batch, VOCAB, BLOCK, MAX_STRIDE);
        assertEquals(0, exact.uniformLength());
        assertTrue(exact.rowsOnly());
        assertFalse(layout(chunk(30, 3, 1), chunk(7, 1, 1)).rowsOnly(), "a catch-up's rows are not all outputs");
        assertFalse(layout(chunk(30, 20, 20)).rowsOnly(), "a text scored whole goes to the prefill kernel");
        StepLayout padded = exact.asDecodeOf(8);
        assertEquals(StepLayout.decode(8, exact.stride()), padded, "the decode graph of eight rows");
        assertThrows(IllegalArgumentException.class, () -> exact.asDecodeOf(4));
        int scratch = spec.numBlocks();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(4L * StepLayout.capacityInts(padded.rows(), padded.outputs(), MAX_STRIDE));
            padded.writeMetadata(batch, spec, scratch, 0, m);
            assertTrue(padded.totalInts() <= StepLayout.capacityInts(padded.rows(), padded.outputs(), MAX_STRIDE));
            // The real chunks' rows, each an output attended on its own at its position, as an eager step writes them.
            assertEquals(4, read(m, padded.chunkRowStart() + 2));
            assertEquals(61, read(m, padded.positions() + 5));
            assertEquals(2, read(m, padded.rowChunk() + 5));
            for (int row = 0; row < 8; row++) {
                assertEquals(row, read(m, padded.decodeRows() + row));
                assertEquals(row, read(m, padded.lastRows() + row));
            }
            // Rows 6 and 7: single-token padding chunks 3 and 4 in the scratch block; chunks 5-7 hold no rows.
            for (int c = 3; c <= 4; c++) {
                int row = c + 3;
                assertEquals(row, read(m, padded.chunkRowStart() + c));
                assertEquals(1, read(m, padded.chunkLength() + c));
                assertEquals(c, read(m, padded.rowChunk() + row));
                assertEquals(scratch * BLOCK, read(m, padded.slots() + row));
                assertEquals(scratch, read(m, padded.blockTables() + c * padded.stride()));
            }
            for (int c = 5; c < 8; c++) {
                assertEquals(0, read(m, padded.chunkLength() + c));
                assertEquals(8, read(m, padded.chunkRowStart() + c));
            }
        }
    }

    @Test
    void paddingACatchUpStepKeepsOneOutputAChunk() {
        ForwardBatch batch = ForwardBatch.of(chunk(30, 3, 1));
        StepLayout padded = StepLayout.of(batch, VOCAB, BLOCK, MAX_STRIDE).padded(2);
        assertEquals(new StepLayout(6, 2, 2, 2, 0, padded.stride(), 3), padded, "a catch-up stays a prefill");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(4L * StepLayout.capacityInts(padded.rows(), padded.outputs(), MAX_STRIDE));
            padded.writeMetadata(batch, spec, spec.numBlocks(), 0, m);
            assertEquals(2, read(m, padded.lastRows()));
            assertEquals(5, read(m, padded.lastRows() + 1), "the padding chunk's last row");
        }
    }

    @Test
    void verificationRowsGoToTheDecodeKernelAndEverythingElseOfSeveralTokensToThePrefillKernel() {
        ForwardBatch batch = ForwardBatch.of(chunk(30, 1, 1), chunk(40, 3, 3), chunk(7, 4, 1), chunk(0, 17, 17), chunk(60, 2, 1));
        StepLayout layout = StepLayout.of(batch, VOCAB, BLOCK, MAX_STRIDE);
        assertEquals(3, layout.prefill(), "two catch-ups (or prompt chunks) and a long chunk of outputs only (a scored text)");
        assertEquals(4, layout.decode(), "the decode and the verification's three rows");
        assertEquals(0, layout.evenLength());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(4L * StepLayout.capacityInts(layout.rows(), Math.max(layout.chunks(), layout.outputs()), MAX_STRIDE));
            layout.writeMetadata(batch, spec, spec.numBlocks(), 0, m);
            for (int k = 0; k < 4; k++) {
                assertEquals(k, read(m, layout.decodeRows() + k), "rows 0 (the decode) and 1-3 (the verification)");
                assertEquals(k == 0 ? 0 : 1, read(m, layout.rowChunk() + k));
                assertEquals(k == 0 ? 30 : 39 + k, read(m, layout.positions() + k), "each row at its own position");
            }
            assertEquals(2, read(m, layout.prefillChunks()));
            assertEquals(3, read(m, layout.prefillChunks() + 1));
            assertEquals(4, read(m, layout.prefillChunks() + 2));
        }
    }

    /**
     * Verifications whose last drafted token a draft model's step samples on the device are as uniform as any (their
     * graph replays), and each carried pair names that token's row, its chunk's last, and the draft step's output.
     */
    @Test
    void aVerificationCarriesItsLastTokenIntoItsLastRow() {
        SubmittedStep draftStep = tokens -> {
        };
        ForwardBatch.Chunk first = chunk(30, 3, 3), second = chunk(7, 3, 3);
        ForwardBatch batch = ForwardBatch.of(
                new ForwardBatch.Chunk(first.tokens(), 30, first.blockTable(), 1, 3, draftStep),
                new ForwardBatch.Chunk(second.tokens(), 7, second.blockTable(), 0, 3, draftStep));
        StepLayout padded = StepLayout.of(batch, VOCAB, BLOCK, MAX_STRIDE).padded(4);
        assertEquals(3, padded.uniformLength());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(4L * StepLayout.capacityInts(padded.rows(), padded.outputs(), MAX_STRIDE));
            long source = 0x7f12_3456_789aL;
            assertEquals(2, padded.writeMetadata(batch, spec, spec.numBlocks(), source, m));
            assertEquals(2, read(m, padded.carry()), "two chunks carry");
            assertEquals(source, Integer.toUnsignedLong(read(m, padded.carry() + 1)) | (long) read(m, padded.carry() + 2) << 32,
                    "the draft's sampled tokens, as carry_tokens reads the address");
            assertEquals(2, read(m, padded.carried()), "the first verification's last row");
            assertEquals(1, read(m, padded.carried() + 1), "takes the draft step's output 1");
            assertEquals(5, read(m, padded.carried() + 2));
            assertEquals(0, read(m, padded.carried() + 3));
        }
    }

    /**
     * A grammar's row drawn on the device: its sampling parameters name its mask, the mask holds exactly the tokens the
     * grammar allows, a bit each, and the masks of several rows are packed one after another; other rows name none.
     */
    @Test
    void rowsHeldToAGrammarNameTheirMasksAndTheMasksHoldTheirTokens() {
        BitSet first = new BitSet(), second = new BitSet();
        random.ints(300, 0, VOCAB).forEach(first::set);
        second.set(VOCAB - 1);
        second.set(0);
        Sampler[] samplers = {
                new Sampler(SamplingParams.greedy(8).withGrammar(new ScriptedGrammar(accepted -> first)), VOCAB),
                new Sampler(SamplingParams.greedy(8), VOCAB),
                new Sampler(SamplingParams.greedy(8).withTemperature(0.7f).withGrammar(new ScriptedGrammar(accepted -> second)), VOCAB),
                new Sampler(SamplingParams.greedy(8).withGrammar(new ScriptedGrammar(accepted -> first)).withLogprobs(2), VOCAB)};
        assertTrue(CudaSubmittedStep.masksOnDevice(samplers[0]) && !CudaSubmittedStep.samplesOnHost(samplers[0]));
        assertTrue(CudaSubmittedStep.samplesOnHost(samplers[3]), "logprobs of a masked row are the raw row's: drawn on the host");
        ForwardBatch batch = ForwardBatch.of(chunk(30, 1, 1), chunk(7, 1, 1), chunk(60, 1, 1), chunk(3, 1, 1));
        StepLayout layout = StepLayout.of(batch, VOCAB, BLOCK, MAX_STRIDE);
        int words = StepLayout.maskInts(VOCAB);
        assertEquals(32, words, "whole 64-bit words: 1000 tokens in 16 of them");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(4L * StepLayout.capacityInts(layout.rows(), layout.outputs(), MAX_STRIDE));
            MemorySegment masks = arena.allocate(4L * words * layout.outputs());
            layout.writeSampling(samplers, 4, m);
            assertEquals(2, layout.writeMasks(samplers, 4, VOCAB, m, masks));
            int[] named = new int[4];
            for (int c = 0; c < 4; c++) {
                named[c] = read(m, layout.sampling() + StepLayout.SAMPLE_PARAMS * c + 6);
            }
            assertArrayEquals(new int[] {0, -1, 1, -1}, named);
            for (int k = 0; k < 2; k++) {
                BitSet expected = k == 0 ? first : second;
                for (int token = 0; token < 32 * words; token++) {
                    int word = masks.getAtIndex(ValueLayout.JAVA_INT, (long) k * words + token / 32);
                    assertEquals(expected.get(token), (word >>> (token % 32) & 1) == 1, "mask " + k + " token " + token);
                }
            }
        }
    }

    /**
     * A grammar that cannot say what it allows fails its own row as the step's masks are written: that sampler records
     * why, its row names no mask, and the next grammar's row still gets its mask, the first.
     */
    @Test
    void aGrammarThatCannotGoOnFailsItsRowAndNamesNoMask() {
        BitSet some = new BitSet();
        some.set(3);
        Sampler[] samplers = {
                new Sampler(SamplingParams.greedy(8).withGrammar(new ScriptedGrammar(accepted -> {
                    throw new IllegalStateException("no token can follow here");
                })), VOCAB),
                new Sampler(SamplingParams.greedy(8).withGrammar(new ScriptedGrammar(accepted -> some)), VOCAB)};
        ForwardBatch batch = ForwardBatch.of(chunk(30, 1, 1), chunk(7, 1, 1));
        StepLayout layout = StepLayout.of(batch, VOCAB, BLOCK, MAX_STRIDE);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(4L * StepLayout.capacityInts(layout.rows(), layout.outputs(), MAX_STRIDE));
            MemorySegment masks = arena.allocate(4L * StepLayout.maskInts(VOCAB) * layout.outputs());
            layout.writeSampling(samplers, 2, m);
            assertEquals(1, layout.writeMasks(samplers, 2, VOCAB, m, masks));
            assertEquals("no token can follow here", samplers[0].failure());
            assertEquals(-1, read(m, layout.sampling() + 6), "the failed row names no mask");
            assertEquals(0, read(m, layout.sampling() + StepLayout.SAMPLE_PARAMS + 6), "the other row names the first");
            assertEquals(null, samplers[1].failure());
        }
    }

    private static int read(MemorySegment m, int index) {
        return m.getAtIndex(ValueLayout.JAVA_INT, index);
    }
}
