package dev.ember.backend.cuda;

import java.lang.foreign.Arena;

/**
 * Where the blocks that share a greedy row's vocabulary leave their shares (sampling.cu {@code ArgmaxSplits}): a best
 * value and its index per block, and a count of arrivals per row, for up to {@code rows} rows of up to
 * {@link EmberKernels#MAX_ARGMAX_SHARES} blocks each. The counts start at 0 here; the kernel leaves them at 0, so one
 * allocation serves every step, captured graphs included.
 */
final class ArgmaxSplits implements AutoCloseable {
    final int rows;
    final DeviceBuffer best, index, arrivals;

    ArgmaxSplits(int rows) {
        this.rows = rows;
        long shares = (long) rows * EmberKernels.MAX_ARGMAX_SHARES;
        best = DeviceBuffer.allocate(4 * shares);
        index = DeviceBuffer.allocate(4 * shares);
        arrivals = DeviceBuffer.allocate(4L * rows);
        try (Arena arena = Arena.ofConfined()) {
            arrivals.copyFromHost(arena.allocate(4L * rows));  // zeros
        }
    }

    /** Device bytes of the scratch for {@code rows} rows. */
    static long bytes(int rows) {
        return 8L * rows * EmberKernels.MAX_ARGMAX_SHARES + 4L * rows;
    }

    @Override
    public void close() {
        best.close();
        index.close();
        arrivals.close();
    }
}
