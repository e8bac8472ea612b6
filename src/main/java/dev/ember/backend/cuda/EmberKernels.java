package dev.ember.backend.cuda;

import dev.ember.EmberException;
import dev.ember.model.DType;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Ember's own CUDA kernels (src/main/cuda), loaded from the fatbins the build puts in the jar, with one
 * typed launch method per kernel. Each method picks the kernel's variant for the storage type ({@code _f32},
 * {@code _bf16}, {@code _f16}) and head dimension, and sizes its grid; the kernel files document what each
 * computes and costs. Pointer arguments are device addresses; 0 stands for an absent optional input.
 * One per thread of launches (the argument buffer is reused); not thread-safe.
 */
public final class EmberKernels implements AutoCloseable {
    static final String RESOURCE_DIR = "/dev/ember/backend/cuda/kernels/";
    static final List<String> MODULES = List.of("embedding", "rmsnorm", "rope", "activation", "attention_prefill",
            "attention_prefill_mma", "attention_decode", "sampling", "random", "gemv", "memory", "bias", "layer_stream");
    /** Query rows per prefill block, and keys per tile for head dimensions up to 128 and up to 256. */
    private static final int PREFILL_QUERIES = 32;
    private static final int PREFILL_KEYS_SMALL = 32;
    private static final int PREFILL_KEYS_LARGE = 16;
    /** Query rows per block of the tensor-core prefill kernel, and its shared memory (MMA_ROWS, MMA_SHARED_BYTES). */
    private static final int MMA_QUERIES = 64;
    private static final int MMA_SHARED_BYTES = 2 * 2 * 64 * (128 + 8) * 2;
    /**
     * prefill_attention_bulk's geometry (attention_prefill_mma.cu, sm_90 and later): warps a block of 16 query rows
     * each, 8 by default (EMBER_PREFILL_BULK_WARPS=4 for measuring: prefill_attention_bulk_w4), and its stages of 64-key
     * tiles (in decode_attention_bulk's layout: decodeBulkSharedBytes), fewer where a block's shared memory holds fewer.
     * ptxas (CUDA 13, sm_90, bf16): 220 registers at hd 128 and 164 at hd 64, no spills, at one block of 8 warps a
     * multiprocessor (two of 4; three stages of hd 128 take 98,328 bytes).
     */
    static final int PREFILL_BULK_WARPS = 8;
    static final int PREFILL_BULK_STAGES = 3;
    private static final int CONFIGURED_PREFILL_BULK_WARPS = positiveEnvironment("EMBER_PREFILL_BULK_WARPS");
    /**
     * The decode kernel's geometry (decode_attention_keys in attention_decode.cu): keys per tile, one per lane
     * (KEYS_TILE), tiles in shared memory (DECODE_STAGES), the most query heads one block takes, and its warps.
     */
    static final int DECODE_TILE_KEYS = 32;
    private static final int DECODE_STAGES = 2;
    private static final int DECODE_HEADS_PER_BLOCK = 4;
    private static final int DECODE_WARPS = 4;
    /**
     * The tensor-core decode kernel's (decode_attention_mma): keys per tile (DMMA_KEYS, 16 a warp), query heads per
     * block (DMMA_HEADS, the rows of the mma's A operand), and its shared memory, two stages of key and value tiles of
     * rows padded by 8 elements.
     */
    private static final int DECODE_MMA_HEADS = 16;
    static final int DECODE_MMA_TILE_KEYS = 64;
    static final int DECODE_MMA_SHARED_BYTES = 2 * 2 * DECODE_MMA_TILE_KEYS * (128 + 8) * 2;
    /**
     * decode_attention_bulk's pipeline (sm_90 and later): tiles of DECODE_MMA_TILE_KEYS keys and values that bulk copies
     * fill, DECODE_BULK_STAGES deep by default (EMBER_DECODE_BULK_STAGES=2..4 for measuring), shallower where a block's
     * shared memory holds fewer.
     */
    static final int DECODE_BULK_STAGES = 3;
    static final int DECODE_BULK_MIN_STAGES = 2;
    static final int DECODE_BULK_MAX_STAGES = 4;
    private static final int CONFIGURED_BULK_STAGES = positiveEnvironment("EMBER_DECODE_BULK_STAGES");
    /**
     * Two stages where a split's blocks fill this many waves or more at the configured depth (bulkStages);
     * EMBER_DECODE_BULK_SHALLOW_WAVES=N for measuring, 0 for never.
     */
    static final int DECODE_BULK_SHALLOW_WAVES = 4;
    private static final int SHALLOW_BULK_WAVES = System.getenv("EMBER_DECODE_BULK_SHALLOW_WAVES") == null
            ? DECODE_BULK_SHALLOW_WAVES : positiveEnvironment("EMBER_DECODE_BULK_SHALLOW_WAVES");
    public static final int MAX_HEAD_DIM = 256;
    /** Threads of a block of qkv_rope's vectorised way (ROPE_THREADS in rope.cu). */
    private static final int ROPE_THREADS = 128;
    /** silu_mul's threads per block and 16-byte vectors per thread (SILU_THREADS, SILU_VECTORS in activation.cu). */
    private static final int SILU_THREADS = 256;
    private static final int SILU_VECTORS = 2;
    /** add_bias's threads per block (BIAS_THREADS in bias.cu). */
    private static final int BIAS_THREADS = 256;
    /** 16-byte words of one warp's run in read_runs (memory.cu). */
    private static final int READ_RUN_WORDS = 512;
    /** Blocks of mask_logits per row: 64 x 256 threads stride over a 150k vocabulary in about ten tokens each. */
    private static final int MASK_BLOCKS_PER_ROW = 64;
    /** The most rows of x the matrix-vector kernels take (gemv.cu). */
    public static final int GEMV_MAX_ROWS = 8;
    /** The widest query-head group accepted (the decode kernel takes groups wider than 4 in batches of 4 heads). */
    public static final int MAX_GROUP = 32;

    private final Arena arena = Arena.ofShared();
    private final List<CudaModule> modules = new ArrayList<>();
    private final Map<String, CudaFunction> functions = new HashMap<>();
    /** Per kernel, the most dynamic shared memory checked against the limits (and allowed) so far. */
    private final Map<String, Integer> sharedMemoryChecked = new HashMap<>();
    private final KernelArgs args = new KernelArgs(arena);
    private final Map<String, Integer> blocksPerMultiprocessor = new HashMap<>();
    private final CudaDevice device;
    private boolean bulkDecode;
    private boolean bulkPrefill;
    private int prefillBulkWarps;
    private int bulkStages;

