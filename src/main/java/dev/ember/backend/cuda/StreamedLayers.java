package dev.ember.backend.cuda;

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
import dev.ember.model.Model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.ToLongFunction;

/**
 * The GPU's weight streaming: a window of device slots ({@code --gpu-cached-layers} for attention groups and as many for
 * MLP groups), filled on a copy stream of its own from pinned host memory (the packed host cache, or the staging ring
 * that the host fills from the mapped files or the disk), as the shared {@link StreamingSchedule} orders. The compute
 * stream waits for a group's copy with {@code cuStreamWaitEvent} and records, after the group's last kernel, the event
 * the copy stream waits on before it refills the slot; the host waits only before refilling a staging buffer whose
 * copy may still run. Copies and compute overlap; nothing in a step waits on the host.
 */
final class StreamedLayers implements LayerResidency, Copier {
    private final GroupLayout layout;
    private final StreamingPlan plan;
    private final CudaStream compute;
    private final CudaStream copies;
    private final DeviceBuffer[] attentionSlots, mlpSlots;
    /** Where each slot's parts lie: the slots stay where they are, so this is worked out once. */
    private final Attention[] attentionViews;
    private final Mlp[] mlpViews;
    private final CudaEvent[] attentionFilled, mlpFilled, attentionReleased, mlpReleased;
    /** Packed groups of the cached layers, by {@link WeightGroup#order()}. */
    private final PinnedBuffer[] cache;
    private final PinnedBuffer[] staging;
    private final CudaEvent[] stagingCopied;
    /** Where each staging buffer's pieces lie, from its last fill. */
    private final List<List<GroupReader.Placement>> staged;
    private final GroupReader reader;
    private final StreamingSchedule schedule;
    private final List<AutoCloseable> owned = new ArrayList<>();

