package dev.ember.backend.cpu;

import dev.ember.Progress;
import dev.ember.backend.streaming.Copier;
import dev.ember.backend.streaming.DirectGroupReader;
import dev.ember.backend.streaming.GroupLayout;
import dev.ember.backend.streaming.GroupLayout.Role;
import dev.ember.backend.streaming.GroupReader;
import dev.ember.backend.streaming.MappedGroupReader;
import dev.ember.backend.streaming.StreamingMode;
import dev.ember.backend.streaming.StreamingPlan;
import dev.ember.backend.streaming.StreamingReport;
import dev.ember.backend.streaming.StreamingSchedule;
import dev.ember.backend.streaming.WeightGroup;
import dev.ember.backend.streaming.WindowSlot;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.function.Consumer;

/**
 * The CPU's weight streaming: its "device" is a window of group buffers in the runner's working memory, filled by
 * the same {@link StreamingSchedule} as a GPU's, from a host cache of packed groups or through a staging ring from
 * the mapped files or the disk. Its copies are plain memory copies, done when issued, so every wait is nothing.
 * It exists so that every mode runs, and gives the same tokens as {@code full}, where there is no GPU.
 */
final class StreamedLayers implements LayerResidency, Copier {
    private final ModelConfig config;
    private final GroupLayout layout;
    private final StreamingPlan plan;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment[] attentionSlots, mlpSlots;
    /** Packed groups of the cached layers, by {@link WeightGroup#order()}. */
    private final MemorySegment[] cache;
    private final MemorySegment[] staging;
    /** Where each staging buffer's pieces lie, from its last fill. */
    private final List<List<GroupReader.Placement>> staged;
    private final GroupReader reader;
    private final StreamingSchedule schedule;

    StreamedLayers(Model model, GroupLayout layout, StreamingPlan plan, Consumer<String> log, Consumer<String> verbose,
                   Progress progress) {
        this.config = model.config();
        this.layout = layout;
        this.plan = plan;
        var shape = plan.shape();
        this.attentionSlots = allocate(shape.windowLayers(), layout.bytes(WeightGroup.Kind.ATTENTION));
        this.mlpSlots = allocate(shape.windowLayers(), layout.bytes(WeightGroup.Kind.MLP));
        this.staging = allocate(shape.stagingBuffers(), shape.stagingBufferBytes() + GroupReader.STAGING_SLACK);
        this.staged = new ArrayList<>(Collections.nCopies(shape.stagingBuffers(), List.of()));
        MappedGroupReader mapped = new MappedGroupReader(model, layout);
        this.cache = new MemorySegment[2 * shape.cachedLayers()];
        for (int i = 0; i < cache.length; i++) {
            WeightGroup g = WeightGroup.inOrder(i, config.numLayers());
            cache[i] = arena.allocate(layout.bytes(g.kind()), DirectGroupReader.ALIGNMENT);
            mapped.read(g, 0, cache[i]);
            progress.update("packing the host cache", i + 1, cache.length);
        }
        this.reader = plan.mode() == StreamingMode.MIXED
                ? new DirectGroupReader(model, layout, shape.stagingBufferBytes(), log) : mapped;
        this.schedule = new StreamingSchedule(shape, this, verbose);
    }

    private MemorySegment[] allocate(int count, long bytes) {
        MemorySegment[] segments = new MemorySegment[count];
        for (int i = 0; i < count; i++) {
            segments[i] = arena.allocate(bytes, DirectGroupReader.ALIGNMENT);
        }
        return segments;
    }

    private MemorySegment slot(WindowSlot slot) {
        return (slot.kind() == WeightGroup.Kind.ATTENTION ? attentionSlots : mlpSlots)[slot.index()];
    }

