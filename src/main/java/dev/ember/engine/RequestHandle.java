package dev.ember.engine;

import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A request submitted to a {@link ServingEngine}, as the thread that submitted it sees it: the events the engine
 * thread sends it (tokens when streaming, then always one {@link RequestEvent.Done}), and a way to cancel it.
 * One consumer thread reads the events; {@link #cancel()} may be called from any thread, any number of times.
 */
public final class RequestHandle {
    private final int promptLength;
    private final Runnable onCancel;
    private final BlockingQueue<RequestEvent> events = new LinkedBlockingQueue<>();
    private volatile boolean cancelled;

    RequestHandle(int promptLength, Runnable onCancel) {
        this.promptLength = promptLength;
        this.onCancel = onCancel;
    }

    public int promptLength() {
        return promptLength;
    }

    /** The next event, waiting for it. */
    public RequestEvent nextEvent() throws InterruptedException {
        return events.take();
    }

    /** The next event, or null when none came within the timeout. */
    public RequestEvent nextEvent(long timeout, TimeUnit unit) throws InterruptedException {
        return events.poll(timeout, unit);
    }

    /** Waits for the request to end, skipping any token events, and returns how it ended. */
    public RequestOutcome await() throws InterruptedException {
        while (true) {
            if (events.take() instanceof RequestEvent.Done(RequestOutcome outcome)) {
                return outcome;
            }
        }
    }

    /**
     * Ends the request early (its consumer went away): the engine stops it at its next step, frees its KV
     * blocks, and it ends with a {@link RequestError}.
     */
    public void cancel() {
        if (!cancelled) {
            cancelled = true;
            onCancel.run();
        }
    }

    public boolean isCancelled() {
        return cancelled;
    }

    void deliver(RequestEvent event) {
        events.add(event);
    }
}
