package dev.ember.backend.cuda;

import dev.ember.EmberException;
import dev.ember.backend.ForwardBatch;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.sampling.Sampler;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.BitSet;
import java.util.List;

/**
 * Where each per-step array lies in the step's block of device ints (uploaded with one copy): offsets in
 * ints. The layout depends only on the step's counts, so two steps with the same counts put every array at
 * the same device address, which is what lets a captured graph be replayed for the next step of those counts. The
 * writing of a batch's metadata into that block lives here too, beside the offsets it must agree with.
 *
 * @param rows      tokens in the step
 * @param chunks    sequences in the step (one chunk each)
 * @param outputs   positions whose logits the step computes (and samples): one per chunk, more for a verification
 * @param prefill   chunks attended by the prefill kernel: those of several tokens but for verifications
 * @param decode    rows attended by the decode kernel, each at its own position: every row of the chunks whose every
 *                  row is an output ({@link #attendedRowByRow}: single-token decodes and verifications)
 * @param stride    block-table row length
 * @param evenLength the tokens of every chunk when all have as many, else 0
 */
record StepLayout(int rows, int chunks, int outputs, int prefill, int decode, int stride, int evenLength) {
    /** The longest chunk of outputs only (a verification of gamma + 1 tokens) that the decode kernel attends. */
    static final int MAX_ROW_BY_ROW = 16;

    /**
     * Mode, top-k, temperature, top-p and uniform draw of each output (floats as their bits), how many top logprobs
     * token_logprobs computes for it (-1: none on the device), and which of the step's token masks mask_logits applies
     * to its row (-1: none). SAMPLE_PARAMS in sampling.cu is the same number.
     */
    static final int SAMPLE_PARAMS = 7;

    /** The carry's count and source address (two ints) before its pairs: {@link #carry()}. */
    static final int CARRY_HEADER = 3;

    /**
     * Checks the batch (each table holds its chunk's slots, each token is in the vocabulary) and sizes its metadata; the
     * block-table width is rounded up to a power of two for graph reuse, up to {@code maxStride}.
     */
    static StepLayout of(ForwardBatch batch, int vocabSize, int blockSize, int maxStride) {
        int rows = 0, prefill = 0, decode = 0, widest = 1, evenLength = batch.chunks().getFirst().tokens().length;
        for (ForwardBatch.Chunk chunk : batch.chunks()) {
            BlockTable table = chunk.blockTable();
            int end = chunk.startPosition() + chunk.tokens().length;
            if (table.capacity() < end) {
                throw new IllegalArgumentException("block table holds " + table.capacity() + " slots, chunk needs " + end);
            }
            for (int token : chunk.tokens()) {
                if (token < 0 || token >= vocabSize) {
                    throw new EmberException("token id " + token + " is outside the vocabulary of " + vocabSize);
                }
            }
            rows += chunk.tokens().length;
            evenLength = chunk.tokens().length == evenLength ? evenLength : 0;
            if (attendedRowByRow(chunk)) {
                decode += chunk.tokens().length;
            } else {
                prefill++;
            }
            widest = Math.max(widest, (end + blockSize - 1) / blockSize);
        }
        return new StepLayout(rows, batch.size(), batch.outputRows(), prefill, decode,
                Math.max(Math.min(tableWidth(widest), maxStride), widest), evenLength);
    }

    /**
     * Whether the decode kernel attends {@code chunk}, each row on its own at its own position: a single token, or a
     * verification (every row an output, a few of them). Its rows see the keys this step writes for the rows before
     * them, as a prefill's do, since the keys and values of the whole step are written before attention; and a
     * verification then costs what a decode of as many sequences costs, where the prefill kernel spent a 64-row tile
     * on a handful of rows. A catch-up (several tokens, one output) stays with the prefill kernel.
     */
    static boolean attendedRowByRow(ForwardBatch.Chunk chunk) {
        return attendedRowByRow(chunk.tokens().length, chunk.outputs());
    }

    /**
     * The same for a chunk of {@code length} tokens and {@code outputs} outputs. Long chunks of outputs only (a text
     * scored for its perplexity) stay with the prefill kernel, which reads each tile of keys once for 64 rows.
     */
    static boolean attendedRowByRow(int length, int outputs) {
        return length == 1 || (outputs == length && length <= MAX_ROW_BY_ROW);
    }

