package dev.ember.backend;

import java.util.Arrays;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A group of ranks that are threads of this process: each operation is a barrier at which every rank has published its
 * array, the work (each rank sums its own slice of an all-reduce, in rank order, so every rank gets the same bits),
 * and a barrier after which the arrays may be reused.
 */
public final class InProcessCollective {
    private final int size;
    /** Spins before a waiting rank starts yielding its core: some tens of microseconds. */
    private static final int SPINS = 20_000;
    private final AtomicInteger arrived = new AtomicInteger();
    private volatile int generation;
    private final float[][] published;
    private final int[] widths;
    private float[] sums = new float[0];
    /** Set by a rank that failed: every operation, waiting or to come, fails until {@link Collective#reset}. */
    private volatile boolean aborted;

    /** What rank i sent rank j and j has not taken yet, in order: {@code mailboxes[i * size + j]}. */
    private final BlockingQueue<float[]>[] mailboxes;

    @SuppressWarnings("unchecked")
    public InProcessCollective(int size) {
        if (size < 1) {
            throw new IllegalArgumentException("a group has at least one rank, not " + size);
        }
        this.size = size;
        this.published = new float[size][];
        this.widths = new int[size];
        this.mailboxes = new BlockingQueue[size * size];
        for (int i = 0; i < mailboxes.length; i++) {
            mailboxes[i] = new LinkedBlockingQueue<>();
        }
    }

    /** Rank {@code rank}'s end of the group, for the thread that computes that rank. */
    public Collective rank(int rank) {
        if (rank < 0 || rank >= size) {
            throw new IllegalArgumentException("rank " + rank + " of a group of " + size);
        }
        return new Rank(rank);
    }

    /**
     * Waits until every rank has arrived: spinning, as the ranks arrive microseconds apart within a step, then yielding
     * the core (a rank may wait for one that shares its core). The last to arrive opens the next generation.
     */
    private void await() {
        if (aborted) {
            throw new Collective.Aborted("another rank of the group failed", null);
        }
        int generation = this.generation;
        if (arrived.incrementAndGet() == size) {
            arrived.set(0);
            this.generation = generation + 1;
            return;
        }
        for (long spins = 0; this.generation == generation; spins++) {
            if (aborted) {
                throw new Collective.Aborted("another rank of the group failed", null);
            }
            if (spins < SPINS) {
                Thread.onSpinWait();
            } else {
                Thread.yield();
            }
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
        public void send(float[] data, int offset, int length, int peer) {
            if (aborted) {
                throw new Collective.Aborted("another rank of the group failed", null);
            }
            mailboxes[rank * size + peer].add(Arrays.copyOfRange(data, offset, offset + length));
        }

        @Override
        public void receive(float[] data, int offset, int length, int peer) {
            BlockingQueue<float[]> mailbox = mailboxes[peer * size + rank];
            try {
                float[] sent;
                while ((sent = mailbox.poll(1, TimeUnit.MILLISECONDS)) == null) {
                    if (aborted) {
                        throw new Collective.Aborted("another rank of the group failed", null);
                    }
                }
                if (sent.length != length) {
                    throw new IllegalStateException("rank " + peer + " sent " + sent.length + " values; rank " + rank
                            + " takes " + length);
                }
                System.arraycopy(sent, 0, data, offset, length);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for rank " + peer, e);
            }
        }

        @Override
        public void abort() {
            aborted = true;
        }

        @Override
        public void reset() {
            for (BlockingQueue<float[]> mailbox : mailboxes) {
                mailbox.clear();
            }
            arrived.set(0);
            generation++;
            aborted = false;
        }
    }
}