    @Override
    public Attention attention(int layer) {
        MemorySegment s = slot(schedule.acquire(new WeightGroup(layer, WeightGroup.Kind.ATTENTION)));
        int h = config.hiddenSize(), qd = config.qDim(), kvd = config.kvDim();
        GroupLayout.Part qkv = layout.part(Role.QKV);
        DType type = layout.storage();
        long qBytes = (long) qd * h * type.bytes(), kvBytes = (long) kvd * h * type.bytes();
        Biases biases = config.biases();
        float[] qkvBias = biases.qkv() ? floats(s, layout.part(Role.QKV_BIAS)) : null;
        return new Attention(floats(s, layout.part(Role.ATTN_NORM)),
                matrix(s, qkv.offset(), qd, h), matrix(s, qkv.offset() + qBytes, kvd, h),
                matrix(s, qkv.offset() + qBytes + kvBytes, kvd, h), matrix(s, layout.part(Role.O).offset(), h, qd),
                biases.qkv() ? Arrays.copyOfRange(qkvBias, 0, qd) : null,
                biases.qkv() ? Arrays.copyOfRange(qkvBias, qd, qd + kvd) : null,
                biases.qkv() ? Arrays.copyOfRange(qkvBias, qd + kvd, qd + 2 * kvd) : null,
                biases.output() ? floats(s, layout.part(Role.O_BIAS)) : null,
                config.qkNorm() ? floats(s, layout.part(Role.Q_NORM)) : null,
                config.qkNorm() ? floats(s, layout.part(Role.K_NORM)) : null);
    }

    @Override
    public void attentionDone(int layer) {
        schedule.release(new WeightGroup(layer, WeightGroup.Kind.ATTENTION));
    }

    @Override
    public Mlp mlp(int layer) {
        MemorySegment s = slot(schedule.acquire(new WeightGroup(layer, WeightGroup.Kind.MLP)));
        int h = config.hiddenSize(), ff = config.intermediateSize();
        long gateUp = layout.part(Role.GATE_UP).offset();
        boolean biased = config.biases().mlp();
        float[] gateUpBias = biased ? floats(s, layout.part(Role.GATE_UP_BIAS)) : null;
        return new Mlp(floats(s, layout.part(Role.FFN_NORM)), matrix(s, gateUp, ff, h),
                matrix(s, gateUp + (long) ff * h * layout.storage().bytes(), ff, h),
                matrix(s, layout.part(Role.DOWN).offset(), h, ff),
                biased ? Arrays.copyOfRange(gateUpBias, 0, ff) : null,
                biased ? Arrays.copyOfRange(gateUpBias, ff, 2 * ff) : null,
                biased ? floats(s, layout.part(Role.DOWN_BIAS)) : null);
    }

    @Override
    public void mlpDone(int layer) {
        schedule.release(new WeightGroup(layer, WeightGroup.Kind.MLP));
    }


    private WeightMatrix matrix(MemorySegment slot, long offset, int rows, int cols) {
        DType type = layout.storage();
        return WeightMatrix.of(new Tensor("window", type, new long[] {rows, cols},
                slot.asSlice(offset, (long) rows * cols * type.bytes())), arena);
    }

    private static float[] floats(MemorySegment slot, GroupLayout.Part part) {
        float[] out = new float[(int) part.elements()];
        for (int i = 0; i < out.length; i++) {
            out[i] = DType.F32.get(slot, part.offset() / Float.BYTES + i);
        }
        return out;
    }

    StreamingReport report() {
        return new StreamingReport(plan, reader.describe(), schedule.bytesCopied(), schedule.bytesStaged(), schedule.mostGroupsInWindow());
    }

    // The copies, done as they are issued: the CPU computes only after its caller asked for the group.

    @Override
    public void copiesWaitForRelease(WindowSlot slot) {
    }

    @Override
    public void copyCached(WeightGroup group, WindowSlot slot) {
        MemorySegment packed = cache[group.order()];
        MemorySegment.copy(packed, 0, slot(slot), 0, packed.byteSize());
    }

    @Override
    public void awaitStaging(int buffer) {
    }

    @Override
    public void stage(int buffer, WeightGroup group, long from, long length) {
        staged.set(buffer, reader.stage(group, from, length, staging[buffer]));
    }

    @Override
    public void copyStaged(int buffer, WindowSlot slot, long offset, long length) {
        for (GroupReader.Placement p : staged.get(buffer)) {
            MemorySegment.copy(staging[buffer], p.bufferOffset(), slot(slot), p.groupOffset(), p.length());
        }
    }

    @Override
    public void slotFilled(WindowSlot slot) {
    }

    @Override
    public void computeWaitsForFill(WindowSlot slot) {
    }

    @Override
    public void computeReleases(WindowSlot slot) {
    }

    @Override
    public void close() {
        reader.close();
        arena.close();
    }
}
