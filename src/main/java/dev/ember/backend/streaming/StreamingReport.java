package dev.ember.backend.streaming;

/**
 * What a streaming runner has done so far, for benchmarks: its plan, the bytes copied into the window (the part that
 * went through the staging ring) and the most groups the window held at once.
 */
public record StreamingReport(StreamingPlan plan, String source, long bytesCopied, long bytesStaged, int mostGroupsInWindow) {
}
