package dev.ember.backend.cuda;

import dev.ember.model.DType;
import dev.ember.model.ModelConfig;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.IntStream;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * A one-row decode step's layers as one launch (layer_stream.cu): one block a multiprocessor, a producer thread in
 * each streaming the weights through shared memory while the other warps compute, the phases of every layer separated
 * by grid-wide barriers. At batch 1 the step is a stream of the weights, and launched kernel by kernel the memory
 * idles at each of a layer's boundaries; here the weights stream across them. This class owns what the kernel reads
 * besides the step's buffers: the table of every layer's weights and cache, the q/k/v row, the gated row, the attention
 * splits' partial results, and the barrier's counter.
 *
 * <p>It takes the models whose layers it was written for ({@link #unsupported}): 16-bit weights all resident, head
 * dimensions 64, 128 or 256, no sliding window, no biases but q/k/v's, on a GPU with bulk copies (compute
 * capability 9.0). Elsewhere the runner launches each layer's kernels, and so it does everywhere unless
 * {@code EMBER_LAYER_STREAM=1}: on an H100 the one launch is still slower at batch 1 of the 8B shape (its attention
 * phase costs more than the boundaries it saves; docs/benchmarks.md).
 */
final class LayerStream implements AutoCloseable {
    /** Eight consumer warps and one producer (STREAM_THREADS in layer_stream.cu). */
    static final int THREADS = 288;
    /** Bytes of a ring slot (STREAM_SLOT). */
    static final int SLOT_BYTES = 32768;
    /** Slots of the ring at most (four and five measured alike on an H100, six slower). */
    static final int MAX_SLOTS = 5;
    /** Attention splits of a KV head at most (STREAM_MAX_SPLITS). */
    static final int MAX_SPLITS = 16;
    /** Rows of q/k/v, o or down a block takes at most (STREAM_MAX_BLOCK_ROWS). */
    static final int MAX_BLOCK_ROWS = 256;
    /** Room left for the kernel's own shared arrays (10.4 KB: the rows' sums and their parts, the splits' merge, the ring's barriers). */
    private static final int STATIC_RESERVE = 12 * 1024;
    /** Positions of a split whose keys and values are copied ahead into shared memory (STREAM_KV_ROWS). */
    static final int KV_ROWS = 32;
    /**
     * Time stamps a layer and block with EMBER_LAYER_STREAM_TRACE=1 (STREAM_STAMPS): each phase's end and each
     * barrier's, each product's input staged, and three inside attention.
     */
    static final int STAMPS = 17;
    /**
     * What the intervals between a layer's stamps are, in order (the last runs to the next layer's first stamp): each
     * product is its input staged (the norm, or the copy of the row other blocks wrote) and its rows; attention is its
     * q/k/v loads, the wait for the keys and values held in shared memory, its scores and partial results, and the
     * splits' count and merge.
     */
    private static final String[] INTERVALS = {"q/k/v norm", "q/k/v", "barrier", "attention loads", "held wait",
            "scores", "count+merge", "barrier", "o row copy", "o", "barrier", "gate/up norm", "gate/up", "barrier",
            "down row copy", "down", "barrier"};
    /** Pointers of a layer in the table: StreamLayer in layer_stream.cu. */
    private static final int POINTERS_A_LAYER = 11;

    /** What a launch passes besides the step's buffers. */
    record Launch(long layers, int numLayers, long qkv, long gated, long partials, long stats, long arrivals,
                  long attention, long counter, int ringSlots, int stagingBytes, int sharedBytes, int inFlight, long trace) {
    }

    /**
     * The layer table, q/k/v row, gated row, attention splits' outputs and (m, l), each KV head's count of finished
     * splits, the attention row, the barrier's counter, and the trace or null.
     */
    private final DeviceBuffer[] buffers;
    /** The last step's time stamps, [layer][block][stamp] (EMBER_LAYER_STREAM_TRACE=1), or null. */
    private final DeviceBuffer trace;
    private final int blocks;
    private final Launch launch;

    private LayerStream(DeviceBuffer[] buffers, int blocks, int numLayers, int ringSlots, int stagingBytes,
                        int sharedBytes) {
        this.buffers = buffers;
        this.trace = buffers[8];
        this.blocks = blocks;
        this.launch = new Launch(buffers[0].address(), numLayers, buffers[1].address(), buffers[2].address(),
                buffers[3].address(), buffers[4].address(), buffers[5].address(), buffers[6].address(),
                buffers[7].address(), ringSlots, stagingBytes, sharedBytes, copiesInFlight(ringSlots),
                trace == null ? 0 : trace.address());
    }

    /**
     * Why the one launch cannot run this model's decode steps, or empty where it can. {@code biasesBeyondQkv}: an
     * o, gate/up or down bias in some layer.
     */
    static Optional<String> unsupported(ModelConfig config, AttentionShape shape, DType type, CudaDevice device,
                                        boolean streamedLayers, boolean biasesBeyondQkv) {
        int hd = shape.headDim();
        if (device.computeMajor() < 9) {
            return Optional.of("bulk copies need compute capability 9.0, this GPU has " + device.computeMajor() + "."
                    + device.computeMinor());
        }
        if (type == DType.F32) {
            return Optional.of("fp32 weights");
        }
        if (streamedLayers) {
            return Optional.of("layers streamed through a window");
        }
        if (hd != 64 && hd != 128 && hd != 256) {
            return Optional.of("head dimension " + hd + " (64, 128 or 256 taken)");
        }
        if (shape.window() > 0) {
            return Optional.of("a sliding window");
        }
        if (biasesBeyondQkv) {
            return Optional.of("o, gate/up or down biases");
        }
        int qkvWidth = (shape.heads() + 2 * shape.kvHeads()) * hd;
        if (Math.max(qkvWidth, config.hiddenSize()) > MAX_BLOCK_ROWS * device.multiprocessors()) {
            return Optional.of("more q/k/v or hidden rows than " + MAX_BLOCK_ROWS + " a multiprocessor");
        }
        if (shape.kvHeads() > device.multiprocessors()) {
            return Optional.of(shape.kvHeads() + " KV heads, more than the GPU's " + device.multiprocessors()
                    + " multiprocessors");
        }
        int vector = 16 / type.bytes();
        if (config.hiddenSize() % vector != 0 || config.intermediateSize() % vector != 0) {
            return Optional.of("hidden size " + config.hiddenSize() + " or intermediate size " + config.intermediateSize()
                    + " not a multiple of " + vector);
        }
        if (ringSlots(config, shape, type, device) < 2) {
            return Optional.of("rows too long for two ring slots beside the staged input and the held keys and values");
        }
        return Optional.empty();
    }

    /**
     * Copies the producer keeps in flight at most (EMBER_LAYER_STREAM_IN_FLIGHT, the ring's slots by default): the
     * memory streams at full speed with a few, and every copy past them lengthens the queues that each dependent load of
     * the consumers waits in, while a landed chunk waits in its slot for the stalls at the barriers.
     */
    private static int copiesInFlight(int ringSlots) {
        int asked = EmberKernels.positiveEnvironment("EMBER_LAYER_STREAM_IN_FLIGHT");
        return asked == 0 ? ringSlots : Math.min(asked, ringSlots);
    }

    /**
     * Bytes of the staging area: the widest product input, or attention's merge of eight warps; a multiple of 128, as
     * the held keys and values after it are copied there in bulk.
     */
    private static int stagingBytes(ModelConfig config, AttentionShape shape, DType type) {
        int widest = Math.max(config.hiddenSize(), Math.max(config.intermediateSize(), shape.heads() * shape.headDim()));
        int bytes = Math.max(widest * type.bytes(), 8 * (shape.headDim() + 2) * 4);
        return (bytes + 127) / 128 * 128;
    }

    /** Bytes of the held keys and values of a split. */
    private static int heldBytes(AttentionShape shape, DType type) {
        return 2 * KV_ROWS * shape.headDim() * type.bytes();
    }

    private static int ringSlots(ModelConfig config, AttentionShape shape, DType type, CudaDevice device) {
        int room = device.maxSharedMemoryPerBlock() - STATIC_RESERVE - stagingBytes(config, shape, type)
                - heldBytes(shape, type);
        int most = Math.min(MAX_SLOTS, room / SLOT_BYTES);
        // Fewer slots, fewer bytes in flight: the dependent round trips between phases queue behind them.
        int asked = EmberKernels.positiveEnvironment("EMBER_LAYER_STREAM_SLOTS");
        return asked == 0 ? most : Math.min(most, Math.max(2, asked));
    }

    /**
     * The launch's buffers for {@code layers}' weights and caches, or empty, saying why on stderr, where
     * {@link #unsupported} refuses the model.
     */
    static Optional<LayerStream> create(ModelConfig config, AttentionShape shape, DType type, CudaDevice device,
                                        LayerResidency layers, DeviceModel model, CudaStream stream) {
        int n = config.numLayers();
        boolean streamed = layers.streams();  // a streamed layer's addresses are only asked for as it is computed
        boolean biases = !streamed && IntStream.range(0, n).anyMatch(l -> layers.attention(l).oBias() != 0
                || layers.mlp(l).gateUpBias() != 0 || layers.mlp(l).downBias() != 0);
        Optional<String> refused = unsupported(config, shape, type, device, streamed, biases);
        if (refused.isPresent()) {
            System.err.println("[layer-stream] decode steps run layer by layer: the one launch does not take "
                    + refused.get());
            return Optional.empty();
        }
        int qkvWidth = (shape.heads() + 2 * shape.kvHeads()) * shape.headDim(), qd = shape.heads() * shape.headDim();
        int slots = ringSlots(config, shape, type, device);
        int staging = stagingBytes(config, shape, type);
        int shared = slots * SLOT_BYTES + staging + heldBytes(shape, type);
        DeviceBuffer[] buffers = new DeviceBuffer[9];  // the ninth, the trace, only with EMBER_LAYER_STREAM_TRACE=1
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(8L * POINTERS_A_LAYER * n, 8);
            for (int l = 0; l < n; l++) {
                LayerResidency.Attention a = layers.attention(l);
                LayerResidency.Mlp m = layers.mlp(l);
                long[] pointers = {a.qkv(), a.attnNorm(), a.qkvBias(), a.qNorm(), a.kNorm(), model.keys(l), model.values(l),
                        a.o(), m.ffnNorm(), m.gateUp(), m.down()};
                for (int i = 0; i < POINTERS_A_LAYER; i++) {
                    host.setAtIndex(JAVA_LONG, (long) l * POINTERS_A_LAYER + i, pointers[i]);
                }
            }
            buffers[0] = DeviceBuffer.allocate(host.byteSize());
            buffers[0].copyFromHost(host);
            buffers[1] = DeviceBuffer.allocate(4L * qkvWidth);
            buffers[2] = DeviceBuffer.allocate((long) type.bytes() * config.intermediateSize());
            buffers[3] = DeviceBuffer.allocate(4L * MAX_SPLITS * qd);
            buffers[4] = DeviceBuffer.allocate(4L * MAX_SPLITS * shape.heads() * 2);
            buffers[5] = DeviceBuffer.allocate(4L * shape.kvHeads());
            buffers[5].fill32Async(0, shape.kvHeads(), 0, stream);  // each KV head's last split sets it back to 0
            buffers[6] = DeviceBuffer.allocate((long) type.bytes() * qd);
            buffers[7] = DeviceBuffer.allocate(8);
            buffers[7].fill32Async(0, 2, 0, stream);  // the barrier's counter only grows from here
            if ("1".equals(System.getenv("EMBER_LAYER_STREAM_TRACE"))) {
                long stamps = (long) STAMPS * n * device.multiprocessors();
                buffers[8] = DeviceBuffer.allocate(8 * stamps);
                buffers[8].fill32Async(0, 2 * stamps, 0, stream);  // zero until a traced step has run
            }
            return Optional.of(new LayerStream(buffers, device.multiprocessors(), n, slots, staging, shared));
        } catch (RuntimeException e) {
            for (DeviceBuffer b : buffers) {
                if (b != null) {
                    b.close();
                }
            }
            throw e;
        }
    }

    Launch launch() {
        return launch;
    }

    /** Whether steps stamp their phases' times (EMBER_LAYER_STREAM_TRACE=1). */
    boolean traced() {
        return trace != null;
    }

    /**
     * Where the last traced step's time went (EMBER_LAYER_STREAM_TRACE=1), one line: for each of a layer's intervals
     * between stamps, the median over layers of its longest block (the phase's critical path) and of its median block, in
     * microseconds; empty without a trace or a traced step. Call with the step done.
     */
    Optional<String> phaseReport() {
        int layers = launch.numLayers();
        if (trace == null || layers < 2) {  // the last layer's final barrier has no stamp after it
            return Optional.empty();
        }
        long[] t = new long[STAMPS * layers * blocks];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(8L * t.length, 8);
            trace.copyToHost(host);
            MemorySegment.copy(host, JAVA_LONG, 0, t, 0, t.length);
        }
        return Arrays.stream(t).anyMatch(v -> v == 0) ? Optional.empty() : Optional.of(phaseReport(t, layers, blocks));
    }

    /**
     * The line {@link #phaseReport()} prints, from the stamps {@code t} ([layer][block][stamp], nanoseconds) of a step
     * of {@code layers} layers on {@code blocks} blocks: every layer but the last, whose final barrier has no stamp after
     * it.
     */
    static String phaseReport(long[] t, int layers, int blocks) {
        StringBuilder line = new StringBuilder("[layer-stream] us a layer, longest block / median block:");
        double total = 0;
        for (int i = 0; i < STAMPS; i++) {
            double[] longest = new double[layers - 1], typical = new double[layers - 1];
            for (int l = 0; l < layers - 1; l++) {
                double[] d = new double[blocks];
                for (int b = 0; b < blocks; b++) {
                    long from = t[(l * blocks + b) * STAMPS + i];
                    long to = i + 1 < STAMPS ? t[(l * blocks + b) * STAMPS + i + 1] : t[((l + 1) * blocks + b) * STAMPS];
                    d[b] = (to - from) / 1000.0;
                }
                Arrays.sort(d);
                longest[l] = d[blocks - 1];
                typical[l] = d[blocks / 2];
            }
            Arrays.sort(longest);
            Arrays.sort(typical);
            total += typical[typical.length / 2];
            line.append(String.format(Locale.ROOT, " %s %.1f / %.1f,", INTERVALS[i], longest[longest.length / 2],
                    typical[typical.length / 2]));
        }
        return line.append(String.format(Locale.ROOT, " a layer %.1f", total)).toString();
    }

    @Override
    public void close() {
        for (DeviceBuffer b : buffers) {
            if (b != null) {
                b.close();
            }
        }
    }
}
