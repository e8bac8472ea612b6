package dev.ember.backend.cuda;

import dev.ember.model.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Prefill (flash) and decode (split-K) attention against a float64 reference, over a paged cache whose
 * blocks are handed out in random order (and whose unwritten slots hold NaN), laid out as PagedKv.offset says, with
 * grouped-query heads, several head sizes, chunks that start after cached context, and a sliding window.
 */
class AttentionKernelsTest {
    private static final int BLOCK_SIZE = 16;
    private static final int NUM_BLOCKS = 160;
    private final Random random = new Random();


    /** A random paged cache and one block table per sequence, each covering {@code lengths[c]} tokens. */
    private final class Cache {
        final AttentionShape shape;
        final DType type;
        final float[] keys, values;
        final int[][] tables;
        final int stride;

        Cache(DType type, AttentionShape shape, int[] lengths) {
            this.type = type;
            this.shape = shape;
            int needed = 0;
            for (int length : lengths) {
                needed += (length + shape.blockSize() - 1) / shape.blockSize();
            }
            // NUM_BLOCKS blocks' worth of tokens at the default block size, more where small blocks need more.
            int pool = Math.max(NUM_BLOCKS * BLOCK_SIZE / shape.blockSize(), needed + 8);
            int elements = pool * shape.blockSize() * shape.kvHeads() * shape.headDim();
            keys = Gpu.random(random, type, elements, 1.5);
            values = Gpu.random(random, type, elements, 1.0);
            List<Integer> free = new ArrayList<>();
            for (int b = 0; b < pool; b++) {
                free.add(b);
            }
            Collections.shuffle(free, random);
            tables = new int[lengths.length][];
            int widest = 0, next = 0;
            for (int c = 0; c < lengths.length; c++) {
                int blocks = (lengths[c] + shape.blockSize() - 1) / shape.blockSize();
                tables[c] = new int[blocks];
                for (int i = 0; i < blocks; i++) {
                    tables[c][i] = free.get(next++);
                }
                widest = Math.max(widest, blocks);
            }
            stride = widest;
            // Slots no sequence has written (past each one's length in its last block, and blocks of none) hold NaN, so
            // that a kernel that reads them (rather than zero-filling or not copying them) fails.
            int bs = shape.blockSize();
            boolean[] written = new boolean[pool * bs];
            for (int c = 0; c < lengths.length; c++) {
                for (int p = 0; p < lengths[c]; p++) {
                    written[tables[c][p / bs] * bs + p % bs] = true;
                }
            }
            for (int slot = 0; slot < written.length; slot++) {
                for (int h = 0; h < shape.kvHeads() && !written[slot]; h++) {
                    for (int d = 0; d < shape.headDim(); d++) {
                        int at = (int) PagedKv.offset(slot, bs, shape.kvHeads(), h, shape.headDim(), type.bytes(), d);
                        keys[at] = Float.NaN;
                        values[at] = Float.NaN;
                    }
                }
            }
        }

        int[] flatTables() {
            int[] flat = new int[tables.length * stride];
            for (int c = 0; c < tables.length; c++) {
                System.arraycopy(tables[c], 0, flat, c * stride, tables[c].length);
            }
            return flat;
        }

        int at(int chunk, int position, int kvHead, int d) {
            int bs = shape.blockSize();
            int slot = tables[chunk][position / bs] * bs + position % bs;
            return (int) PagedKv.offset(slot, bs, shape.kvHeads(), kvHead, shape.headDim(), type.bytes(), d);
        }

