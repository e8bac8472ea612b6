package dev.ember.backend.cuda;

import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.sampling.SamplingParams;

/**
 * Per-step device buffers and their pinned host mirrors, for up to {@code rows} tokens in {@code chunks} sequences.
 * They are replaced only by larger ones, never per step, because a captured decode graph holds their addresses;
 * {@link #bytes} lets the runner check that a size fits before it allocates it.
 */
final class StepBuffers implements AutoCloseable {
    final int rows, chunks;
    final DeviceBuffer x, normed, qkv, q, attention, gateUp, gated, last, logits, partialOut, partialMaxSum, meta,
            sampled;
    /**
     * token_logprobs' outputs: per output row its token's logprob, and its top ids and logprobs at
     * {@code row * SamplingParams.MAX_LOGPROBS}.
     */
    final DeviceBuffer logprob, topIds, topLogprobs;
    /** The step's token masks (mask_logits): up to one an output row, {@link StepLayout#maskInts} ints each. */
    final DeviceBuffer tokenMasks;
    final PinnedBuffer hostLogits;

    StepBuffers(ModelConfig config, AttentionShape shape, DType type, int rows, int chunks, int maxStride) {
        this.rows = rows;
        this.chunks = chunks;
        int h = config.hiddenSize(), qd = config.qDim(), kvd = config.kvDim(), ff = config.intermediateSize();
        int t = type.bytes();
        x = DeviceBuffer.allocate(4L * rows * h);
        normed = DeviceBuffer.allocate((long) t * rows * h);
        qkv = DeviceBuffer.allocate(4L * rows * (qd + 2L * kvd));
        q = DeviceBuffer.allocate((long) t * rows * qd);
        attention = DeviceBuffer.allocate((long) t * rows * qd);
        gateUp = DeviceBuffer.allocate(2L * t * rows * ff);
        gated = DeviceBuffer.allocate((long) t * rows * ff);
        last = DeviceBuffer.allocate((long) t * chunks * h);
        logits = DeviceBuffer.allocate(4L * chunks * config.vocabSize());
        partialOut = DeviceBuffer.allocate(4 * EmberKernels.decodePartialFloats(chunks, shape, EmberKernels.MAX_DECODE_SPLITS));
        partialMaxSum = DeviceBuffer.allocate(4 * EmberKernels.decodeMaxSumFloats(chunks, shape, EmberKernels.MAX_DECODE_SPLITS));
        meta = DeviceBuffer.allocate(4 * StepLayout.capacityInts(rows, chunks, maxStride));
        sampled = DeviceBuffer.allocate(4L * chunks);
        logprob = DeviceBuffer.allocate(4L * chunks);
        topIds = DeviceBuffer.allocate(4L * chunks * SamplingParams.MAX_LOGPROBS);
        topLogprobs = DeviceBuffer.allocate(4L * chunks * SamplingParams.MAX_LOGPROBS);
        tokenMasks = DeviceBuffer.allocate(4L * chunks * StepLayout.maskInts(config.vocabSize()));
        hostLogits = PinnedBuffer.allocate(logits.byteSize());
    }

    static long bytes(ModelConfig c, AttentionShape s, DType type, int rows, int chunks, int maxStride) {
        int t = type.bytes();
        long perRow = 4L * c.hiddenSize() + (long) t * c.hiddenSize() + 4L * (c.qDim() + 2L * c.kvDim())
                + 2L * t * c.qDim() + 3L * t * c.intermediateSize();
        long perChunk = (long) t * c.hiddenSize() + 4L * c.vocabSize() + 8 + 8L * SamplingParams.MAX_LOGPROBS
                + 4L * StepLayout.maskInts(c.vocabSize())
                + 4 * (EmberKernels.decodePartialFloats(1, s, EmberKernels.MAX_DECODE_SPLITS) + EmberKernels.decodeMaxSumFloats(1, s, EmberKernels.MAX_DECODE_SPLITS));
        return perRow * rows + perChunk * chunks + 4 * StepLayout.capacityInts(rows, chunks, maxStride);
    }

    long meta(int intOffset) {
        return meta.address() + 4L * intOffset;
    }

    @Override
    public void close() {
        for (DeviceBuffer b : new DeviceBuffer[] {x, normed, qkv, q, attention, gateUp, gated, last, logits,
                partialOut, partialMaxSum, meta, sampled, logprob, topIds, topLogprobs, tokenMasks}) {
            b.close();
        }
        hostLogits.close();
    }
}