    /**
     * The tokens of each chunk when every chunk has as many and computes the same number of outputs (1, or all of its
     * tokens): a step a captured graph can replay, padded with chunks of that shape. 0 for any other step.
     */
    int uniformLength() {
        boolean uniform = attendedRowByRow(evenLength, outputs / chunks) ? outputs == rows && decode == rows
                : prefill == chunks && outputs == chunks;
        return evenLength > 0 && uniform ? evenLength : 0;
    }

    /**
     * This uniform layout ({@link #uniformLength}: decodes, or verifications of the same length) grown to {@code chunks}
     * chunks of its shape, the extra ones padding.
     */
    StepLayout padded(int chunks) {
        int length = uniformLength();
        if (length == 0 || chunks < this.chunks) {
            throw new IllegalArgumentException("only a uniform step pads, and only up: " + this + " to " + chunks);
        }
        int outputsEach = outputs / this.chunks;
        return attendedRowByRow(length, outputsEach)
                ? new StepLayout(chunks * length, chunks, chunks * outputsEach, 0, chunks * length, stride, length)
                : new StepLayout(chunks * length, chunks, chunks * outputsEach, chunks, 0, stride, length);
    }

    /**
     * Whether every row of this step is an output that the decode kernel attends on its own: decodes and verifications,
     * of any lengths side by side. Its kernels then see rows only, so the graph of as many single-token decodes replays it
     * ({@link #asDecodeOf}).
     */
    boolean rowsOnly() {
        return prefill == 0 && decode == rows && outputs == rows;
    }

    /**
     * This {@link #rowsOnly} step as a decode step of {@code rows} rows ({@link #decode}): its chunks keep their rows;
     * past them come single-token padding chunks up to {@code rows} rows, then chunks of no rows up to {@code rows}
     * chunks ({@link #writeMetadata}).
     */
    StepLayout asDecodeOf(int rows) {
        if (!rowsOnly() || rows < this.rows) {
            throw new IllegalArgumentException("only a step of rows alone replays a decode graph, and only as large: " + this
                    + " as " + rows + " rows");
        }
        return decode(rows, stride);
    }

    /** A step of {@code chunks} single-token decodes, one output each. */
    static StepLayout decode(int chunks, int stride) {
        return new StepLayout(chunks, chunks, chunks, 0, chunks, stride, 1);
    }

    int tokens() {
        return 0;
    }

    int positions() {
        return rows;
    }

    /** Cache slot of each row: block id * block size + offset in the block. */
    int slots() {
        return 2 * rows;
    }

    /** The chunk each row belongs to. */
    int rowChunk() {
        return 3 * rows;
    }

    /** The row of each output (each chunk's last token; a verification's last several), whose logits the step returns. */
    int lastRows() {
        return 4 * rows;
    }

    int chunkRowStart() {
        return lastRows() + outputs;
    }

    int chunkLength() {
        return chunkRowStart() + chunks;
    }

    int chunkStartPosition() {
        return chunkLength() + chunks;
    }

    /** Indices of the prefill chunks. */
    int prefillChunks() {
        return chunkStartPosition() + chunks;
    }

    /** Rows of the decode chunks. */
    int decodeRows() {
        return prefillChunks() + prefill;
    }

    /** Per output, SAMPLE_PARAMS ints saying how to pick its next token and its logprobs (sample_tokens and token_logprobs in sampling.cu). */
    int sampling() {
        return decodeRows() + decode;
    }

    int blockTables() {
        return sampling() + SAMPLE_PARAMS * outputs;
    }

    /**
     * What carry_tokens (embedding.cu) reads first in the step: how many chunks take their last token from a step
     * that samples it on the device, and that step's sampled-token buffer (a device address, low and high halves).
     * In the metadata, so that a captured graph carries whatever its replay is given.
     */
    int carry() {
        return blockTables() + chunks * stride;
    }

    /**
     * After the carry's header, a pair (row, output of the source step) for each carried token: at most one an output,
     * since a chunk's carried tokens lie among its outputs ({@link ForwardBatch.Chunk#carried}).
     */
    int carried() {
        return carry() + CARRY_HEADER;
    }