        /** Softmax attention of one query head at {@code position} over the chunk's cached keys, into ref. */
        void reference(float[] q, int qOffset, int chunk, int position, int head, double[] ref, int outOffset) {
            int hd = shape.headDim(), kvHead = head / shape.group();
            int first = shape.window() > 0 ? Math.max(0, position - shape.window() + 1) : 0;
            double[] scores = new double[position - first + 1];
            double max = Double.NEGATIVE_INFINITY;
            for (int p = first; p <= position; p++) {
                double s = 0;
                for (int d = 0; d < hd; d++) {
                    s += (double) q[qOffset + d] * keys[at(chunk, p, kvHead, d)];
                }
                scores[p - first] = s / Math.sqrt(hd);
                max = Math.max(max, scores[p - first]);
            }
            double sum = 0;
            for (int i = 0; i < scores.length; i++) {
                scores[i] = Math.exp(scores[i] - max);
                sum += scores[i];
            }
            for (int d = 0; d < hd; d++) {
                double o = 0;
                for (int p = first; p <= position; p++) {
                    o += scores[p - first] * values[at(chunk, p, kvHead, d)];
                }
                ref[outOffset + d] = o / sum;
            }
        }
    }

    /**
     * The prefill kernels, every storage type. Where the GPU has bulk copies (sm_90 and later) every case runs with
     * prefill_attention_bulk on and off: on, it takes bf16 and fp16 at hd 64 and 128 with blocks of a multiple of 8
     * tokens (the others fall back to prefill_attention_mma or the fp32 kernel).
     */
    @ParameterizedTest
    @EnumSource(DType.class)
    void prefillMatchesSoftmaxAttention(DType type) {
        Gpu.context();
        // head size, query heads, KV heads, window
        // 16-bit types with head sizes that are multiples of 16 up to 128 run on the tensor cores; the rest
        // (fp32, hd=40, hd=256) on the fp32 kernel.
        int[][] shapes = {{64, 8, 2, 0}, {128, 4, 4, 0}, {128, 6, 2, 20}, {48, 4, 2, 0}, {40, 4, 2, 7}, {256, 4, 1, 0}};
        for (boolean bulk : Gpu.kernels().bulkPrefill() ? new boolean[] {true, false} : new boolean[] {false}) {
            for (int[] s : shapes) {
                checkPrefill(type, new AttentionShape(s[1], s[2], s[0], BLOCK_SIZE, s[3]), bulk);
            }
            // A cache block size that is not a power of two (the kernels' division path; prefill_attention_mma's).
            checkPrefill(type, new AttentionShape(4, 2, 64, 12, 0), bulk);
        }
    }

    /**
     * prefill_attention_bulk at every group from 1 to 17 (blocks of 4 heads for multiples of 4, of 2 for other even
     * groups, of one head for odd ones: 32, 64 and 128 query positions a block of 8 warps), hd 128 and 64, windows
     * (starting mid-block and off a multiple of 8), and the cache block sizes decode_attention_bulk is tested at: 8, 32,
     * 64 and 80 (runs longer than a tile) run in it, 1 and 12 (not a multiple of 8) fall back to prefill_attention_mma;
     * every group also with blocks of 4 warps (prefill_attention_bulk_w4), the block sizes in turn. The chunks of
     * checkPrefill include chunks after cached context and ones spanning several query tiles.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F16"})
    void bulkPrefillTakesAnyGroupWindowAndBlockSize(DType type) {
        EmberKernels kernels = Gpu.kernels();
        assumeTrue(kernels.bulkPrefill(), "prefill_attention_bulk runs on sm_90 and later (and not under EMBER_PREFILL_BULK=0)");
        for (int group = 1; group <= 17; group++) {
            int kvHeads = group == 4 ? 8 : group <= 8 ? 2 : 1;  // 4: the 8B shape's 32 heads over 8
            AttentionShape shape = new AttentionShape(group * kvHeads, kvHeads, group % 5 == 3 ? 64 : 128, BLOCK_SIZE,
                    group % 3 == 0 ? 45 : 0);
            assertTrue(kernels.prefillKernelName(type, shape).startsWith("prefill_attention_bulk"), describe(shape));
            checkPrefill(type, shape, true, 8);
            checkPrefill(type, shape, true, 4);
        }
        // head size, query heads, KV heads, window
        int[][] shapes = {{128, 8, 2, 0}, {64, 4, 4, 37}, {128, 6, 2, 20}};
        int run = 0;
        for (int blockSize : new int[] {1, 8, 12, 32, 64, 80}) {
            for (int[] s : shapes) {
                AttentionShape shape = new AttentionShape(s[1], s[2], s[0], blockSize, s[3]);
                String kernel = kernels.prefillKernelName(type, shape);
                assertTrue(blockSize % 8 == 0 ? kernel.startsWith("prefill_attention_bulk") : kernel.equals("prefill_attention_mma"),
                        kernel + " for " + describe(shape));
                checkPrefill(type, shape, true, run++ % 2 == 0 ? 8 : 4);
            }
        }
    }

    /** One prefill case with prefill_attention_bulk on or off, the kernels' settings restored after. */
    private void checkPrefill(DType type, AttentionShape shape, boolean bulk) {
        checkPrefill(type, shape, bulk, Gpu.kernels().prefillBulkWarps());
    }

