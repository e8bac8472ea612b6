package dev.ember.backend.cuda;

import dev.ember.Progress;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.LayerWeights;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.stream.Stream;

/**
 * A model's weights on the GPU, uploaded once from the (memory-mapped) host tensors, in the form the runner
 * reads: matrices in the storage type, with q/k/v stacked into one {@code [qDim + 2 kvDim, hidden]} matrix
 * and gate/up into one {@code [2 intermediate, hidden]} matrix so that each is a single product; norm
 * weights and biases in fp32. A tensor stored in another type than the storage type is converted on the
 * way (round to nearest even).
 */
final class DeviceWeights implements AutoCloseable {
    /** Bytes per copy: the unit of progress, and the size of the conversion buffer. */
    private static final long CHUNK = 16L << 20;

    /** One decoder layer; the biases and q/k norms are null where the architecture has none. */
    record Layer(DeviceBuffer attnNorm, DeviceBuffer qkv, DeviceBuffer qkvBias, DeviceBuffer qNorm, DeviceBuffer kNorm,
                 DeviceBuffer o, DeviceBuffer oBias, DeviceBuffer ffnNorm, DeviceBuffer gateUp, DeviceBuffer down,
                 DeviceBuffer gateUpBias, DeviceBuffer downBias) {
        Stream<DeviceBuffer> buffers() {
            return Stream.of(attnNorm, qkv, qkvBias, qNorm, kNorm, o, oBias, ffnNorm, gateUp, down, gateUpBias, downBias)
                    .filter(Objects::nonNull);
        }
    }

    final DType type;
    final DeviceBuffer embedding;
    final DeviceBuffer finalNorm;
    /** The output projection: the embedding buffer itself when the model ties them. */
    final DeviceBuffer lmHead;
    final List<Layer> layers;
    /** Whether closing frees the buffers: false for a view of another model's ({@link #firstLayers}). */
    private final boolean owner;

    private DeviceWeights(DType type, DeviceBuffer embedding, DeviceBuffer finalNorm, DeviceBuffer lmHead, List<Layer> layers,
                          boolean owner) {
        this.type = type;
        this.embedding = embedding;
        this.finalNorm = finalNorm;
        this.lmHead = lmHead;
        this.layers = List.copyOf(layers);
        this.owner = owner;
    }

    private DeviceWeights(DType type, DeviceBuffer embedding, DeviceBuffer finalNorm, DeviceBuffer lmHead, List<Layer> layers) {
        this(type, embedding, finalNorm, lmHead, layers, true);
    }

    /**
     * The first {@code count} layers with this model's embedding, final norm and output projection, in the same device
     * memory (a self-speculative draft's weights); closing the view frees nothing.
     */
    DeviceWeights firstLayers(int count) {
        return new DeviceWeights(type, embedding, finalNorm, lmHead, layers.subList(0, count), false);
    }

    /** The storage type on the GPU: the model's own for bf16/fp16 weights and fp32 for fp32 ones. */
    static DType storageType(Model model) {
        return model.layers().getFirst().wq().dtype();
    }

    /** Device bytes the weights of a model of shape {@code c} take, matrices stored as {@code type}. */
    static long deviceBytes(ModelConfig c, DType type) {
        long h = c.hiddenSize(), qkv = c.qDim() + 2L * c.kvDim(), ff = c.intermediateSize();
        long matrices = c.vocabSize() * h * (c.tieWordEmbeddings() ? 1 : 2)
                + c.numLayers() * (qkv * h + h * c.qDim() + 2 * ff * h + h * ff);
        Biases b = c.biases();
        long vectors = h + c.numLayers() * (2 * h + (b.qkv() ? qkv : 0) + (b.output() ? h : 0) + (b.mlp() ? 2 * ff + h : 0)
                + (c.qkNorm() ? 2L * c.headDim() : 0));
        return matrices * type.bytes() + vectors * Float.BYTES;
    }

