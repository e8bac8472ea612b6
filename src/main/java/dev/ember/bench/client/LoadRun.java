package dev.ember.bench.client;

import dev.ember.Progress;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * Sends requests at their arrival times, each on a virtual thread, at most {@code maxConcurrency} in flight
 * (0 for no cap): a request that finds every slot taken waits, in arrival order, and that wait is its queueing
 * time, apart from its TTFT.
 *
 * @param outcomes        in request order
 * @param durationSeconds from the start (the first arrival) to the end of the last stream
 */
public record LoadRun(List<RequestOutcome> outcomes, double durationSeconds) {

    public static LoadRun run(OpenAiStreamClient client, List<ClientRequest> requests, double[] arrivalSeconds,
                              int maxConcurrency, Progress progress) {
        Semaphore slots = maxConcurrency > 0 ? new Semaphore(maxConcurrency, true) : null;
        AtomicInteger done = new AtomicInteger();
        Object progressLock = new Object();
        List<Future<RequestOutcome>> futures = new ArrayList<>(requests.size());
        long start = System.nanoTime();
        try (ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < requests.size(); i++) {
                long due = start + (long) (arrivalSeconds[i] * 1e9);
                for (long wait = due - System.nanoTime(); wait > 0; wait = due - System.nanoTime()) {
                    LockSupport.parkNanos(wait);
                }
                if (slots != null) {
                    slots.acquireUninterruptibly();
                }
                ClientRequest request = requests.get(i);
                futures.add(executor.submit(() -> {
                    try {
                        return client.send(request, due);
                    } finally {
                        if (slots != null) {
                            slots.release();
                        }
                        synchronized (progressLock) {
                            progress.update("requests", done.incrementAndGet(), requests.size());
                        }
                    }
                }));
            }
        }
        List<RequestOutcome> outcomes = new ArrayList<>(futures.size());
        long end = start;
        for (Future<RequestOutcome> f : futures) {
            RequestOutcome outcome = result(f);
            outcomes.add(outcome);
            end = Math.max(end, outcome.endNanos());
        }
        return new LoadRun(outcomes, (end - start) / 1e9);
    }

    private static RequestOutcome result(Future<RequestOutcome> f) {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for a request", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("a request's thread failed", e.getCause());
        }
    }
}