    /** One prefill case with prefill_attention_bulk on or off and of `warps` warps a block, the settings restored after. */
    private void checkPrefill(DType type, AttentionShape shape, boolean bulk, int warps) {
        EmberKernels kernels = Gpu.kernels();
        boolean wasBulk = kernels.bulkPrefill();
        int wasWarps = kernels.prefillBulkWarps();
        kernels.useBulkPrefill(bulk);
        kernels.prefillBulkWarps(warps);
        try {
            checkPrefill(type, shape);
        } finally {
            kernels.useBulkPrefill(wasBulk);
            kernels.prefillBulkWarps(wasWarps);
        }
    }

    private void checkPrefill(DType type, AttentionShape shape) {
        // Chunks: a fresh prompt, a chunk after 37 cached tokens, a one-token chunk, one spanning two query tiles, and
        // one spanning four (whose later tiles lie wholly in the past of some warps' rows: the unmasked path).
        int[] start = {0, 37, 5, 11, 130};
        int[] length = {45, 70, 1, 100, 200};
        int chunks = start.length, rows = 0;
        int[] rowStart = new int[chunks];
        int[] ends = new int[chunks];
        for (int c = 0; c < chunks; c++) {
            rowStart[c] = rows;
            rows += length[c];
            ends[c] = start[c] + length[c];
        }
        Cache cache = new Cache(type, shape, ends);
        int qd = shape.heads() * shape.headDim(), hd = shape.headDim();
        float[] q = Gpu.random(random, type, rows * qd, 1.0);
        double[] ref = new double[rows * qd];
        for (int c = 0; c < chunks; c++) {
            for (int i = 0; i < length[c]; i++) {
                int row = rowStart[c] + i;
                for (int h = 0; h < shape.heads(); h++) {
                    cache.reference(q, row * qd + h * hd, c, start[c] + i, h, ref, row * qd + h * hd);
                }
            }
        }
        int[] order = {3, 0, 4, 2, 1};  // the kernel takes chunks in any order
        try (DeviceBuffer dq = Gpu.upload(type, q); DeviceBuffer k = Gpu.upload(type, cache.keys);
             DeviceBuffer v = Gpu.upload(type, cache.values); DeviceBuffer tables = Gpu.uploadInts(cache.flatTables());
             DeviceBuffer list = Gpu.uploadInts(order); DeviceBuffer dRowStart = Gpu.uploadInts(rowStart);
             DeviceBuffer dLength = Gpu.uploadInts(length); DeviceBuffer dStart = Gpu.uploadInts(start);
             DeviceBuffer out = Gpu.poisoned(type, (long) rows * qd)) {
            Gpu.kernels().prefillAttention(Gpu.stream(), type, dq.address(), new PagedKv(k.address(), v.address(), tables.address(), cache.stride),
                    list.address(), dRowStart.address(), dLength.address(), dStart.address(), out.address(), chunks,
                    Arrays.stream(length).max().orElseThrow(), shape);
            Gpu.stream().synchronize();
            String kernel = Gpu.kernels().prefillKernelName(type, shape);
            if (kernel.startsWith("prefill_attention_bulk")) {
                kernel += " " + Gpu.kernels().prefillBulkWarps() + " warps";
            }
            Gpu.assertClose(kernel + " " + type + " " + describe(shape),
                    Gpu.download(out, type, rows * qd), ref,
                    Gpu.tolerance(type));
        }
    }