    /** Device bytes of the weights that stay resident while the layers stream: embedding, output projection, final norm. */
    static long headBytes(ModelConfig c, DType type) {
        return (long) c.vocabSize() * c.hiddenSize() * (c.tieWordEmbeddings() ? 1 : 2) * type.bytes() + (long) c.hiddenSize() * Float.BYTES;
    }

    /**
     * Weights of shape {@code c} made on the GPU: uniform in ±sqrt(3/in) for linear layers (unit-variance
     * outputs for unit-variance inputs, so activations stay in a realistic range at any depth), ±1 for the
     * embedding, 1 ± 0.1 for norms and ±0.1 for biases, the same for the same seed.
     */
    static DeviceWeights random(ModelConfig c, DType type, long seed, EmberKernels kernels, CudaStream stream) {
        Filler f = new Filler(seed, kernels, stream);
        try {
            long h = c.hiddenSize(), qkv = c.qDim() + 2L * c.kvDim(), ff = c.intermediateSize();
            DeviceBuffer embedding = f.uniform(type, c.vocabSize() * h, 0f, 1f);
            DeviceBuffer lmHead = c.tieWordEmbeddings() ? embedding : f.linear(type, c.vocabSize(), h);
            List<Layer> layers = new ArrayList<>(c.numLayers());
            Biases b = c.biases();
            for (int i = 0; i < c.numLayers(); i++) {
                layers.add(new Layer(f.norm(h), f.linear(type, qkv, h), b.qkv() ? f.bias(qkv) : null,
                        c.qkNorm() ? f.norm(c.headDim()) : null, c.qkNorm() ? f.norm(c.headDim()) : null,
                        f.linear(type, h, c.qDim()), b.output() ? f.bias(h) : null, f.norm(h), f.linear(type, 2 * ff, h),
                        f.linear(type, h, ff), b.mlp() ? f.bias(2 * ff) : null, b.mlp() ? f.bias(h) : null));
            }
            DeviceBuffer finalNorm = f.norm(h);
            stream.synchronize();
            return new DeviceWeights(type, embedding, finalNorm, lmHead, layers);
        } catch (RuntimeException e) {
            f.made.forEach(DeviceBuffer::close);
            throw e;
        }
    }

    /** Allocates buffers and fills each with its own stream of random numbers. */
    private static final class Filler {
        final List<DeviceBuffer> made = new ArrayList<>();
        private final EmberKernels kernels;
        private final CudaStream stream;
        private long nextSeed;

        Filler(long seed, EmberKernels kernels, CudaStream stream) {
            this.nextSeed = seed * 0x632BE59BD9B4E019L;
            this.kernels = kernels;
            this.stream = stream;
        }

        DeviceBuffer uniform(DType type, long elements, float center, float halfWidth) {
            DeviceBuffer b = DeviceBuffer.allocate(elements * type.bytes());
            made.add(b);
            kernels.fillUniform(stream, type, b.address(), elements, center, halfWidth, nextSeed);
            nextSeed += 0x9E3779B97F4A7C15L;
            return b;
        }

        DeviceBuffer linear(DType type, long out, long in) {
            return uniform(type, out * in, 0f, (float) Math.sqrt(3.0 / in));
        }

        DeviceBuffer norm(long n) {
            return uniform(DType.F32, n, 1f, 0.1f);
        }

        DeviceBuffer bias(long n) {
            return uniform(DType.F32, n, 0f, 0.1f);
        }
    }

    /** Uploads every tensor of {@code model}, reporting bytes done to {@code progress}. */
    static DeviceWeights upload(Model model, DType type, Progress progress) {
        return upload(model, type, true, progress);
    }

    /**
     * Uploads what stays resident while the layers stream: the embedding, the final norm and the output projection
     * ({@link #layers} is empty).
     */
    static DeviceWeights uploadHead(Model model, DType type, Progress progress) {
        return upload(model, type, false, progress);
    }

