package dev.ember.backend.cuda;

/**
 * Where each per-step array lies in the step's block of device ints (uploaded with one copy): offsets in
 * ints. The layout depends only on the step's counts, so two steps with the same counts put every array at
 * the same device address, which is what lets a captured decode graph be replayed for the next step.
 *
 * @param rows      tokens in the step
 * @param chunks    sequences in the step (one chunk each)
 * @param prefill   chunks of more than one token, attended by the prefill kernel
 * @param decode    chunks of one token, attended by the decode kernel
 * @param stride    block-table row length
 */
record StepLayout(int rows, int chunks, int prefill, int decode, int stride) {
    /** Mode, top-k, temperature, top-p and uniform draw of each chunk (floats as their bits). */
    static final int SAMPLE_PARAMS = 5;

    /** This decode-only layout grown to {@code chunks} single-token chunks (the extra ones padding). */
    StepLayout padded(int chunks) {
        if (prefill != 0 || chunks < this.chunks) {
            throw new IllegalArgumentException("only a decode step pads, and only up: " + this + " to " + chunks);
        }
        return new StepLayout(rows + chunks - this.chunks, chunks, 0, chunks, stride);
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

    /** The row of each chunk's last token, whose logits the step returns. */
    int lastRows() {
        return 4 * rows;
    }

    int chunkRowStart() {
        return lastRows() + chunks;
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

    /** Per chunk, five ints saying how to pick its next token (SAMPLE_PARAMS; sample_tokens in sampling.cu). */
    int sampling() {
        return decodeRows() + decode;
    }

    int blockTables() {
        return sampling() + SAMPLE_PARAMS * chunks;
    }

    /** The arrays above, which a captured decode graph reads. */
    int totalInts() {
        return blockTables() + chunks * stride;
    }

    /**
     * After them, read outside any graph: a pair (row, chunk of the previous step) for each chunk whose token the
     * previous step samples on the device (carry_tokens in embedding.cu).
     */
    int carried() {
        return totalInts();
    }

    /** Ints a step of at most these counts can need, carried pairs included. */
    static long capacityInts(int rows, int chunks, int maxStride) {
        return 4L * rows + (9L + SAMPLE_PARAMS) * chunks + (long) chunks * maxStride;
    }
}