    /**
     * The decode kernels and their reduction, every storage type, shapes and splits (some empty). In bf16 and fp16,
     * groups of more than two heads at head dimensions that are multiples of 16 up to 128 run on the tensor cores
     * (decode_attention_mma): groups of 4 (one under a sliding window) and 7 in a 16-row block, and of 17 (hd 96) in two batches of 16. The rest
     * run in decode_attention_keys (EmberKernels.decodeKernel): groups of 1 and 2, two heads a block and two warps a
     * head, at hd 128, 36 and 256; wider groups in fp32 and at hd 36 and 256, four heads a block. Where the GPU has bulk
     * copies (sm_90 and later) every case also runs with decode_attention_bulk on, which takes bf16 and fp16 at hd 64
     * and 128 and any group (1, 2, 3, 4, 7, 17 here; windows that start mid-block), its stages cycling through 2 to 4.
     */
    @ParameterizedTest
    @EnumSource(DType.class)
    void decodeMatchesSoftmaxAttentionForAnySplit(DType type) {
        Gpu.context();
        // hd=36 rows of bf16/fp16 are not a multiple of 16 bytes: the kernel's element-wise staging path.
        int[][] shapes = {{128, 32, 8, 0}, {128, 16, 8, 0}, {64, 14, 2, 0}, {128, 8, 8, 100}, {256, 8, 2, 0},
                          {256, 4, 2, 0}, {36, 4, 2, 0}, {96, 34, 2, 0}, {36, 16, 2, 0}, {128, 16, 4, 50},
                          {128, 34, 2, 0}, {64, 6, 2, 30}};
        int run = 0;
        for (int[] s : shapes) {
            for (int splits : new int[] {1, 4, 13, EmberKernels.MAX_DECODE_SPLITS}) {
                for (boolean bulk : Gpu.kernels().bulkDecode() ? new boolean[] {true, false} : new boolean[] {false}) {
                    checkDecode(type, new AttentionShape(s[1], s[2], s[0], BLOCK_SIZE, s[3]), splits, bulk,
                            EmberKernels.DECODE_BULK_MIN_STAGES + run++ % 3);
                }
            }
        }
    }

    /**
     * decode_attention_bulk at the cache block sizes the engine allows besides 16 (KvCacheSpec takes any): 1 (a copy
     * per token, 64 a tile), 8, 12 (tiles that start mid-block, and a swizzle worked out per row, 12 not being a multiple
     * of 8), 32 (two 8 KiB runs a tile), 64 and 80 (runs longer than a tile, split across tiles); contexts of 1, 38 and 700
     * tokens, no multiple of most of them; windows starting mid-block; 1 to 32 splits of whole blocks; 2 to 4 stages.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F16"})
    void bulkDecodeTakesAnyBlockSize(DType type) {
        EmberKernels kernels = Gpu.kernels();
        assumeTrue(kernels.bulkDecode(), "decode_attention_bulk runs on sm_90 and later (and not under EMBER_DECODE_BULK=0)");
        // head size, query heads, KV heads, window
        int[][] shapes = {{128, 32, 8, 0}, {128, 16, 8, 45}, {64, 8, 8, 0}, {128, 20, 4, 0}};
        int run = 0;
        for (int blockSize : new int[] {1, 8, 12, 32, 64, 80}) {
            for (int[] s : shapes) {
                AttentionShape shape = new AttentionShape(s[1], s[2], s[0], blockSize, s[3]);
                assertEquals(EmberKernels.decodeBulkEntry(shape.headDim()), kernels.decodeKernelName(type, shape), describe(shape));
                for (int splits : new int[] {1, 3, EmberKernels.MAX_DECODE_SPLITS}) {
                    checkDecode(type, shape, splits, true, EmberKernels.DECODE_BULK_MIN_STAGES + run++ % 3);
                }
            }
        }
    }

    /** One decode case with decode_attention_bulk on or off (and at these stages), the kernels' settings restored after. */
    private void checkDecode(DType type, AttentionShape shape, int splits, boolean bulk, int stages) {
        EmberKernels kernels = Gpu.kernels();
        boolean wasBulk = kernels.bulkDecode();
        int wasStages = kernels.decodeBulkStages();
        kernels.useBulkDecode(bulk);
        kernels.decodeBulkStages(stages);
        try {
            checkDecode(type, shape, splits, kernels.decodeKernelName(type, shape)
                    + (kernels.decodeKernelName(type, shape).startsWith("decode_attention_bulk") ? " stages=" + stages : ""));
        } finally {
            kernels.useBulkDecode(wasBulk);
            kernels.decodeBulkStages(wasStages);
        }
    }