    private static DeviceWeights upload(Model model, DType type, boolean withLayers, Progress progress) {
        long headBytes = model.embedding().byteSize() + model.finalNorm().byteSize()
                + (model.lmHead() == model.embedding() ? 0 : model.lmHead().byteSize());
        try (Uploader up = new Uploader(withLayers ? model.weightBytes() : headBytes, progress)) {
            List<DeviceBuffer> made = up.made;
            try {
                ModelConfig c = model.config();
                DeviceBuffer embedding = up.matrix(type, model.embedding());
                DeviceBuffer finalNorm = up.vector(model.finalNorm());
                DeviceBuffer lmHead = model.lmHead() == model.embedding() ? embedding : up.matrix(type, model.lmHead());
                List<Layer> layers = new ArrayList<>(c.numLayers());
                for (LayerWeights w : withLayers ? model.layers() : List.<LayerWeights>of()) {
                    layers.add(new Layer(up.vector(w.attnNorm()), up.matrix(type, w.wq(), w.wk(), w.wv()),
                            up.vector(w.bq(), w.bk(), w.bv()),
                            up.vector(w.qNorm()), up.vector(w.kNorm()), up.matrix(type, w.wo()), up.vector(w.bo()),
                            up.vector(w.ffnNorm()), up.matrix(type, w.wGate(), w.wUp()), up.matrix(type, w.wDown()),
                            up.vector(w.bGate(), w.bUp()), up.vector(w.bDown())));
                }
                return new DeviceWeights(type, embedding, finalNorm, lmHead, layers);
            } catch (RuntimeException e) {
                made.forEach(DeviceBuffer::close);
                throw e;
            }
        }
    }

    /** Copies host tensors into fresh device buffers, converting the element type where it differs. */
    private static final class Uploader implements AutoCloseable {
        final List<DeviceBuffer> made = new ArrayList<>();
        private final Arena arena = Arena.ofConfined();
        private final MemorySegment staging = arena.allocate(CHUNK, 64);
        private final long total;
        private final Progress progress;
        private long done;

        Uploader(long total, Progress progress) {
            this.total = total;
            this.progress = progress;
        }

        /** The tensors stacked along their first dimension, as one matrix of {@code type}. */
        DeviceBuffer matrix(DType type, Tensor... parts) {
            return stacked(type, parts);
        }

        /** A norm weight or bias (several stacked, for the fused q/k/v bias) in fp32; null for a null tensor. */
        DeviceBuffer vector(Tensor... parts) {
            return parts[0] == null ? null : stacked(DType.F32, parts);
        }

        private DeviceBuffer stacked(DType type, Tensor... parts) {
            long elements = 0;
            for (Tensor t : parts) {
                elements += t.elementCount();
            }
            DeviceBuffer buffer = DeviceBuffer.allocate(elements * type.bytes());
            made.add(buffer);
            long offset = 0;
            for (Tensor t : parts) {
                copy(t, type, buffer, offset);
                offset += t.elementCount() * type.bytes();
            }
            return buffer;
        }

        private void copy(Tensor t, DType type, DeviceBuffer buffer, long offset) {
            MemorySegment src = t.data();
            if (t.dtype() == type && src.isNative()) {
                for (long at = 0; at < src.byteSize(); at += CHUNK) {
                    long n = Math.min(CHUNK, src.byteSize() - at);
                    buffer.copyFromHost(src.asSlice(at, n), offset + at);
                    advance(n);
                }
                return;
            }
            long perChunk = CHUNK / Math.max(type.bytes(), t.dtype().bytes());
            for (long first = 0; first < t.elementCount(); first += perChunk) {
                long n = Math.min(perChunk, t.elementCount() - first);
                t.dtype().convert(src, first, type, staging, 0, n);
                buffer.copyFromHost(staging.asSlice(0, n * type.bytes()), offset + first * type.bytes());
                advance(n * t.dtype().bytes());
            }
        }

        private void advance(long bytes) {
            done += bytes;
            progress.update("uploading weights", done, total);
        }

        @Override
        public void close() {
            arena.close();
        }
    }

    @Override
    public void close() {
        if (!owner) {
            return;
        }
        for (Layer l : layers) {
            l.buffers().forEach(DeviceBuffer::close);
        }
        embedding.close();
        finalNorm.close();
        lmHead.close();  // closing twice (tied embeddings) is harmless
    }
}