    StreamedLayers(Model model, GroupLayout layout, StreamingPlan plan, CudaStream compute, Consumer<String> log,
                   Consumer<String> verbose, Progress progress) {
        this.layout = layout;
        this.plan = plan;
        this.compute = compute;
        var shape = plan.shape();
        int window = shape.windowLayers();
        try {
            this.copies = own(CudaStream.create());
            this.attentionSlots = slots(window, layout.bytes(WeightGroup.Kind.ATTENTION));
            this.mlpSlots = slots(window, layout.bytes(WeightGroup.Kind.MLP));
            this.attentionViews = Arrays.stream(attentionSlots).map(slot -> attentionAt(slot.address())).toArray(Attention[]::new);
            this.mlpViews = Arrays.stream(mlpSlots).map(slot -> mlpAt(slot.address())).toArray(Mlp[]::new);
            this.attentionFilled = events(window);
            this.mlpFilled = events(window);
            this.attentionReleased = events(window);
            this.mlpReleased = events(window);
            this.staging = new PinnedBuffer[shape.stagingBuffers()];
            for (int i = 0; i < staging.length; i++) {
                staging[i] = own(PinnedBuffer.allocateAligned(shape.stagingBufferBytes() + GroupReader.STAGING_SLACK,
                        DirectGroupReader.ALIGNMENT));
            }
            this.stagingCopied = events(shape.stagingBuffers());
            this.staged = new ArrayList<>(Collections.nCopies(shape.stagingBuffers(), List.of()));
            MappedGroupReader mapped = new MappedGroupReader(model, layout);
            this.cache = new PinnedBuffer[2 * shape.cachedLayers()];
            for (int i = 0; i < cache.length; i++) {
                WeightGroup g = WeightGroup.inOrder(i, shape.layers());
                cache[i] = own(PinnedBuffer.allocate(layout.bytes(g.kind())));
                mapped.read(g, 0, cache[i].segment());
                progress.update("packing the pinned host cache", i + 1, cache.length);
            }
            this.reader = own(plan.mode() == StreamingMode.MIXED
                    ? new DirectGroupReader(model, layout, shape.stagingBufferBytes(), log) : mapped);
            this.schedule = new StreamingSchedule(shape, this, verbose);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private <T extends AutoCloseable> T own(T resource) {
        owned.add(resource);
        return resource;
    }

    private DeviceBuffer[] slots(int count, long bytes) {
        DeviceBuffer[] slots = new DeviceBuffer[count];
        for (int i = 0; i < count; i++) {
            slots[i] = own(DeviceBuffer.allocate(bytes));
        }
        return slots;
    }

    private CudaEvent[] events(int count) {
        CudaEvent[] events = new CudaEvent[count];
        for (int i = 0; i < count; i++) {
            events[i] = own(CudaEvent.forOrdering());
        }
        return events;
    }

    private boolean attention(WindowSlot slot) {
        return slot.kind() == WeightGroup.Kind.ATTENTION;
    }

    private DeviceBuffer buffer(WindowSlot slot) {
        return (attention(slot) ? attentionSlots : mlpSlots)[slot.index()];
    }

    /** The device address of the part of this role of a group at {@code base}; 0 where the architecture has none. */
    private long part(long base, Role role) {
        return layout.find(role).map(p -> base + p.offset()).orElse(0L);
    }

    private Attention attentionAt(long base) {
        return new Attention(part(base, Role.ATTN_NORM), part(base, Role.QKV), part(base, Role.QKV_BIAS),
                part(base, Role.Q_NORM), part(base, Role.K_NORM), part(base, Role.O), part(base, Role.O_BIAS));
    }

    private Mlp mlpAt(long base) {
        return new Mlp(part(base, Role.FFN_NORM), part(base, Role.GATE_UP), part(base, Role.DOWN),
                part(base, Role.GATE_UP_BIAS), part(base, Role.DOWN_BIAS));
    }

    @Override
    public Attention attention(int layer) {
        return attentionViews[schedule.acquire(new WeightGroup(layer, WeightGroup.Kind.ATTENTION)).index()];
    }

    @Override
    public void attentionDone(int layer) {
        schedule.release(new WeightGroup(layer, WeightGroup.Kind.ATTENTION));
    }

    @Override
    public Mlp mlp(int layer) {
        return mlpViews[schedule.acquire(new WeightGroup(layer, WeightGroup.Kind.MLP)).index()];
    }

    @Override
    public void mlpDone(int layer) {
        schedule.release(new WeightGroup(layer, WeightGroup.Kind.MLP));
    }


    @Override
    public boolean streams() {
        return true;
    }

    @Override
    public long[] attentionAddresses(ToLongFunction<Attention> matrix) {
        return Arrays.stream(attentionViews).mapToLong(matrix).toArray();
    }

    @Override
    public long[] mlpAddresses(ToLongFunction<Mlp> matrix) {
        return Arrays.stream(mlpViews).mapToLong(matrix).toArray();
    }

    StreamingReport report() {
        return new StreamingReport(plan, reader.describe(), schedule.bytesCopied(), schedule.bytesStaged(), schedule.mostGroupsInWindow());
    }

    // The copies, as the schedule orders them.

    @Override
    public void copiesWaitForRelease(WindowSlot slot) {
        copies.waitFor((attention(slot) ? attentionReleased : mlpReleased)[slot.index()]);
    }

    @Override
    public void copyCached(WeightGroup group, WindowSlot slot) {
        PinnedBuffer packed = cache[group.order()];
        buffer(slot).copyFromHostAsync(packed.segment(), 0, copies);
    }

    @Override
    public void awaitStaging(int buffer) {
        stagingCopied[buffer].synchronize();
    }

    @Override
    public void stage(int buffer, WeightGroup group, long from, long length) {
        staged.set(buffer, reader.stage(group, from, length, staging[buffer].segment()));
    }

    /** One copy per piece: pieces read straight from the disk lie apart in the buffer, each where its block began. */
    @Override
    public void copyStaged(int buffer, WindowSlot slot, long offset, long length) {
        for (GroupReader.Placement p : staged.get(buffer)) {
            buffer(slot).copyFromHostAsync(staging[buffer].segment().asSlice(p.bufferOffset(), p.length()), p.groupOffset(), copies);
        }
        stagingCopied[buffer].record(copies);
    }

    @Override
    public void slotFilled(WindowSlot slot) {
        (attention(slot) ? attentionFilled : mlpFilled)[slot.index()].record(copies);
    }

    @Override
    public void computeWaitsForFill(WindowSlot slot) {
        compute.waitFor((attention(slot) ? attentionFilled : mlpFilled)[slot.index()]);
    }

    @Override
    public void computeReleases(WindowSlot slot) {
        (attention(slot) ? attentionReleased : mlpReleased)[slot.index()].record(compute);
    }

    /**
     * Waits for the compute that reads the window and the copies in flight (the next step's prefetches), then frees the
     * window, the host memory and the stream.
     */
    @Override
    public void close() {
        compute.synchronize();
        if (copies != null) {
            copies.synchronize();
        }
        for (int i = owned.size() - 1; i >= 0; i--) {
            try {
                owned.get(i).close();
            } catch (Exception e) {
                throw new IllegalStateException("closing the streaming window", e);
            }
        }
        owned.clear();
    }
}