    private EmberKernels(CudaDevice device) {
        this.device = device;
        useDependentLaunch(!"0".equals(System.getenv("EMBER_PDL")));
        useBulkDecode(!"0".equals(System.getenv("EMBER_DECODE_BULK")));
        useBulkPrefill(!"0".equals(System.getenv("EMBER_PREFILL_BULK")));
        prefillBulkWarps(CONFIGURED_PREFILL_BULK_WARPS == 4 ? 4 : PREFILL_BULK_WARPS);
        decodeBulkStages(CONFIGURED_BULK_STAGES > 0 ? CONFIGURED_BULK_STAGES : DECODE_BULK_STAGES);
    }

    /**
     * Launches Ember's kernels with programmatic dependent launch (KernelArgs#dependentLaunch) from now on, where the
     * GPU has it (compute capability 9.0 and later), or without. On unless EMBER_PDL=0: on the H200 it took batch-1
     * decode of the 8B shape from 208.4 to 212.2 and from 211.5 to 217.6 tok/s in two runs (2026-12-03), batch 64 unchanged.
     */
    public void useDependentLaunch(boolean on) {
        args.dependentLaunch(on && device.computeMajor() >= 9);
    }

    /** Whether kernels launch with programmatic dependent launch now. */
    boolean dependentLaunch() {
        return args.dependentLaunch();
    }

    /** The GPU these kernels were loaded on. */
    CudaDevice device() {
        return device;
    }

    /**
     * Runs decode attention in decode_attention_bulk from now on where it takes the shape ({@link #bulkTakes}) and the
     * GPU has bulk copies (compute capability 9.0 and later), or in decode_attention_mma / decode_attention_keys, whose
     * cp.async copies every GPU has. On unless EMBER_DECODE_BULK=0.
     */
    public void useBulkDecode(boolean on) {
        bulkDecode = on && device.computeMajor() >= 9;
    }

    /**
     * Runs prefill attention in prefill_attention_bulk from now on where it takes the shape ({@link #prefillBulkTakes})
     * and the GPU has bulk copies (compute capability 9.0 and later), or in prefill_attention_mma. On unless
     * EMBER_PREFILL_BULK=0.
     */
    public void useBulkPrefill(boolean on) {
        bulkPrefill = on && device.computeMajor() >= 9;
    }

    /** Whether prefill attention runs in prefill_attention_bulk where it takes the shape. */
    boolean bulkPrefill() {
        return bulkPrefill;
    }

    /** prefill_attention_bulk's warps a block from now on: 8, or 4 (prefill_attention_bulk_w4, for measuring). */
    void prefillBulkWarps(int warps) {
        if (warps != 4 && warps != 8) {
            throw new IllegalArgumentException("prefill_attention_bulk takes 4 or 8 warps, not " + warps);
        }
        prefillBulkWarps = warps;
    }

    int prefillBulkWarps() {
        return prefillBulkWarps;
    }

    /** Whether decode attention runs in decode_attention_bulk where it takes the shape. */
    boolean bulkDecode() {
        return bulkDecode;
    }

    /** decode_attention_bulk's stages from now on, DECODE_BULK_MIN_STAGES to DECODE_BULK_MAX_STAGES. */
    void decodeBulkStages(int stages) {
        bulkStages = Math.clamp(stages, DECODE_BULK_MIN_STAGES, DECODE_BULK_MAX_STAGES);
    }

    int decodeBulkStages() {
        return bulkStages;
    }

    /** True when this build carries the compiled kernels (it does not when nvcc was absent at build time). */
    static boolean bundled() {
        return MODULES.stream().allMatch(m -> EmberKernels.class.getResource(RESOURCE_DIR + m + ".fatbin") != null);
    }

    /** Loads every kernel module into the current context. */
    public static EmberKernels load(CudaDevice device) {
        EmberKernels k = new EmberKernels(device);
        try {
            for (String name : MODULES) {
                k.modules.add(CudaModule.load(name, readResource(name)));
            }
        } catch (RuntimeException e) {
            k.close();
            throw e;
        }
        return k;
    }

