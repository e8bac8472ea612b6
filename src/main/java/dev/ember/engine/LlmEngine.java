package dev.ember.engine;

import dev.ember.EmberException;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.SubmittedStep;
import dev.ember.model.ModelConfig;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.FinishReason;
import dev.ember.scheduler.ScheduledStep;
import dev.ember.scheduler.Scheduler;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.scheduler.Sequence;
import dev.ember.scheduler.SequenceOutput;
import dev.ember.scheduler.SequenceText;
import dev.ember.tokenizer.Tokenizer;
import dev.ember.trace.Trace;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The one loop that drives a {@link ModelRunner}: requests are {@link #add added}, then {@link #step} runs until
 * {@link #hasWork} is false. Each step the {@link Scheduler} plans (continuous batching, chunked prefill, prefix cache,
 * preemption), the runner computes and samples on its device, and the scheduler takes the sampled tokens back and
 * decides which sequences end. Generation, serving and every benchmark run through here, so a change to how a step
 * runs is written once.
 *
 * <p>With overlap ({@link SchedulerConfig#overlap()}), step N+1 is scheduled and submitted before step N's tokens are
 * awaited; N+1's decodes take N's tokens on the device.
 *
 * <p>Not thread-safe: one thread calls {@link #add}, {@link #cancel} and {@link #step} ({@link ServingEngine} gives it
 * a thread of its own); {@link #validate} may be called from any thread.
 */
public final class LlmEngine {
    /**
     * The logits one step may produce for prompt logprobs: rows of a whole vocabulary each, copied to the host and read
     * there, so a long prompt scored for its logprobs is computed a few hundred positions a step.
     */
    private static final int SCORED_LOGITS_BYTES = 64 << 20;
    private final ModelRunner runner;
    private final SchedulerConfig config;
    private final Scheduler scheduler;
    private final Tokenizer tokenizer;
    private final int contextLength;
    private final int vocab;
    private final Map<Sequence, RequestListener> listeners = new HashMap<>();
    private final List<SequenceOutput> outputs = new ArrayList<>();
    /** The step submitted and not yet retired (null when none), and the scheduler's plan of it. */
    private SubmittedStep inFlight;
    private ScheduledStep inFlightPlan;
    /** Whether the step in flight's tokens can feed the next step on the device. */
    private boolean inFlightCarries;
    private long nextId;
    private long steps;
    private long generatedTokens;
    private long promptTokens;
    private Trace trace = Trace.OFF;
    private StepObserver observer = StepObserver.NONE;
    /** Speculative decoding: where drafts come from (null: none), how many tokens, and above what batch none. */
    private Proposer proposer;
    private int gamma;
    private int speculateUpTo;

    /**
     * @param stopTokenIds the tokens that end a sequence unless its request ignores them
     * @param tokenizer    turns tokens into text (and so allows stop strings); null for a model without one
     */
    public LlmEngine(ModelRunner runner, SchedulerConfig config, Set<Integer> stopTokenIds, Tokenizer tokenizer) {
        this.runner = runner;
        this.config = config;
        this.scheduler = new Scheduler(config, runner.blockAllocator(), stopTokenIds,
                Math.max(1, SCORED_LOGITS_BYTES / (Float.BYTES * runner.config().vocabSize())));
        this.tokenizer = tokenizer;
        this.contextLength = (int) Math.min(runner.config().maxPositions(),
                (long) runner.blockAllocator().capacity() * runner.blockAllocator().blockSize());
        this.vocab = runner.config().vocabSize();
    }

    /** An engine whose sequences end at the model's and the tokenizer's end-of-sequence tokens, with text. */
    public static LlmEngine of(ModelRunner runner, SchedulerConfig config, Tokenizer tokenizer) {
        return new LlmEngine(runner, config, endOfSequenceIds(runner.config(), tokenizer), tokenizer);
    }

    /** The tokens that end a request (unless it ignores them): the model's end-of-sequence ids and the tokenizer's. */
    public static Set<Integer> endOfSequenceIds(ModelConfig model, Tokenizer tokenizer) {
        Set<Integer> ids = new HashSet<>(model.eosTokenIds());
        ids.addAll(tokenizer.stopTokenIds());
        return Set.copyOf(ids);
    }

    /** An engine of token ids only (random-weight models have no tokenizer), ending at the model's end-of-sequence ids. */
    public static LlmEngine tokensOnly(ModelRunner runner, SchedulerConfig config) {
        return new LlmEngine(runner, config, Set.copyOf(runner.config().eosTokenIds()), null);
    }

    /**
     * Reports each step to {@code trace} ({@link Trace#OFF} by default), category {@link Trace#ENGINE}: {@code
     * engine_step} and within it {@code schedule}, {@code propose} (the proposer's own spans inside), {@code submit},
     * {@code await} (waiting for the runner's tokens) and {@code retire} (the scheduler's update and the listeners).
     */
    public void setTrace(Trace trace) {
        this.trace = trace;
    }

    /** Tells {@code observer} of every step from now on ({@link StepObserver#NONE} by default). */
    public void setObserver(StepObserver observer) {
        this.observer = observer;
    }

    /**
     * Speculates from now on: before each step, the proposer drafts up to gamma tokens for every decoding sequence
     * ({@link Sampler#canSpeculate}: no penalties), which the step verifies; not above the batch limit, where a
     * verification costs more than it saves. Steps that draft are not overlapped, since a draft needs the last token on
     * the host; but the verification is submitted right after the draft's steps, taking the drafted tokens the draft
     * left on the device there ({@link Proposer#awaitDrafts} brings them to the host once it is awaited). Above the
     * batch limit steps overlap as without speculation. The caller closes the proposer.
     */
    public void speculate(Speculation speculation) {
        if (speculation.gamma() < 1 || speculation.disableAboveBatch() < 1) {
            throw new EmberException("speculative decoding needs at least 1 drafted token and a batch limit of at least 1, got "
                    + speculation.gamma() + " and " + speculation.disableAboveBatch());
        }
        this.proposer = speculation.proposer();
        this.gamma = speculation.gamma();
        this.speculateUpTo = speculation.disableAboveBatch();
    }

    /** The proposer of speculative decoding, or null when the engine does not speculate. */
    public Proposer proposer() {
        return proposer;
    }

    /**
     * Prepares, before any timed work, what this engine's largest steps would otherwise prepare on their way (the CUDA
     * backend chooses its small products and captures its decode graphs), the draft model's included.
     */
    public void warmUp() {
        runner.warmUp(config.maxRunning(), config.maxBatchedTokens(), contextLength);
        if (proposer != null) {
            proposer.warmUp(config.maxRunning(), config.maxBatchedTokens(), contextLength);
        }
    }

    /** The longest sequence, prompt plus generated tokens, a request may reach. */
    public int contextLength() {
        return contextLength;
    }

    public SchedulerConfig config() {
        return config;
    }

    public Scheduler scheduler() {
        return scheduler;
    }

    public ModelRunner runner() {
        return runner;
    }

    /** Null for an engine of token ids only. */
    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /**
     * The one check of a prompt, where a request enters: it must be non-empty, hold only ids of the vocabulary and
     * leave room in the context for at least one generated token.
     *
     * @throws EmberException naming the problem
     */
    public void validate(int[] prompt) {
        if (prompt.length == 0) {
            throw new EmberException("the prompt is empty");
        }
        if (prompt.length >= contextLength) {
            throw new EmberException("the prompt has " + prompt.length + " tokens but the context holds " + contextLength
                    + " (prompt plus generated tokens), so it can never fit");
        }
        for (int t : prompt) {
            if (t < 0 || t >= vocab) {
                throw new EmberException("token id " + t + " is outside the vocabulary of " + vocab + " tokens");
            }
        }
    }

    /** Queues a request ({@link #validate}d here); it joins the running batch at a coming step. */
    public Sequence add(int[] prompt, SamplingParams params, RequestListener listener) {
        validate(prompt);
        SequenceText text = SequenceText.of(tokenizer, params.stopStrings(), params.skipSpecialTokens());
        Sequence s = new Sequence(nextId++, prompt, params, new Sampler(params, vocab),
                runner.blockAllocator().newTable(), text, System.nanoTime(), contextLength);
        listeners.put(s, listener);
        scheduler.add(s);
        promptTokens += prompt.length;
        return s;
    }

    /** Ends a request early (a client that went away); its blocks are freed at once. */
    public void cancel(Sequence s) {
        if (s.isFinished()) {
            return;
        }
        scheduler.finish(s, FinishReason.STOP, System.nanoTime());
        finished(s);
    }

    /** Whether requests are queued or running, or a step is still in flight. */
    public boolean hasWork() {
        return scheduler.hasWork() || inFlight != null;
    }

    /**
     * Runs one step: schedule, submit to the runner, take the sampled tokens back. With overlap the next step is
     * scheduled and submitted before the step in flight is retired, so that the host's work on one step overlaps the
     * device's on the next. Returns the tokens computed by the step retired in this call.
     */
    public int step() {
        long traced = trace.start();
        int retired = 0;
        boolean drafting = drafting();
        if (inFlight != null && (!inFlightCarries || drafting)) {
            // Its tokens are drawn on the host, or a draft needs them: the next step needs them first.
            retired = retire(inFlight, inFlightPlan);
            inFlight = null;
        }
        if (drafting) {
            propose();
        }
        long scheduling = trace.start();
        ScheduledStep plan = scheduler.schedule();
        trace.end(Trace.ENGINE, "schedule", scheduling);
        if (plan.isEmpty() && inFlight == null) {
            if (scheduler.hasWork()) {
                throw new IllegalStateException("scheduler made no progress with " + scheduler.waitingCount()
                        + " waiting and " + scheduler.runningCount() + " running requests");
            }
            trace.end(Trace.ENGINE, "engine_step", traced, "tokens", retired);
            return retired;
        }
        SubmittedStep previous = inFlight;
        ScheduledStep previousPlan = inFlightPlan;
        inFlight = plan.isEmpty() ? null : submit(plan);
        inFlightPlan = plan;
        if (previous != null) {
            retired = retire(previous, previousPlan);
        }
        if ((!config.overlap() || drafting) && inFlight != null) {
            retired = retire(inFlight, inFlightPlan);
            inFlight = null;
        }
        trace.end(Trace.ENGINE, "engine_step", traced, "tokens", retired);
        return retired;
    }

    /**
     * Whether this step may draft: the engine speculates and no more sequences are past their prompt than speculation
     * pays for. A step that may not runs as without a proposer, overlapped with the next where the configuration
     * overlaps steps; one that may waits for the step in flight first, since a draft needs the last token on the host.
     */
    private boolean drafting() {
        if (proposer == null) {
            return false;
        }
        int decoding = 0;
        for (Sequence s : scheduler.running()) {
            if (s.computed() >= s.promptLength() && ++decoding > speculateUpTo) {
                return false;
            }
        }
        return decoding > 0;
    }

    /** Drafts tokens for the decoding sequences, unless there are more of them than speculation pays for. */
    private void propose() {
        List<Sequence> decoding = new ArrayList<>();
        for (Sequence s : scheduler.running()) {
            if (s.computed() == s.length() - 1 && s.inFlight() == 0 && s.sampler().canSpeculate()) {
                decoding.add(s);
            }
        }
        if (!decoding.isEmpty() && decoding.size() <= speculateUpTo) {
            long start = trace.start();
            proposer.propose(decoding, gamma, trace);
            trace.end(Trace.ENGINE, "propose", start, "sequences", decoding.size());
        }
    }

    private SubmittedStep submit(ScheduledStep plan) {
        long start = trace.start();
        Sampler[] samplers = new Sampler[plan.outputs()];
        int row = 0;
        for (ScheduledStep.Work w : plan.work()) {
            Sequence s = w.sequence();
            if (w.scoresPrompt()) {  // each position's row scores the prompt token after it
                for (int j = 0; j < w.count() && w.start() + j + 1 < s.promptLength(); j++) {
                    samplers[row + j] = s.sampler().scoring(w.start() + j + 1, s.token(w.start() + j + 1));
                }
            }
            if (w.samples()) {
                int first = row + w.firstTokenOutput();
                int[] draft = s.draft();
                for (int j = 0; j < w.drafted(); j++) {  // a verification: each drafted token judged by the target
                    samplers[first + j] = s.sampler().verifying(draft[j], s.draftDistribution(j));
                }
                samplers[first + w.drafted()] = s.sampler();
            }
            row += w.outputs();
        }
        boolean carries = true;
        for (Sampler sampler : samplers) {
            carries &= sampler == null || runner.carriesTokens(sampler);
        }
        SubmittedStep submitted = runner.submit(plan.toForwardBatch(), samplers);
        scheduler.submitted(plan);
        inFlightCarries = carries;
        if (proposer != null && carries && plan.verifies()) {
            proposer.verificationSubmitted(plan, submitted, trace);
        }
        steps++;
        observer.submitted(plan);
        trace.end(Trace.ENGINE, "submit", start, "tokens", plan.tokens());
        return submitted;
    }

    /** Waits for a submitted step's tokens and hands them to the scheduler and the requests; returns its token count. */
    private int retire(SubmittedStep submitted, ScheduledStep plan) {
        long start = trace.start();
        int[] tokens = new int[plan.outputs()];
        submitted.await(tokens);
        if (proposer != null) {
            proposer.awaitDrafts(trace);  // the drafted tokens a verification took on the device, before it is judged
        }
        long retireStart = trace.end(Trace.ENGINE, "await", start);
        for (ScheduledStep.Work w : plan.work()) {
            Sequence s = w.sequence();
            if (s.sampler().failure() != null && !s.isFinished()) {  // a row it could not be drawn from: it ends alone
                scheduler.finish(s, FinishReason.STOP, System.nanoTime());
                RequestListener listener = leave(s);
                if (listener != null) {
                    listener.onError(s, s.sampler().failure());
                }
            }
        }
        outputs.clear();
        scheduler.update(plan, tokens, System.nanoTime(), outputs);
        if (proposer != null && plan.verifies()) {
            proposer.verificationRetired(plan);
        }
        for (SequenceOutput o : outputs) {
            generatedTokens++;
            Sequence s = o.sequence();
            listeners.get(s).onToken(s, o.token(), o.text());
            if (o.finished() != null) {
                finished(s);
            }
        }
        observer.retired(plan);
        trace.end(Trace.ENGINE, "retire", retireStart, "rows", plan.work().size());
        return plan.tokens();
    }

    private void finished(Sequence s) {
        RequestListener listener = leave(s);
        if (listener != null) {
            listener.onFinish(s);
        }
    }

    /** Lets go of an ended request: its draft's state and its listener, which is returned (null if it had left). */
    private RequestListener leave(Sequence s) {
        if (proposer != null) {
            proposer.release(s);
        }
        return listeners.remove(s);
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
