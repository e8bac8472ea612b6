package dev.ember.backend.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;

/** Splits index ranges across a fork/join pool: the CPU backend's only form of parallelism. */
final class Parallel {
    @FunctionalInterface
    interface RangeBody {
        void run(int from, int to);
    }

    private final ForkJoinPool pool;

    Parallel(ForkJoinPool pool) {
        this.pool = pool;
    }

    int threads() {
        return pool.getParallelism();
    }

    /** Runs {@code body} over [0, n) in pieces of at least {@code grain} indices, using every thread. */
    void forRange(int n, int grain, RangeBody body) {
        if (n <= grain || threads() == 1) {
            body.run(0, n);
            return;
        }
        // Four pieces per thread balance uneven rows without paying for many tiny tasks.
        int piece = Math.max(grain, (n + 4 * threads() - 1) / (4 * threads()));
        pool.invoke(new Split(0, n, piece, body));
    }

    private static final class Split extends RecursiveAction {
        private final int from;
        private final int to;
        private final int piece;
        private final RangeBody body;

        Split(int from, int to, int piece, RangeBody body) {
            this.from = from;
            this.to = to;
            this.piece = piece;
            this.body = body;
        }

        @Override
        protected void compute() {
            if (to - from <= piece) {
                body.run(from, to);
                return;
            }
            int mid = from + (to - from) / 2;
            invokeAll(new Split(from, mid, piece, body), new Split(mid, to, piece, body));
        }
    }
}