    private static byte[] readResource(String module) {
        try (InputStream in = EmberKernels.class.getResourceAsStream(RESOURCE_DIR + module + ".fatbin")) {
            if (in == null) {
                throw new EmberException("CUDA kernels missing from this build (" + module
                        + ".fatbin): nvcc was not found when Ember was built");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new EmberException("cannot read CUDA kernel module " + module + ": " + e.getMessage(), e);
        }
    }

    private CudaFunction function(String name) {
        CudaFunction f = functions.get(name);
        if (f == null) {
            for (CudaModule m : modules) {
                try {
                    f = m.function(name);
                    break;
                } catch (IllegalStateException notHere) {
                    // look in the next module
                }
            }
            if (f == null) {
                throw new IllegalStateException("kernel " + name + " is in no module (a stale kernel build?)");
            }
            functions.put(name, f);
        }
        return f;
    }

    private CudaFunction typed(String kernel, DType type) {
        return function(kernel + switch (type) {
            case F32 -> "_f32";
            case BF16 -> "_bf16";
            case F16 -> "_f16";
        });
    }

    /**
     * The kernel, allowed {@code bytes} of dynamic shared memory: refused where they and its static shared memory pass the
     * device's limit, and the 48 KiB default raised (once a size) where they pass that. The static arrays count: 48 KiB
     * of dynamic memory beside a kernel's own 256 bytes needs the raise, or the launch fails.
     */
    private CudaFunction withSharedMemory(CudaFunction f, int bytes) {
        if (bytes == 0 || sharedMemoryChecked.getOrDefault(f.name(), 0) >= bytes) {
            return f;
        }
        int total = bytes + f.staticSharedBytes();
        if (total > device.maxSharedMemoryPerBlock()) {
            throw new EmberException(f.name() + " needs " + total + " bytes of shared memory per block (" + bytes
                    + " dynamic); " + device.name() + " allows " + device.maxSharedMemoryPerBlock());
        }
        if (total > 48 * 1024) {
            f.allowDynamicSharedMemory(bytes);
        }
        sharedMemoryChecked.put(f.name(), bytes);
        return f;
    }

    private static int roundUp(int value, int multiple) {
        return (value + multiple - 1) / multiple * multiple;
    }

    /** Checks what every attention kernel assumes of the shape. */
    public static void checkSupported(AttentionShape shape) {
        if (shape.headDim() > MAX_HEAD_DIM || shape.headDim() % 2 != 0) {
            throw new EmberException("the CUDA backend supports even head dimensions up to " + MAX_HEAD_DIM
                    + "; this model's is " + shape.headDim());
        }
        if (shape.group() > MAX_GROUP) {
            throw new EmberException("the CUDA backend supports up to " + MAX_GROUP + " query heads per KV head; this model has "
                    + shape.group());
        }
    }

    /** {@code out[r] = table[tokens[r]]} widened to fp32. */
    public void embeddingGather(CudaStream stream, DType type, long table, long tokens, long out, int rows, int hidden) {
        args.begin().pointer(table).pointer(tokens).pointer(out).i32(hidden)
                .launch(typed("embedding_gather", type), rows, 1, 1, 256, 0, stream);
    }

    /**
     * carry_tokens in embedding.cu: each chunk whose last token the step it carries from (this runner's previous, or
     * another's last) sampled on the device takes it; {@code carry} is the step's {@link StepLayout#carry()}: the count,
     * the source buffer and the pairs, so that a graph replays it whatever they are.
     */
    public void carryTokens(CudaStream stream, long tokens, long carry) {
        args.begin().pointer(tokens).pointer(carry).launch(function("carry_tokens"), 1, 1, 1, 256, 0, stream);
    }

    /**
     * The RMSNorm of rmsnorm.cu: {@code rows} output rows in the storage type, row r the norm of the fp32 row
     * {@code rowIndex[r]} of x (or of row r when rowIndex is 0) times {@code weight}.
     */
    public void rmsNorm(CudaStream stream, DType type, long x, long weight, long out, long rowIndex, int rows, int hidden,
                        float eps) {
        args.begin().pointer(x).pointer(weight).pointer(out).pointer(rowIndex).i32(hidden).f32(eps)
                .launch(typed("rmsnorm", type), rows, 1, 1, rmsNormThreads(hidden), 0, stream);
    }

    /**
     * Threads per rmsnorm block: each caches RMSNORM_CACHED (4) float4s, 16 elements, of its row in registers, so a row
     * of up to 16 * 1024 elements is read once; 256 threads for hidden 4096. Fewer, fuller threads than one element per
     * thread: more 16-byte loads in flight per thread and a cheaper block reduction.
     */
    static int rmsNormThreads(int hidden) {
        return Math.min(1024, roundUp((hidden + 15) / 16, 32));
    }

    /**
     * Bias, q/k norm, RoPE and the KV-cache write of qkv_rope in rope.cu; bias and norms 0 for none. {@code qkv} holds
     * the product in {@code qkvType}: fp32, or the storage type (qkv_rope_rounded).
     */
    public void qkvRope(CudaStream stream, DType type, long qkv, DType qkvType, long bias, long qNorm, long kNorm,
                        long inverseFrequencies, long positions, long slots, long q, long keyCache, long valueCache, int rows,
                        AttentionShape shape, float eps) {
        if (qkvType != DType.F32 && qkvType != type) {
            throw new IllegalArgumentException("qkv_rope reads q/k/v in fp32 or in the storage type " + type + ", not " + qkvType);
        }
        args.begin().pointer(qkv).pointer(bias).pointer(qNorm).pointer(kNorm).pointer(inverseFrequencies)
                .pointer(positions).pointer(slots).pointer(q).pointer(keyCache).pointer(valueCache)
                .i32(shape.heads()).i32(shape.kvHeads()).i32(shape.headDim()).i32(shape.blockSize()).f32(eps);
        CudaFunction f = typed(qkvType == DType.F32 ? "qkv_rope" : "qkv_rope_rounded", type);
        int hd = shape.headDim(), lanes = ropeLanes(hd, qkvType);
        if (lanes > 0) {
            int threads = (shape.heads() + 2 * shape.kvHeads()) * lanes;
            args.launch(f, rows, (threads + ROPE_THREADS - 1) / ROPE_THREADS, 1, ROPE_THREADS, 0, stream);
        } else {
            args.launch(f, rows, shape.heads() + shape.kvHeads(), 1, roundUp(Math.max(hd / 2, 32), 32), 0, stream);
        }
    }

    /**
     * Threads per head of qkv_rope's vectorised way, each taking 16 bytes of the product per half-head (rope_vectorised
     * in rope.cu, which must agree): hd/2 / (16 / bytes), where that is a power of two up to 32 and hd is at most 256;
     * else 0, for the way with one block per (row, head) and one thread per pair.
     */
    static int ropeLanes(int headDim, DType qkvType) {
        int perThread = 16 / qkvType.bytes(), half = headDim / 2;
        if (headDim > 256 || half % perThread != 0) {
            return 0;
        }
        int lanes = half / perThread;
        return lanes >= 1 && lanes <= 32 && Integer.bitCount(lanes) == 1 ? lanes : 0;
    }

    /** {@code out = silu(gate) * up} from the fused gate/up product, both in the storage type. */
    public void siluMul(CudaStream stream, DType type, long gateUp, long out, int rows, int intermediate) {
        // Blocks of one row each (y), SILU_THREADS threads taking SILU_VECTORS 16-byte vectors each along it, or
        // single elements where a row is not a whole number of vectors (activation.cu).
        int perVector = 16 / type.bytes();
        int units = intermediate % perVector == 0 ? intermediate / perVector : intermediate;
        int blocksPerRow = (units + SILU_THREADS * SILU_VECTORS - 1) / (SILU_THREADS * SILU_VECTORS);
        args.begin().pointer(gateUp).pointer(out).i32(rows).i32(intermediate)
                .launch(typed("silu_mul", type), blocksPerRow, Math.min(rows, 65535), 1, SILU_THREADS, 0, stream);
    }

    /**
     * {@code x[r][c] += bias[c]} over {@code rows} rows of {@code cols} elements of {@code type} (bias.cu): the bias of
     * a product that leaves it out; {@code bias} holds fp32.
     */
    public void addBias(CudaStream stream, DType type, long x, long bias, int rows, int cols) {
        args.begin().pointer(x).pointer(bias).i32(rows).i32(cols)
                .launch(typed("add_bias", type), (cols + BIAS_THREADS - 1) / BIAS_THREADS, Math.min(rows, 65535), 1,
                        BIAS_THREADS, 0, stream);
    }

    /**
     * Flash attention for the prefill chunks listed in {@code prefillChunks} (device ints, {@code chunks} of
     * them), the longest {@code maxChunkLength} tokens long: in prefill_attention_bulk where it runs
     * ({@link #useBulkPrefill}, {@link #prefillBulkTakes}; grid (head groups of {@link #prefillPacked} heads, query
     * tiles of 16 * warps / packed positions, chunks), 8 warps or 4), else on the tensor cores for 16-bit types and head
     * dimensions that are multiples of 16 up to 128 (prefill_attention_mma, attention_prefill_mma.cu), else in fp32 FMAs
     * (attention_prefill.cu); grid (heads, query tiles, chunks). Every kernel takes the tiles last first, so that across
     * all heads the tiles with the most keys start first.
     */
    public void prefillAttention(CudaStream stream, DType type, long q, PagedKv kv, long prefillChunks, long chunkRowStart,
                                 long chunkLength, long chunkStartPosition, long out, int chunks, int maxChunkLength,
                                 AttentionShape shape) {
        int hd = shape.headDim();
        if (prefillOnBulk(type, shape)) {
            int packed = prefillPacked(shape.group()), stages = fittingBulkStages(type, hd, PREFILL_BULK_STAGES);
            int rowsPerBlock = 16 * prefillBulkWarps / packed, shared = decodeBulkSharedBytes(type, hd, stages);
            CudaFunction f = withSharedMemory(typed(prefillBulkEntry(prefillBulkWarps, hd), type), shared);
            args.begin().pointer(q).pointer(kv.keys()).pointer(kv.values()).pointer(kv.blockTables()).i32(kv.tableStride())
                    .pointer(prefillChunks).pointer(chunkRowStart).pointer(chunkLength).pointer(chunkStartPosition)
                    .pointer(out).i32(shape.heads()).i32(shape.kvHeads()).i32(hd).i32(shape.blockSize())
                    .i32(shape.window()).f32(shape.scale()).i32(packed).i32(stages)
                    .launch(f, shape.heads() / packed, (maxChunkLength + rowsPerBlock - 1) / rowsPerBlock, chunks,
                            32 * prefillBulkWarps, shared, stream);
            return;
        }
        int rowsPerBlock, shared;
        if (onTensorCores(type, hd)) {
            shared = MMA_SHARED_BYTES;
            rowsPerBlock = MMA_QUERIES;
        } else {
            int keys = hd <= 128 ? PREFILL_KEYS_SMALL : PREFILL_KEYS_LARGE;
            rowsPerBlock = PREFILL_QUERIES;
            shared = ((PREFILL_QUERIES + 2 * keys) * (hd + 1) + PREFILL_QUERIES * (keys + 1)) * Float.BYTES;
        }
        CudaFunction f = withSharedMemory(typed(prefillKernelName(type, shape), type), shared);
        args.begin().pointer(q).pointer(kv.keys()).pointer(kv.values()).pointer(kv.blockTables()).i32(kv.tableStride())
                .pointer(prefillChunks).pointer(chunkRowStart).pointer(chunkLength).pointer(chunkStartPosition)
                .pointer(out).i32(shape.heads()).i32(shape.kvHeads()).i32(hd).i32(shape.blockSize())
                .i32(shape.window()).f32(shape.scale())
                .launch(f, shape.heads(), (maxChunkLength + rowsPerBlock - 1) / rowsPerBlock, chunks, 128, shared, stream);
    }

    /** The most splits of one sequence's context in decode attention (sizes the partial-result buffers). */
    public static final int MAX_DECODE_SPLITS = 32;

    /** Decode blocks wanted per multiprocessor when choosing splits (decodeSplits). */
    private static final int DECODE_BLOCKS_PER_MULTIPROCESSOR = 4;

    /** EMBER_DECODE_SPLITS=N, for measuring: N splits wherever the context has N tiles of keys (0: chosen as below). */
    private static final int FORCED_DECODE_SPLITS = positiveEnvironment("EMBER_DECODE_SPLITS");

    /**
     * Decode-attention splits for {@code rows} sequences over block tables of {@code contextTokens} slots. In
     * decode_attention_bulk, {@link #wholeWaveSplits} over the blocks its multiprocessors hold at once (the driver's
     * occupancy of the kernel at its shared memory). Otherwise enough for about four blocks per multiprocessor, each
     * split at least 32 keys, so the count changes only with the table width. Fewer, longer splits waste less on each
     * block's first tile and on the reduction: on the H200 at batch 64 of the 8B shape (512-token prompts) 2 splits gave
     * 8,645 tok/s, 3 (aiming at eight blocks per multiprocessor) 8,473, 4 8,315 and 6 8,018 with decode_attention_keys;
     * at batch 1 8 and 12 splits gave the same (bench e2e, EMBER_DECODE_SPLITS). The tensor-core kernel's 64-key tiles
     * then leave a short split's warps 2-3 idle rather than halve the blocks of a small batch.
     */
    public int decodeSplits(int rows, DType type, AttentionShape shape, int contextTokens) {
        if (FORCED_DECODE_SPLITS == 0 && decodeOnBulk(type, shape)) {
            int stages = bulkStages(type, shape, rows);
            return wholeWaveSplits(bulkBlocks(rows, shape), bulkSlots(type, shape.headDim(), stages), contextTokens,
                    shape.blockSize());
        }
        int wanted = FORCED_DECODE_SPLITS > 0 ? FORCED_DECODE_SPLITS
                : (DECODE_BLOCKS_PER_MULTIPROCESSOR * device.multiprocessors() + rows * shape.kvHeads() - 1) / (rows * shape.kvHeads());
        int byLength = Math.max(1, contextTokens / DECODE_TILE_KEYS);
        return Math.clamp(Math.min(wanted, byLength), 1, MAX_DECODE_SPLITS);
    }

    /**
     * Splits for decode_attention_bulk, whose splits are whole cache blocks: of the counts s up to MAX_DECODE_SPLITS
     * that give each split 32 keys of the context or more, the one with the least waves(s) * (keys a split + one tile,
     * and one more where s > 1), a wave being as many blocks as the GPU holds at once ({@code slots}, rounded up), a
     * block's fixed cost about a tile's keys (its index loads and first copies' latency, the warps' merge) and two or
     * more splits' about another (their partials written and read back, the reduction's launch); the fewest on a tie.
     * So a count that leaves a last wave mostly empty loses to one that fills whole waves, and one long split per row
     * wins where the rows alone fill the GPU: at batch 64 of the 8B shape (512 blocks a split) on an H200 holding two
     * blocks a multiprocessor (264), 1 split of 640 keys costs 2 * 704 against 4 * 448 for 2; at batch 16 (128
     * blocks), 2 splits cost 448 against 704 for 1; at batch 1 (8 blocks, 384 keys), 12 splits of 32 keys 160 against
     * 192 for 6.
     */
    static int wholeWaveSplits(int blocksPerSplit, int slots, int contextTokens, int blockSize) {
        int most = Math.clamp(contextTokens / DECODE_TILE_KEYS, 1, MAX_DECODE_SPLITS);
        long runs = Math.max(1, (contextTokens + blockSize - 1) / blockSize);
        int best = 1;
        long bestCost = Long.MAX_VALUE;
        for (int s = 1; s <= most; s++) {
            long waves = ((long) blocksPerSplit * s + slots - 1) / slots;
            long keys = (runs + s - 1) / s * blockSize;
            long cost = waves * (keys + (s > 1 ? 2 : 1) * DECODE_MMA_TILE_KEYS);
            if (cost < bestCost) {
                best = s;
                bestCost = cost;
            }
        }
        return best;
    }

    /** Floats of partial output, and of (max, sum) pairs, the decode kernel needs for these sizes. */
    public static long decodePartialFloats(int decodeRows, AttentionShape shape, int splits) {
        return (long) decodeRows * shape.heads() * splits * shape.headDim();
    }

    public static long decodeMaxSumFloats(int decodeRows, AttentionShape shape, int splits) {
        return 2L * decodeRows * shape.heads() * splits;
    }

    /** Query heads per decode block (HG): the smallest entry point's that holds the group, else 4 in several batches. */
    static int decodeHeadsPerBlock(int group) {
        return group <= 2 ? 2 : DECODE_HEADS_PER_BLOCK;
    }

    /** Warps per query head of a decode block: a block is always four warps, so two a head when it holds two heads. */
    static int decodeKeyParts(int headsPerBlock) {
        return DECODE_WARPS / headsPerBlock;
    }

    /** The decode entry point, without its storage-type suffix: decode_attention_keys_d{128,256}_g{2,4}. */
    static String decodeKernel(int headDim, int headsPerBlock) {
        return "decode_attention_keys_d" + (headDim <= 128 ? 128 : 256) + "_g" + headsPerBlock;
    }

    /**
     * Dynamic shared memory of one decode block, as decode_attention_keys lays it out: DECODE_STAGES tiles of
     * DECODE_TILE_KEYS key rows padded by 16 bytes and as many packed value rows, in the storage type, then the queries
     * and the tile's probabilities in fp32. With two warps a head the tile area then holds their merge, a row of output
     * and (max, sum) per head, which always fits: the size is the same.
     */
    static int decodeSharedBytes(DType type, int headDim, int headsPerBlock) {
        int rowElements = roundUp(headDim, 16 / type.bytes());
        int tiles = DECODE_STAGES * DECODE_TILE_KEYS * (2 * rowElements + 16 / type.bytes()) * type.bytes();
        int merge = decodeKeyParts(headsPerBlock) == 2 ? headsPerBlock * (rowElements + 4) * Float.BYTES : 0;
        return Math.max(tiles, merge) + headsPerBlock * (rowElements + DECODE_TILE_KEYS) * Float.BYTES;
    }

    /**
     * Whether decode attention runs on the tensor cores (decode_attention_mma): 16-bit types and head dimensions that
     * are multiples of 16 up to 128, as for prefill, and groups of more than two query heads a KV head, where
     * decode_attention_keys reads each key from shared memory once per head and the tensor cores' once per group wins
     * (offline Llama-8B on the H200 +5.5%); for groups of one or two decode_attention_keys, two warps a head, is faster
     * (Qwen3-0.6B offline 19,400 tok/s against 17,000).
     */
    static boolean decodeOnTensorCores(DType type, AttentionShape shape) {
        return onTensorCores(type, shape.headDim()) && shape.group() > 2;
    }

    /**
     * Whether decode_attention_bulk takes the shape, on GPUs that have bulk copies: the tensor-core kernels' operands
     * with rows the cache stores swizzled (hd 64 and 128 in 16-bit types: PagedKv.swizzled), any group (a block takes up
     * to 16 query heads, as decode_attention_mma), any block size.
     */
    static boolean bulkTakes(DType type, AttentionShape shape) {
        return onTensorCores(type, shape.headDim()) && PagedKv.swizzled(shape.headDim(), type.bytes());
    }

    private boolean decodeOnBulk(DType type, AttentionShape shape) {
        return bulkDecode && bulkTakes(type, shape);
    }

    /**
     * decode_attention_bulk's stages for a step of {@code rows} decodes: the configured ones, fewer where they would not
     * fit; and the fewest where a split's blocks fill DECODE_BULK_SHALLOW_WAVES waves or more at the configured depth.
     * Two stages hold a third block a multiprocessor at head dimension 128, which pays where the grid is deep and the
     * third block has work, not where a shallower pipeline only starves the blocks of a short grid: on the H200
     * (2026-12-04, two rounds each) offline Qwen3-0.6B 24,852 -> 25,102 tok/s and offline Llama-8B 9,944 -> 10,004
     * with it at four waves, batch 64 of the 8B shape (about two waves, untouched) 9,941 / 9,933; two stages at every
     * depth had lost 0.5% there.
     */
    private int bulkStages(DType type, AttentionShape shape, int rows) {
        int hd = shape.headDim(), stages = fittingBulkStages(type, hd, bulkStages);
        if (SHALLOW_BULK_WAVES > 0 && bulkBlocks(rows, shape) >= (long) SHALLOW_BULK_WAVES * bulkSlots(type, hd, stages)) {
            return DECODE_BULK_MIN_STAGES;
        }
        return stages;
    }

    /** The blocks of one split of decode_attention_bulk over {@code rows} decodes: each a KV head's batch of query heads. */
    private static int bulkBlocks(int rows, AttentionShape shape) {
        return rows * shape.kvHeads() * ((shape.group() + DECODE_MMA_HEADS - 1) / DECODE_MMA_HEADS);
    }

    /** How many decode_attention_bulk blocks of this depth the GPU holds at once (the driver's occupancy). */
    private int bulkSlots(DType type, int headDim, int stages) {
        int shared = decodeBulkSharedBytes(type, headDim, stages);
        CudaFunction f = withSharedMemory(typed(decodeBulkEntry(headDim), type), shared);
        return Math.max(1, residentBlocks(f, 32 * DECODE_WARPS, shared)) * device.multiprocessors();
    }

    /** {@code wanted} stages of bulk-copied tiles at this head dimension, fewer (down to the least) where they would not fit. */
    private int fittingBulkStages(DType type, int headDim, int wanted) {
        int stages = wanted;
        while (stages > DECODE_BULK_MIN_STAGES && decodeBulkSharedBytes(type, headDim, stages) > device.maxSharedMemoryPerBlock()) {
            stages--;
        }
        return stages;
    }

    /**
     * Dynamic shared memory of a decode_attention_bulk block: {@code stages} stages of DECODE_MMA_TILE_KEYS key rows and
     * as many value rows of {@code headDim} elements, unpadded (swizzled as the cache stores them), then a barrier (8
     * bytes) per stage: 98,328 bytes at three stages for hd 128 in bf16.
     */
    static int decodeBulkSharedBytes(DType type, int headDim, int stages) {
        return stages * (2 * DECODE_MMA_TILE_KEYS * headDim * type.bytes() + Long.BYTES);
    }

    /**
     * Whether prefill_attention_bulk takes the shape, on GPUs that have bulk copies: decode_attention_bulk's operands
     * ({@link #bulkTakes}: 16-bit types, hd 64 and 128) and cache blocks of a multiple of 8 tokens (its tiles start at a
     * multiple of 8 positions, so every tile's rows share one swizzle); any group (a block packs 4, 2 or 1 query heads:
     * {@link #prefillPacked}).
     */
    static boolean prefillBulkTakes(DType type, AttentionShape shape) {
        return bulkTakes(type, shape) && shape.blockSize() % 8 == 0;
    }

    private boolean prefillOnBulk(DType type, AttentionShape shape) {
        return bulkPrefill && prefillBulkTakes(type, shape);
    }

    /** decode_attention_bulk's entry point, without its type's suffix, at head dimension {@code headDim} (64 or 128). */
    static String decodeBulkEntry(int headDim) {
        return "decode_attention_bulk_hd" + headDim;
    }

    /**
     * prefill_attention_bulk's entry point, without its type's suffix, for blocks of {@code warps} warps (8, or 4 for
     * measuring) at head dimension {@code headDim} (64 or 128: each a constant of its own build of the kernel).
     */
    static String prefillBulkEntry(int warps, int headDim) {
        return (warps == 4 ? "prefill_attention_bulk_w4" : "prefill_attention_bulk") + "_hd" + headDim;
    }

    /** The query heads of one KV head a prefill_attention_bulk block takes: 4 where they divide the group, else 2, else 1. */
    static int prefillPacked(int group) {
        return group % 4 == 0 ? 4 : group % 2 == 0 ? 2 : 1;
    }

    /** The entry of the prefill kernel that runs this shape now, without its type suffix (for tests and logs). */
    public String prefillKernelName(DType type, AttentionShape shape) {
        int hd = shape.headDim();
        return prefillOnBulk(type, shape) ? prefillBulkEntry(prefillBulkWarps, hd)
                : onTensorCores(type, hd) ? "prefill_attention_mma" : hd <= 128 ? "prefill_attention_d128" : "prefill_attention_d256";
    }

    /** Whether the tensor-core attention kernels take these operands: 16-bit types, hd a multiple of 16 up to 128. */
    static boolean onTensorCores(DType type, int headDim) {
        return type != DType.F32 && headDim % 16 == 0 && headDim <= 128;
    }

    /**
     * Split-K paged decode attention and, with two or more splits, its reduction (decode_attention_reduce), for the
     * {@code decodeRows} rows listed in {@code rowList}; {@code partialOut} and {@code partialMaxSum} are scratch of the
     * sizes above. In decode_attention_bulk where it runs ({@link #useBulkDecode}, {@link #bulkTakes}), else on the
     * tensor cores where {@link #decodeOnTensorCores} says so (either: grid rows, KV heads times batches of 16 query
     * heads, splits), else decode_attention_keys (rows, KV heads times head batches of 2 or 4, splits); four warps a
     * block each way.
     */
    public void decodeAttention(CudaStream stream, DType type, long q, PagedKv kv, long rowList, long rowChunk,
                                long positions, long partialOut, long partialMaxSum, long out, int decodeRows, int splits,
                                AttentionShape shape) {
        int hd = shape.headDim();
        boolean bulk = decodeOnBulk(type, shape), tensorCores = bulk || decodeOnTensorCores(type, shape);
        int stages = bulk ? bulkStages(type, shape, decodeRows) : 0;
        int headsPerBlock = tensorCores ? DECODE_MMA_HEADS : decodeHeadsPerBlock(shape.group());
        int headBatches = (shape.group() + headsPerBlock - 1) / headsPerBlock;
        int shared = bulk ? decodeBulkSharedBytes(type, hd, stages)
                : tensorCores ? DECODE_MMA_SHARED_BYTES : decodeSharedBytes(type, hd, headsPerBlock);
        String kernel = tensorCores ? decodeKernelName(type, shape) : decodeKernel(hd, headsPerBlock);
        CudaFunction f = withSharedMemory(typed(kernel, type), shared);
        args.begin().pointer(q).pointer(kv.keys()).pointer(kv.values()).pointer(kv.blockTables()).i32(kv.tableStride())
                .pointer(rowList).pointer(rowChunk).pointer(positions).pointer(partialOut).pointer(partialMaxSum)
                .pointer(out).i32(shape.heads()).i32(shape.kvHeads()).i32(shape.headDim()).i32(shape.blockSize())
                .i32(shape.window()).i32(splits).f32(shape.scale());
        if (bulk) {
            args.i32(stages);
        }
        args.launch(f, decodeRows, shape.kvHeads() * headBatches, splits, 32 * DECODE_WARPS, shared, stream);
        if (splits > 1) {  // one split writes the output itself
            args.begin().pointer(partialOut).pointer(partialMaxSum).pointer(rowList).pointer(out).i32(shape.heads())
                    .i32(shape.headDim()).i32(splits)
                    .launch(typed("decode_attention_reduce", type), decodeRows, shape.heads(), 1, 128, 0, stream);
        }
    }

    /**
     * Every layer of a one-row decode step in one cooperative launch (layer_stream.cu): {@link LayerStream} owns its
     * table of layers, its scratch buffers and its shared-memory plan; the step's metadata (positions, cache slots,
     * block tables) is read on the device, so that the launch replays from a graph.
     */
    void layerStream(CudaStream stream, DType type, LayerStream.Launch l, long x, long positions, long slots,
                     long blockTables, int tableStride, long rowChunk, long inverseFrequencies, AttentionShape shape,
                     int hidden, int intermediate, float eps) {
        CudaFunction f = withSharedMemory(typed("layer_stream_hd" + shape.headDim(), type), l.sharedBytes());
        args.begin().pointer(l.layers()).i32(l.numLayers()).pointer(x).pointer(l.qkv()).pointer(l.gated())
                .pointer(l.partials()).pointer(l.stats()).pointer(l.arrivals()).pointer(l.attention()).pointer(inverseFrequencies).pointer(positions).pointer(slots)
                .pointer(blockTables).i32(tableStride).pointer(rowChunk).pointer(l.counter()).i32(hidden)
                .i32(shape.heads()).i32(shape.kvHeads()).i32(intermediate).i32(shape.blockSize()).f32(eps)
                .f32(shape.scale()).i32(l.ringSlots()).i32(l.stagingBytes()).i32(l.inFlight()).pointer(l.trace())
                .launchCooperative(f, device.multiprocessors(), LayerStream.THREADS, l.sharedBytes(), stream);
    }

    /** The decode kernel decodeAttention launches for this shape, without its storage-type suffix (for the kernel benchmark). */
    public String decodeKernelName(DType type, AttentionShape shape) {
        return decodeOnBulk(type, shape) ? decodeBulkEntry(shape.headDim())
                : decodeOnTensorCores(type, shape) ? "decode_attention_mma" : "decode_attention";
    }

    /**
     * Reads {@code bytes} (a multiple of 16) at {@code in} once: the read ceiling's measurement. {@code sink} needs 16
     * bytes per block of the grid (four per multiprocessor) and is in practice never written.
     */
    public void readStream(CudaStream stream, long in, long bytes, long sink) {
        args.begin().pointer(in).i64(bytes / 16).pointer(sink)
                .launch(function("read_stream"), readStreamBlocks(), 1, 1, 512, 0, stream);
    }

    /**
     * Reads {@code bytes} (a multiple of 16) at {@code in} once in the matrix-vector kernel's pattern, a warp per
     * contiguous 8 KiB run (read_runs in memory.cu): the read ceiling's second measurement. {@code sink} as for
     * {@link #readStream}.
     */
    public void readRuns(CudaStream stream, long in, long bytes, long sink) {
        long runs = (bytes / 16 + READ_RUN_WORDS - 1) / READ_RUN_WORDS;
        int warpsPerBlock = 8;
        args.begin().pointer(in).i64(bytes / 16).pointer(sink)
                .launch(function("read_runs"), (int) ((runs + warpsPerBlock - 1) / warpsPerBlock), 1, 1, 32 * warpsPerBlock, 0, stream);
    }

    /** Blocks of the read-stream kernel: four 512-thread blocks per multiprocessor keep enough loads in flight. */
    public int readStreamBlocks() {
        return 4 * device.multiprocessors();
    }

    /** Fills {@code n} elements with {@code center ± halfWidth}, uniform, a pure function of {@code seed} and the index. */
    public void fillUniform(CudaStream stream, DType type, long out, long n, float center, float halfWidth, long seed) {
        int blocks = (int) Math.min((n + 255) / 256, 64L * device.multiprocessors());
        args.begin().pointer(out).i64(n).f32(center).f32(halfWidth).i64(seed)
                .launch(typed("fill_uniform", type), Math.max(blocks, 1), 1, 1, 256, 0, stream);
    }

    /** Whether {@link #gemv} takes operands of this type and depth: rows of 16-byte vectors, at most GEMV_MAX_ROWS of them. */
    public static boolean gemvSupports(DType type, int m, int k) {
        return m >= 1 && m <= GEMV_MAX_ROWS && k % (16 / type.bytes()) == 0;
    }

    /**
     * {@code out[m][n] = x[m][k] · w[n][k]ᵀ} for a few rows (gemv.cu), x and w in {@code type}, out fp32 or (with
     * {@code outType == type}) rounded to the storage type; operands 16-byte aligned.
     */
    public void gemv(CudaStream stream, DType type, long x, long w, long out, DType outType, int m, int n, int k) {
        gemv(stream, type, x, w, out, outType, m, n, k, 4, 1, false);
    }

    /**
     * As above, with {@code inFlight} 16-byte slices of the weight row in flight per lane and {@code warps} warps a
     * column, each taking a run of the row: 4, 8 or 16 slices with one warp, 8 with two, 4 with four (gemv.cu's entries).
     * With {@code accumulate} (fp32 output only) the product is added to out's values: an output projection's residual add.
     */
    public void gemv(CudaStream stream, DType type, long x, long w, long out, DType outType, int m, int n, int k, int inFlight,
                     int warps, boolean accumulate) {
        checkGemv(type, m, k, outType, x | w | out, accumulate);
        args.begin().pointer(x).pointer(0).f32(0f).pointer(w).pointer(out).i32(m).i32(n).i32(k).i32(accumulate ? 1 : 0)
                .launch(typed(gemvKernel(m, outType, inFlight, warps, GemvInput.ROWS), type), gemvGroups(n, warps), 1, 1, 256, 0, stream);
    }

    /**
     * {@code out = rmsnorm(residual) · w[n][k]ᵀ}: the norm of the m fp32 rows of {@code residual} (k each) times
     * {@code normWeight} (fp32), rounded to {@code type}, is computed by each block into its shared memory (gemv.cu's
     * NORM builds) instead of by a kernel of its own. The grid is what the GPU holds at once, each block looping over
     * columns. Takes the rows that {@link #gemvStagedFits} allows.
     */
    public void gemvNormed(CudaStream stream, DType type, long residual, long normWeight, float eps, long w, long out,
                           DType outType, int m, int n, int k, int inFlight, int warps) {
        checkGemv(type, m, k, outType, residual | normWeight | w | out, false);
        requireStagedFits(type, GemvInput.NORM, m, k);
        args.begin().pointer(residual).pointer(normWeight).f32(eps).pointer(w).pointer(out).i32(m).i32(n).i32(k).i32(0);
        launchStaged(stream, type, GemvInput.NORM, outType, m, n, k, inFlight, warps);
    }

    /**
     * {@code out (+)= (silu(gate) * up) · w[n][k]ᵀ} (fp32 out): the down projection of the m rows of the fused gate/up
     * product {@code gateUp} (2k values each, in {@code type}), whose SwiGLU gate, rounded to {@code type} as
     * {@link #siluMul} rounds it, each block computes into its shared memory (gemv.cu's GATE builds) instead of
     * silu_mul. With {@code accumulate} the product is added to out's values (the residual add). Takes the rows that
     * {@link #gemvStagedFits} allows.
     */
    public void gemvGated(CudaStream stream, DType type, long gateUp, long w, long out, int m, int n, int k, int inFlight,
                          int warps, boolean accumulate) {
        checkGemv(type, m, k, DType.F32, gateUp | w | out, accumulate);
        requireStagedFits(type, GemvInput.GATE, m, k);
        args.begin().pointer(gateUp).pointer(0).f32(0f).pointer(w).pointer(out).i32(m).i32(n).i32(k).i32(accumulate ? 1 : 0);
        launchStaged(stream, type, GemvInput.GATE, DType.F32, m, n, k, inFlight, warps);
    }

    private void requireStagedFits(DType type, GemvInput input, int m, int k) {
        if (!gemvStagedFits(type, m, k)) {
            throw new IllegalArgumentException("gemv's " + (input == GemvInput.NORM ? "normalised" : "gated") + " rows need "
                    + stagedBytes(type, m, k) + " bytes of shared memory; " + device.name() + " allows "
                    + device.maxSharedMemoryPerBlock());
        }
    }

    /** Launches a staged build with its arguments given: as many blocks as the GPU holds at once, at most one a group. */
    private void launchStaged(CudaStream stream, DType type, GemvInput input, DType outType, int m, int n, int k, int inFlight,
                              int warps) {
        int shared = stagedBytes(type, m, k);
        CudaFunction f = withSharedMemory(typed(gemvKernel(m, outType, inFlight, warps, input), type), shared);
        args.launch(f, stagedGrid(f, shared, gemvGroups(n, warps)), 1, 1, 256, shared, stream);
    }

    /** The grid of a staged build (256 threads a block): as many blocks as the GPU holds at once, and at most {@code groups}. */
    private int stagedGrid(CudaFunction f, int shared, int groups) {
        return Math.min(groups, residentBlocks(f, 256, shared) * device.multiprocessors());
    }

    /** Blocks of {@code threads} threads and {@code shared} bytes of dynamic shared memory a multiprocessor holds (cached). */
    private int residentBlocks(CudaFunction f, int threads, int shared) {
        return blocksPerMultiprocessor.computeIfAbsent(f.name() + "/" + threads + "/" + shared,
                key -> f.blocksPerMultiprocessor(threads, shared));
    }

    /**
     * Whether {@link #gemvNormed} and {@link #gemvGated} take m rows of depth k: their staged copy (m * k values of the
     * storage type) fits one block's shared memory.
     */
    public boolean gemvStagedFits(DType type, int m, int k) {
        return stagedFitsSharedMemory(stagedBytes(type, m, k));
    }

    /**
     * Whether staged rows of {@code bytes} fit a block's shared memory beside the staged builds' static arrays
     * (normalise_rows' and gemv_group's partial sums, 1.25 KiB at eight rows; 2 KiB is kept for them), so that a shape
     * at the edge is refused here rather than by the driver at launch.
     */
    private boolean stagedFitsSharedMemory(int bytes) {
        return bytes + 2048 <= device.maxSharedMemoryPerBlock();
    }

    private static int stagedBytes(DType type, int m, int k) {
        return m * k * type.bytes();
    }

    private static void checkGemv(DType type, int m, int k, DType outType, long addresses, boolean accumulate) {
        if (!gemvSupports(type, m, k) || (outType != DType.F32 && outType != type) || (addresses & 15) != 0
                || (accumulate && outType != DType.F32)) {
            throw new IllegalArgumentException("gemv does not take " + type + "->" + outType + " m=" + m + " k=" + k
                    + (accumulate ? " accumulating" : ""));
        }
    }

    /** Column groups of a gemv: a block of 8 warps takes 8 / warps columns. */
    private static int gemvGroups(int n, int warps) {
        return (int) (((long) n * warps + 7) / 8);
    }

    /**
     * What a gemv.cu build takes as x: the rows themselves, the fp32 residual it normalises (NORM builds), or the gate/up
     * product it gates (GATE builds, fp32 output only), each with its entries' infix.
     */
    public enum GemvInput {
        ROWS(""), NORM("_normed"), GATE("_gated");

        final String infix;

        GemvInput(String infix) {
            this.infix = infix;
        }
    }

    /**
     * gemv.cu's entry for {@code m} rows, the output type, slices in flight, warps a column and input, less its type
     * suffix; a combination it does not build fails at the lookup, which names the entry it looked for.
     */
    static String gemvKernel(int m, DType outType, int inFlight, int warps, GemvInput input) {
        int rows = m <= 1 ? 1 : m <= 2 ? 2 : m <= 4 ? 4 : 8;
        return "gemv_m" + rows + (outType == DType.F32 ? "" : "_rounded") + input.infix
                + (inFlight > 4 ? "_u" + inFlight : "") + (warps > 1 ? "_w" + warps : "");
    }

    /** {@code out[r] = argmax logits[r]}, lowest index on ties. */
    public void argmax(CudaStream stream, long logits, long out, int rows, int vocab) {
        args.begin().pointer(logits).pointer(out).i32(vocab).launch(function("argmax_f32"), rows, 1, 1, 1024, 0, stream);
    }

    /** Temperature / top-k / top-p sampling of sample_top_k_top_p in sampling.cu, with per-row parameters. */
    public void sampleTopKTopP(CudaStream stream, long logits, long temperature, long topK, long topP, long uniform, long out,
                               int rows, int vocab) {
        args.begin().pointer(logits).pointer(temperature).pointer(topK).pointer(topP).pointer(uniform).pointer(out).i32(vocab)
                .launch(function("sample_top_k_top_p"), rows, 1, 1, 1024, 0, stream);
    }

    /**
     * The engine's next-token choice of sample_tokens in sampling.cu: per row, {@code params} holds
     * {@link StepLayout#SAMPLE_PARAMS} ints (mode: 0 none, 1 greedy, 2 sampled; top-k; temperature, top-p and
     * the uniform draw as float bits; the logprobs' K, read by {@link #tokenLogprobs}); {@code out[r]} gets the token,
     * or -1 for mode 0.
     */
    public void sampleTokens(CudaStream stream, long logits, long params, long out, int rows, int vocab) {
        args.begin().pointer(logits).pointer(params).pointer(out).i32(vocab)
                .launch(function("sample_tokens"), rows, 1, 1, 1024, 0, stream);
    }

    /**
     * mask_logits in sampling.cu: in each of the {@code rows} rows whose sampling parameters name a mask (their last
     * int, k >= 0), the logits of the tokens mask k of {@code masks} does not allow become -inf; launched before
     * {@link #sampleTokens}. {@code masks}: {@link StepLayout#maskInts} ints a mask.
     */
    public void maskLogits(CudaStream stream, long logits, long params, long masks, int rows, int vocab) {
        args.begin().pointer(logits).pointer(params).pointer(masks).i32(vocab)
                .launch(function("mask_logits"), MASK_BLOCKS_PER_ROW, rows, 1, 256, 0, stream);
    }

    /**
     * The OpenAI logprobs of each row's sampled token, token_logprobs in sampling.cu: with the row's K (the last of its
     * {@link StepLayout#SAMPLE_PARAMS} ints; -1 skips the row) and its token {@code sampled[r]}, writes
     * {@code logprob[r]}, and the K most likely ids and their logprobs at {@code topIds[r * stride]} and
     * {@code topLogprobs[r * stride]} (an id of -1 past the vocabulary's end).
     */
    public void tokenLogprobs(CudaStream stream, long logits, long params, long sampled, long logprob, long topIds,
                              long topLogprobs, int rows, int vocab, int stride) {
        args.begin().pointer(logits).pointer(params).pointer(sampled).pointer(logprob).pointer(topIds).pointer(topLogprobs)
                .i32(vocab).i32(stride).launch(function("token_logprobs"), rows, 1, 1, 1024, 0, stream);
    }

    /** A positive integer from the environment variable, or 0 where it is unset or not one. */
    static int positiveEnvironment(String name) {
        try {
            return Math.max(0, Integer.parseInt(System.getenv().getOrDefault(name, "0").strip()));
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    @Override
    public void close() {
        for (CudaModule m : modules) {
            m.close();
        }
        modules.clear();
        functions.clear();
        arena.close();
    }
}
