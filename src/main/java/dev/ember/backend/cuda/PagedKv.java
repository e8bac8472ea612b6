package dev.ember.backend.cuda;

/**
 * Where one layer's paged KV cache and the step's block tables are on the device. Keys and values are each
 * {@code [numBlocks][blockSize][kvHeads][headDim]}; {@code blockTables} holds one row of {@code tableStride}
 * block ids per chunk of the step.
 */
public record PagedKv(long keys, long values, long blockTables, int tableStride) {
}
