package dev.ember.backend;

import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;

/**
 * A group of ranks that are threads of this process: each operation is a barrier at which every rank has published its
 * array, the work (each rank sums its own slice of an all-reduce, in rank order, so every rank gets the same bits),
 * and a barrier after which the arrays may be reused. For checking tensor parallel on a CPU, not for speed.
 */
public final class InProcessCollective {
    private final int size;
    private final CyclicBarrier barrier;
    private final float[][] published;
    private final int[] widths;
    private float[] sums = new float[0];
    /** Set by a rank that failed: every operation, waiting or to come, fails until {@link Collective#reset}. */
    private volatile boolean aborted;

    public InProcessCollective(int size) {
        if (size < 1) {
            throw new IllegalArgumentException("a group has at least one rank, not " + size);
        }
        this.size = size;
        this.barrier = new CyclicBarrier(size);
        this.published = new float[size][];
        this.widths = new int[size];
    }

    /** Rank {@code rank}'s end of the group, for the thread that computes that rank. */
    public Collective rank(int rank) {
        if (rank < 0 || rank >= size) {
            throw new IllegalArgumentException("rank " + rank + " of a group of " + size);
        }
        return new Rank(rank);
    }

    private void await() {
        if (aborted) {
            throw new Collective.Aborted("another rank of the group failed", null);
        }
        try {
            barrier.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            barrier.reset();
            throw new IllegalStateException("interrupted in a collective operation", e);
        } catch (BrokenBarrierException e) {
            throw new Collective.Aborted("another rank of the group failed", e);
        }
    }

    private final class Rank implements Collective {
        private final int rank;

        Rank(int rank) {
            this.rank = rank;
        }

        @Override
        public int rank() {
            return rank;
        }

        @Override
        public int size() {
            return size;
        }

        @Override
        public void allReduceSum(float[] data, int offset, int length) {
            if (size == 1) {
                return;
            }
            if (rank == 0 && sums.length < length) {
                sums = new float[length];  // before the barrier: every rank reads the field after it
            }
            published[rank] = data;
            await();
            float[] total = sums;
            int from = (int) ((long) length * rank / size), to = (int) ((long) length * (rank + 1) / size);
            for (int i = from; i < to; i++) {
                float sum = published[0][offset + i];
                for (int r = 1; r < size; r++) {
                    sum += published[r][offset + i];
                }
                total[i] = sum;
            }
            await();
            System.arraycopy(total, 0, data, offset, length);
            await();
        }

        @Override
        public void allGatherColumns(float[] local, int rows, int width, float[] out) {
            published[rank] = local;
            widths[rank] = width;
            await();
            int all = 0, column = 0;
            for (int r = 0; r < size; r++) {
                all += widths[r];
            }
            for (int r = 0; r < size; r++) {
                for (int row = 0; row < rows; row++) {
                    System.arraycopy(published[r], row * widths[r], out, row * all + column, widths[r]);
                }
                column += widths[r];
            }
            await();
        }

        @Override
        public void abort() {
            aborted = true;
            barrier.reset();
        }

        @Override
        public void reset() {
            aborted = false;
            barrier.reset();
        }
    }
}
