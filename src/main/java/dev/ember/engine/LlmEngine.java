package dev.ember.engine;

import dev.ember.EmberException;
import dev.ember.backend.ModelRunner;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.ScheduledStep;
import dev.ember.scheduler.Scheduler;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.scheduler.Sequence;
import dev.ember.trace.Trace;

import java.util.Arrays;
import java.util.HashMap;
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
    /** The step's samplers and chosen tokens, one per scheduled sequence, grown to the largest step. */
    private Sampler[] samplers = new Sampler[0];
    private int[] tokens = new int[0];
    private long nextId;
    private long steps;
    private long generatedTokens;
    private long promptTokens;
    private Trace trace = Trace.OFF;

    public LlmEngine(ModelRunner runner, SchedulerConfig config, Set<Integer> eosIds) {
        this.runner = runner;
        this.scheduler = new Scheduler(config, runner.blockAllocator(), runner.kvSpec().blockSize());
        this.eosIds = Set.copyOf(eosIds);
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
        Sequence s = new Sequence(nextId++, prompt, params, new Sampler(params, vocab), runner.kvSpec().blockSize(), System.nanoTime());
        listeners.put(s, listener);
        scheduler.add(s);
        promptTokens += prompt.length;
        return s;
    }

    /** Ends a request early (a client that went away); its blocks are freed at once. */
    public void cancel(Sequence s) {
        finish(s, FinishReason.STOP);
    }

    public boolean hasWork() {
        return scheduler.hasWork();
    }

    /**
     * Runs one step: schedule, forward and sample (on the runner's device, which returns only token ids), retire
     * finished requests. Returns the tokens it computed.
     */
    public int step() {
        long traced = trace.start();
        ScheduledStep step = scheduler.schedule();
        if (step.isEmpty()) {
            if (scheduler.hasWork()) {
                throw new IllegalStateException("scheduler made no progress with " + scheduler.waitingCount()
                        + " waiting and " + scheduler.runningCount() + " running requests");
            }
            return 0;
        }
        int rows = step.work().size();
        if (samplers.length < rows) {
            samplers = new Sampler[rows];
            tokens = new int[rows];
        }
        for (int i = 0; i < rows; i++) {
            ScheduledStep.Work w = step.work().get(i);
            samplers[i] = w.samples() && !w.sequence().isFinished() ? w.sequence().sampler() : null;
        }
        long forwardStart = trace.start();
        runner.forwardAndSample(step.toForwardBatch(), samplers, tokens);
        long retireStart = trace.end(Trace.ENGINE, "forward_and_sample", forwardStart, "rows", rows);
        Arrays.fill(samplers, 0, rows, null);
        scheduler.completed(step);
        steps++;
        long now = System.nanoTime();
        for (int i = 0; i < rows; i++) {
            ScheduledStep.Work w = step.work().get(i);
            Sequence s = w.sequence();
            int token = tokens[i];
            if (token < 0 || s.isFinished()) {
                continue;
            }
            s.append(token, now);
            generatedTokens++;
            boolean stop = listeners.get(s).onToken(s, token);
            if (stop || (!s.params().ignoreEos() && eosIds.contains(token))) {
                finish(s, FinishReason.STOP);
            } else if (s.generatedCount() >= s.params().maxTokens() || s.length() >= contextLength) {
                finish(s, FinishReason.LENGTH);
            }
        }
        trace.end(Trace.ENGINE, "retire", retireStart);
        trace.end(Trace.ENGINE, "engine_step", traced, "tokens", step.tokens());
        return step.tokens();
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