    /** The arrays above, which a captured decode graph reads. */
    int totalInts() {
        return carried() + 2 * outputs;
    }

    /**
     * Writes the step's metadata into {@code m}; for each carried token, a pair (its row, the source step's output),
     * their count and {@code carrySource}, the device address of the sampled tokens they are taken from (0 where none
     * is carried). Padding rows (past the batch's chunks) write to {@code scratchBlock}. Returns the number of carried
     * tokens.
     */
    int writeMetadata(ForwardBatch batch, KvCacheSpec kvSpec, int scratchBlock, long carrySource, MemorySegment m) {
        int bs = kvSpec.blockSize();
        int row = 0, output = 0, prefills = 0, decodes = 0, carried = 0;
        List<ForwardBatch.Chunk> batchChunks = batch.chunks();
        for (int c = 0; c < batchChunks.size(); c++) {
            ForwardBatch.Chunk chunk = batchChunks.get(c);
            BlockTable table = chunk.blockTable();
            int length = chunk.tokens().length;
            setInt(m, chunkRowStart() + c, row);
            setInt(m, chunkLength() + c, length);
            setInt(m, chunkStartPosition() + c, chunk.startPosition());
            for (int i = 0; i < chunk.carried(); i++) {  // the chunk's last tokens
                setInt(m, carried() + 2 * carried, row + length - chunk.carried() + i);
                setInt(m, carried() + 2 * carried + 1, chunk.carriedFrom() + i);
                carried++;
            }
            if (attendedRowByRow(chunk)) {
                for (int i = 0; i < length; i++) {
                    setInt(m, decodeRows() + decodes++, row + i);
                }
            } else {
                setInt(m, prefillChunks() + prefills++, c);
            }
            int blocks = (chunk.startPosition() + length + bs - 1) / bs;
            for (int b = 0; b < blocks; b++) {
                int id = table.block(b);
                // Kept every step: the kernels write keys and values wherever these ids point, so this keeps each row's
                // cache slot inside the cache whatever the table or the position.
                if (id < 0 || id >= kvSpec.numBlocks()) {
                    throw new IllegalArgumentException("block id " + id + " is outside the cache's " + kvSpec.numBlocks() + " blocks");
                }
                setInt(m, blockTables() + c * stride + b, id);
            }
            for (int i = 0; i < length; i++, row++) {
                int pos = chunk.startPosition() + i;
                setInt(m, tokens() + row, chunk.tokens()[i]);
                setInt(m, positions() + row, pos);
                setInt(m, slots() + row, table.block(pos / bs) * bs + pos % bs);
                setInt(m, rowChunk() + row, c);
            }
            for (int k = chunk.outputs(); k > 0; k--) {
                setInt(m, lastRows() + output++, row - k);
            }
        }
        // Padding chunks up to the captured batch size, shaped as the step's own: tokens 0 at positions 0, 1 .. of the
        // scratch block, read by nobody. Where the step's own chunks hold more rows than it has chunks (verifications of
        // several lengths replaying a decode graph), the chunks past the captured rows hold none.
        int uniform = chunks > batchChunks.size() ? uniformLength() : 0;
        for (int c = batchChunks.size(); c < chunks; c++) {
            int length = Math.min(uniform, rows - row);
            int outputsEach = outputs == rows ? length : 1;
            setInt(m, chunkRowStart() + c, row);
            setInt(m, chunkLength() + c, length);
            setInt(m, chunkStartPosition() + c, 0);
            if (attendedRowByRow(length, outputsEach)) {
                for (int i = 0; i < length; i++) {
                    setInt(m, decodeRows() + decodes++, row + i);
                }
            } else {
                setInt(m, prefillChunks() + prefills++, c);
            }
            setInt(m, blockTables() + c * stride, scratchBlock);
            for (int i = 0; i < length; i++, row++) {
                setInt(m, tokens() + row, 0);
                setInt(m, positions() + row, i);
                setInt(m, slots() + row, scratchBlock * bs + i);
                setInt(m, rowChunk() + row, c);
            }
            for (int k = outputsEach; k > 0; k--) {
                setInt(m, lastRows() + output++, row - k);
            }
        }
        setInt(m, carry(), carried);
        setInt(m, carry() + 1, (int) carrySource);
        setInt(m, carry() + 2, (int) (carrySource >>> 32));
        return carried;
    }