    private void checkDecode(DType type, AttentionShape shape, int splits, String kernel) {
        // Step rows: three decodes (contexts of 1, 38 and 700 tokens) and row 1, which belongs to another kernel.
        int[] positions = {0, 5, 37, 699};
        int[] rowChunk = {0, 1, 2, 3};
        int[] decodeRows = {3, 0, 2};
        int rows = positions.length;
        int[] lengths = new int[rows];
        for (int r = 0; r < rows; r++) {
            lengths[r] = positions[r] + 1;
        }
        Cache cache = new Cache(type, shape, lengths);
        int qd = shape.heads() * shape.headDim(), hd = shape.headDim();
        float[] q = Gpu.random(random, type, rows * qd, 1.0);
        double[] ref = new double[decodeRows.length * qd];
        for (int n = 0; n < decodeRows.length; n++) {
            int row = decodeRows[n];
            for (int h = 0; h < shape.heads(); h++) {
                cache.reference(q, row * qd + h * hd, rowChunk[row], positions[row], h, ref, n * qd + h * hd);
            }
        }
        int n = decodeRows.length;
        try (DeviceBuffer dq = Gpu.upload(type, q); DeviceBuffer k = Gpu.upload(type, cache.keys);
             DeviceBuffer v = Gpu.upload(type, cache.values); DeviceBuffer tables = Gpu.uploadInts(cache.flatTables());
             DeviceBuffer list = Gpu.uploadInts(decodeRows); DeviceBuffer chunkOf = Gpu.uploadInts(rowChunk);
             DeviceBuffer pos = Gpu.uploadInts(positions);
             DeviceBuffer partial = DeviceBuffer.allocate(4 * EmberKernels.decodePartialFloats(n, shape, splits));
             DeviceBuffer maxSum = DeviceBuffer.allocate(4 * EmberKernels.decodeMaxSumFloats(n, shape, splits));
             DeviceBuffer out = Gpu.poisoned(type, (long) rows * qd)) {
            Gpu.kernels().decodeAttention(Gpu.stream(), type, dq.address(), new PagedKv(k.address(), v.address(), tables.address(), cache.stride),
                    list.address(), chunkOf.address(), pos.address(), partial.address(), maxSum.address(), out.address(), n,
                    splits, shape);
            Gpu.stream().synchronize();
            float[] all = Gpu.download(out, type, rows * qd);
            float[] decoded = new float[n * qd];
            for (int i = 0; i < n; i++) {
                System.arraycopy(all, decodeRows[i] * qd, decoded, i * qd, qd);
            }
            for (int e = 0; e < qd; e++) {
                assertTrue(Float.isNaN(all[qd + e]), "row 1 is not a decode row, yet was written");
            }
            Gpu.assertClose(kernel + " " + type + " " + describe(shape) + " splits=" + splits, decoded, ref,
                    Gpu.tolerance(type));
        }
    }

    private static String describe(AttentionShape s) {
        return "hd=" + s.headDim() + " " + s.heads() + "/" + s.kvHeads() + " heads" + (s.window() > 0 ? " window=" + s.window() : "")
                + (s.blockSize() != BLOCK_SIZE ? " block size " + s.blockSize() : "");
    }
}
