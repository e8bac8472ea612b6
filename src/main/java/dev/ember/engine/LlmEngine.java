package dev.ember.engine;

import dev.ember.EmberException;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.SubmittedStep;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.FinishReason;
import dev.ember.scheduler.ScheduledStep;
import dev.ember.scheduler.Scheduler;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.scheduler.Sequence;
import dev.ember.trace.Trace;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The batched engine: many requests share each forward step through the {@link Scheduler} (continuous
 * batching, chunked prefill, prefix cache, preemption). It works on token ids; text, stop strings and
 * streaming live in the {@link RequestListener}s of the layers above (offline API, HTTP server).
 *
 * <p>Not thread-safe: one thread calls {@link #submit} and {@link #step}.
 */
public final class LlmEngine {
    private final ModelRunner runner;
    private final Scheduler scheduler;
    private final Set<Integer> eosIds;
    private final int contextLength;
    private final int vocab;
    private final Map<Sequence, RequestListener> listeners = new HashMap<>();
    /** Whether the next step is scheduled and submitted before the one in flight is retired. */
    private final boolean overlap;
    /** The step submitted and not yet retired, or null. */
    private InFlight inFlight;
    private long nextId;
    private long steps;
    private long generatedTokens;
    private long promptTokens;
    private Trace trace = Trace.OFF;

    public LlmEngine(ModelRunner runner, SchedulerConfig config, Set<Integer> eosIds) {
        this.runner = runner;
        this.scheduler = new Scheduler(config, runner.blockAllocator(), runner.kvSpec().blockSize());
        this.eosIds = Set.copyOf(eosIds);
        this.overlap = config.overlap();
        this.contextLength = (int) Math.min(runner.config().maxPositions(), runner.kvSpec().tokenCapacity());
        this.vocab = runner.config().vocabSize();
    }

    /** Reports each step, its forward pass and its sampling to {@code trace} ({@link Trace#OFF} by default). */
    public void setTrace(Trace trace) {
        this.trace = trace;
    }

    /** The longest sequence, prompt plus generated tokens, a request may reach. */
    public int contextLength() {
        return contextLength;
    }

    public Scheduler scheduler() {
        return scheduler;
    }

    public ModelRunner runner() {
        return runner;
    }

    /** Queues a request; it joins the running batch at a coming step. */
    public Sequence submit(int[] prompt, SamplingParams params, RequestListener listener) {
        if (prompt.length == 0) {
            throw new EmberException("the prompt is empty");
        }
        if (prompt.length >= contextLength) {
            throw new EmberException("prompt of " + prompt.length + " tokens does not fit the context of " + contextLength
                    + " tokens (it needs room for at least one generated token)");
        }
        for (int t : prompt) {
            if (t < 0 || t >= vocab) {
                throw new EmberException("token id " + t + " is outside the vocabulary of " + vocab);
            }
        }
        Sequence s = new Sequence(nextId++, prompt, params, new Sampler(params, vocab), runner.kvSpec().blockSize(),
                System.nanoTime(), contextLength);
        listeners.put(s, listener);
        scheduler.add(s);
        promptTokens += prompt.length;
        return s;
    }

    /** Ends a request early (a client that went away); its blocks are freed at once. */
    public void cancel(Sequence s) {
        finish(s, FinishReason.STOP);
    }

    /** Whether requests are queued or running, or a step is still in flight. */
    public boolean hasWork() {
        return scheduler.hasWork() || inFlight != null;
    }

    /**
     * Runs one step. Without overlap: schedule, forward and sample (on the runner's device, which returns only token
     * ids), retire finished requests. With overlap: schedule and submit the next step first, then retire the step in
     * flight while the device computes the next one, whose decodes take their tokens straight from it. Returns the
     * tokens computed by the step retired in this call.
     */
    public int step() {
        long traced = trace.start();
        int retired = 0;
        if (inFlight != null && !inFlight.carriesTokens()) {
            retired = retire(inFlight);  // its tokens are drawn on the host: the next step needs them first
            inFlight = null;
        }
        ScheduledStep step = scheduler.schedule();
        if (step.isEmpty() && inFlight == null) {
            if (scheduler.hasWork()) {
                throw new IllegalStateException("scheduler made no progress with " + scheduler.waitingCount()
                        + " waiting and " + scheduler.runningCount() + " running requests");
            }
            trace.end(Trace.ENGINE, "engine_step", traced, "tokens", retired);
            return retired;
        }
        InFlight submitted = step.isEmpty() ? null : submit(step);
        if (inFlight != null) {
            retired = retire(inFlight);
        }
        inFlight = submitted;
        if (!overlap && inFlight != null) {
            retired = retire(inFlight);
            inFlight = null;
        }
        trace.end(Trace.ENGINE, "engine_step", traced, "tokens", retired);
        return retired;
    }

    /** A submitted step, not retired yet; its tokens land in {@code tokens}. */
    private record InFlight(ScheduledStep step, SubmittedStep submitted, boolean carriesTokens, int[] tokens) {
    }

    private InFlight submit(ScheduledStep step) {
        long start = trace.start();
        int rows = step.work().size();
        Sampler[] samplers = new Sampler[rows];
        boolean carries = true;
        for (int i = 0; i < rows; i++) {
            ScheduledStep.Work w = step.work().get(i);
            if (w.samples()) {
                samplers[i] = w.sequence().sampler();
                carries &= runner.carriesTokens(samplers[i]);
            }
        }
        InFlight f = new InFlight(step, runner.submit(step.toForwardBatch(), samplers), carries, new int[rows]);
        scheduler.submitted(step);
        steps++;
        trace.end(Trace.ENGINE, "submit", start, "rows", rows);
        return f;
    }

    /** Waits for a submitted step's tokens and hands them to their requests; returns the tokens the step computed. */
    private int retire(InFlight f) {
        long start = trace.start();
        f.submitted().await(f.tokens());
        long retireStart = trace.end(Trace.ENGINE, "await", start);
        long now = System.nanoTime();
        List<ScheduledStep.Work> work = f.step().work();
        for (int i = 0; i < work.size(); i++) {
            Sequence s = work.get(i).sequence();
            int token = f.tokens()[i];
            if (token < 0 || s.isFinished()) {
                continue;
            }
            s.append(token, now);
            generatedTokens++;
            boolean stop = listeners.get(s).onToken(s, token);
            if (stop || (!s.params().ignoreEos() && eosIds.contains(token))) {
                finish(s, FinishReason.STOP);
            } else if (s.length() >= s.lengthLimit()) {
                finish(s, FinishReason.LENGTH);
            }
        }
        trace.end(Trace.ENGINE, "retire", retireStart, "rows", work.size());
        return f.step().tokens();
    }

    private void finish(Sequence s, FinishReason reason) {
        if (s.isFinished()) {
            return;
        }
        scheduler.finish(s, reason, System.nanoTime());
        RequestListener listener = listeners.remove(s);
        if (listener != null) {
            listener.onFinish(s);
        }
    }

    public long steps() {
        return steps;
    }

    public long generatedTokens() {
        return generatedTokens;
    }

    public long promptTokens() {
        return promptTokens;
    }
}