    private static void setInt(MemorySegment m, int index, int value) {
        m.setAtIndex(ValueLayout.JAVA_INT, index, value);
    }

    /**
     * Each output's sample_tokens and token_logprobs parameters; draws the uniform number of every row sampled on the GPU.
     * Returns whether some row's logprobs are computed on the GPU.
     */
    boolean writeSampling(Sampler[] samplers, int batchOutputs, MemorySegment m) {
        boolean logprobs = false;
        for (int c = 0; c < outputs; c++) {
            Sampler s = c < batchOutputs ? samplers[c] : null;  // padding rows draw nothing
            int at = sampling() + SAMPLE_PARAMS * c;
            int mode = s == null || CudaSubmittedStep.samplesOnHost(s) ? 0 : s.params().isGreedy() ? 1 : 2;
            float uniform = mode == 2 ? Math.min((float) s.nextUniform(), Math.nextDown(1f)) : 0f;
            setInt(m, at, mode);
            setInt(m, at + 1, mode == 2 ? s.params().topK() : 0);
            setInt(m, at + 2, Float.floatToRawIntBits(mode == 2 ? s.params().temperature() : 1f));
            setInt(m, at + 3, Float.floatToRawIntBits(mode == 2 ? s.params().topP() : 1f));
            setInt(m, at + 4, Float.floatToRawIntBits(uniform));
            boolean asks = CudaSubmittedStep.logprobsOnDevice(s);
            setInt(m, at + 5, asks ? s.topLogprobs() : -1);
            setInt(m, at + 6, -1);
            logprobs |= asks;
        }
        return logprobs;
    }

    /**
     * For each output whose sampler's grammar is applied on the device ({@link CudaSubmittedStep#masksOnDevice}), the
     * tokens it allows as a mask of {@link #maskInts} ints in {@code masks} (a bit a token, packed one mask after
     * another), and the mask's index in the output's sampling parameters (after {@link #writeSampling}). A grammar that
     * cannot say what it allows (it throws) fails its sampler ({@link Sampler#fail}: the request ends alone) and its row
     * names no mask. Returns how many masks were written.
     */
    int writeMasks(Sampler[] samplers, int batchOutputs, int vocab, MemorySegment m, MemorySegment masks) {
        int written = 0;
        long bytes = 4L * maskInts(vocab);
        for (int c = 0; c < Math.min(outputs, batchOutputs); c++) {
            if (!CudaSubmittedStep.masksOnDevice(samplers[c])) {
                continue;
            }
            BitSet allowed;
            try {
                allowed = samplers[c].allowedTokens();
            } catch (RuntimeException e) {  // its grammar cannot go on: its request ends alone, its row drawn unmasked
                samplers[c].fail(e.getMessage());
                continue;
            }
            MemorySegment mask = masks.asSlice(written * bytes, bytes);
            mask.fill((byte) 0);
            long[] words = allowed.toLongArray();
            for (int w = 0; w < words.length; w++) {
                mask.set(ValueLayout.JAVA_LONG_UNALIGNED, 8L * w, words[w]);
            }
            setInt(m, sampling() + SAMPLE_PARAMS * c + 6, written++);
        }
        return written;
    }

    /** Ints of one token mask: a bit a token, in whole 64-bit words (so that a BitSet's words copy straight in). */
    static int maskInts(int vocab) {
        return 2 * ((vocab + 63) / 64);
    }

    /**
     * Ints a step of at most these counts can need, carried pairs included ({@code chunks}: at least the outputs too):
     * four arrays a row, the decode rows (at most one a row), and per chunk its three, its prefill index, its output
     * row, its sampling parameters, its carried pair and its block table.
     */
    static long capacityInts(int rows, int chunks, int maxStride) {
        return 5L * rows + (7L + SAMPLE_PARAMS) * chunks + (long) chunks * maxStride + CARRY_HEADER;
    }

    /** The power of two at or above {@code blocks}: the block-table width of a sequence of that many blocks. */
    static int tableWidth(int blocks) {
        return blocks <= 1 ? 1 : Integer.highestOneBit(blocks - 1) << 1;
    }
}
