package dev.ember.backend.streaming;

/**
 * The numbers a {@link StreamingSchedule} works with.
 *
 * @param layers             decoder layers of the model
 * @param attentionBytes     bytes of one attention group as the runner reads it ({@link GroupLayout})
 * @param mlpBytes           bytes of one MLP group
 * @param windowLayers       layers the device window holds: as many slots for attention groups, and for MLP groups
 * @param prefetchDistance   how many layers past the one computing a copy may be for
 * @param groupPrefetchDepth how many groups may be copied ahead of the one computing
 * @param warmupLayers       layers copied before the first step, past the prefetch limits (within the window)
 * @param cachedLayers       the first layers, held packed in the pinned host cache; the others go through staging
 * @param stagingBuffers     buffers of the staging ring (used in turn, so one fills while another is copied)
 * @param stagingBufferBytes bytes of each staging buffer
 */
public record ScheduleShape(int layers, long attentionBytes, long mlpBytes, int windowLayers, int prefetchDistance,
                            int groupPrefetchDepth, int warmupLayers, int cachedLayers, int stagingBuffers,
                            long stagingBufferBytes) {
    public ScheduleShape {
        if (layers < 1 || windowLayers < 1 || prefetchDistance < 1 || groupPrefetchDepth < 1 || warmupLayers < 0
                || cachedLayers < 0 || cachedLayers > layers || stagingBuffers < 1 || stagingBufferBytes < 1) {
            throw new IllegalArgumentException("invalid streaming schedule " + this);
        }
    }

    /** Bytes of a group of {@code kind}. */
    public long bytes(WeightGroup.Kind kind) {
        return kind == WeightGroup.Kind.ATTENTION ? attentionBytes : mlpBytes;
    }

    /** Bytes every step streams: all its layers, whichever tier they come from. */
    public long bytesPerStep() {
        return layers * (attentionBytes + mlpBytes);
    }

    /**
     * Groups issued and not yet released at most: the window's slots, fewer where the prefetch distance (in layers
     * past the one computing) or depth (in groups) allow fewer copies ahead of the group computing.
     */
    public int groupsInFlight() {
        return Math.min(2 * windowLayers, Math.min(1 + groupPrefetchDepth, 2 + 2 * prefetchDistance));
    }
}
