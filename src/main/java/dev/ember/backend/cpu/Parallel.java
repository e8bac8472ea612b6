package dev.ember.backend.cpu;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * Splits index ranges across a team of threads, the CPU backend's only form of parallelism: the calling thread and
 * {@code threads - 1} workers, which take pieces of each range from a shared cursor.
 *
 * <p>A decode step of a small model is some sixty ranges of tens of microseconds each, so what a range costs to hand
 * out matters as much as the arithmetic: a thread parked by the operating system takes tens of microseconds to wake,
 * and with a fork/join pool (whose idle workers park) two threads decoded the default model at 302 tokens/s where one
 * made 784. A worker here stays awake, spinning on the team's current job, for {@link #SPIN_NANOS} after its last
 * piece, which spans the serial work between the ranges of a step and between steps; an idle team then parks, so it
 * costs no processor time while nothing runs.
 */
final class Parallel implements AutoCloseable {
    /** How long a worker spins for the next range before it parks: a few decode steps of a small model. */
    static final long SPIN_NANOS = 500_000;

    @FunctionalInterface
    interface RangeBody {
        void run(int from, int to);
    }

    private final int threads;
    private final Worker[] workers;
    /** Held by the one caller whose range the team runs; another caller (or a range inside a range) runs alone. */
    private final AtomicBoolean busy = new AtomicBoolean();
    private volatile Job current;
    private volatile boolean closed;

    /** A team of one thread: the caller. */
    Parallel() {
        this(1, () -> { });
    }

    /**
     * @param threads     threads computing a range, the caller among them
     * @param workerSetup run first on each worker thread (its scheduling priority)
     */
    Parallel(int threads, Runnable workerSetup) {
        if (threads < 1) {
            throw new IllegalArgumentException("a team needs at least one thread, not " + threads);
        }
        this.threads = threads;
        this.workers = new Worker[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(workerSetup);
            Thread thread = Thread.ofPlatform().daemon().name("ember-cpu-" + (i + 1)).unstarted(workers[i]);
            workers[i].thread = thread;
        }
        for (Worker w : workers) {
            w.thread.start();
        }
    }

    int threads() {
        return threads;
    }

    /** Runs {@code body} over [0, n) in pieces of at least {@code grain} indices, on every thread of the team. */
    void forRange(int n, int grain, RangeBody body) {
        if (n <= grain || threads == 1 || !busy.compareAndSet(false, true)) {
            body.run(0, n);
            return;
        }
        try {
            // Four pieces per thread balance uneven rows without paying for many tiny ones.
            Job job = new Job(body, n, Math.max(grain, (n + 4 * threads - 1) / (4 * threads)));
            current = job;
            for (Worker w : workers) {
                if (w.parked) {
                    LockSupport.unpark(w.thread);
                }
            }
            job.work();
            // The pieces left are in other threads' hands; where the cores are oversubscribed, a worker holding one may
            // be waiting for this thread's core.
            for (int spins = 0; job.unfinished.get() > 0; spins++) {
                if (spins < 10_000) {
                    Thread.onSpinWait();
                } else {
                    Thread.yield();
                }
            }
            job.rethrowFailure();
        } finally {
            busy.set(false);
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Worker w : workers) {
            LockSupport.unpark(w.thread);
        }
    }

    /** One range: its pieces are claimed from {@code next}; {@code unfinished} counts the indices not yet computed. */
    private static final class Job {
        final RangeBody body;
        final int n;
        final int piece;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger unfinished;
        volatile Throwable failure;

        Job(RangeBody body, int n, int piece) {
            this.body = body;
            this.n = n;
            this.piece = piece;
            this.unfinished = new AtomicInteger(n);
        }

        /** Computes pieces until none is left; a worker that comes late to a finished job finds none. */
        void work() {
            for (int from; (from = next.getAndAdd(piece)) < n; ) {
                int to = Math.min(n, from + piece);
                try {
                    body.run(from, to);
                } catch (Throwable t) {
                    failure = t;
                } finally {
                    unfinished.addAndGet(from - to);
                }
            }
        }

        void rethrowFailure() {
            Throwable t = failure;
            if (t instanceof RuntimeException e) {
                throw e;
            }
            if (t instanceof Error e) {
                throw e;
            }
            if (t != null) {
                throw new IllegalStateException(t);
            }
        }
    }

    private final class Worker implements Runnable {
        private final Runnable setup;
        Thread thread;
        /** Set before the worker parks and read by the caller after it publishes a job, so that no wake-up is lost. */
        volatile boolean parked;

        Worker(Runnable setup) {
            this.setup = setup;
        }

        @Override
        public void run() {
            setup.run();
            Job seen = null;
            while (!closed) {
                Job job = current;
                if (job != seen) {
                    seen = job;
                    job.work();
                    continue;
                }
                long spinUntil = System.nanoTime() + SPIN_NANOS;
                while (current == seen && !closed && System.nanoTime() < spinUntil) {
                    Thread.onSpinWait();
                }
                if (current == seen && !closed) {
                    parked = true;
                    if (current == seen && !closed) {
                        LockSupport.park(this);
                    }
                    parked = false;
                }
            }
        }
    }
}
