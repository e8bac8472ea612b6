package dev.ember.backend;

import java.util.List;

/**
 * Records every kernel the device runs from its opening ({@link Backend#recordKernels}) until {@link #stop}: the
 * device's own start and end of each, captured graphs' nodes included, so that a timeline shows where a step's time
 * goes between and inside kernels, with programmatic dependent launch overlapping them as it does in a real run.
 */
public interface KernelRecorder extends AutoCloseable {

    /** Stops recording and returns the kernels run since the recorder opened, in the order they started. */
    List<KernelSpan> stop();

    /** Stops recording if {@link #stop} was not called, dropping what was recorded. */
    @Override
    void close();
}
