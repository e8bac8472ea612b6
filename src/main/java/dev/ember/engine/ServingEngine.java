package dev.ember.engine;

import dev.ember.EmberException;
import dev.ember.backend.ModelRunner;
import dev.ember.sampling.SamplingParams;
import dev.ember.sampling.ScoredToken;
import dev.ember.sampling.TokenLogprobs;
import dev.ember.scheduler.PrefixCache;
import dev.ember.scheduler.Scheduler;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.scheduler.Sequence;
import dev.ember.tokenizer.Tokenizer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/**
 * The {@link LlmEngine} made safe for many callers: one engine thread owns it and runs its steps, while any
 * number of threads submit requests (queued, and drained into the engine before each step), read each request's
 * tokens and text as they come (through its {@link RequestHandle}) and cancel requests. Text is decoded on the
 * engine thread, with special tokens skipped and stop strings applied, so that a stop string ends its request at
 * the very step that completed it.
 *
 * <p>Also the offline API: {@link #generate} runs a list of prompts through the engine as one batch.
 *
 * <p>Shutdown is graceful: {@link #shutdown()} stops admitting requests and the engine thread ends once every
 * request in flight has finished; {@link #shutdownNow()} cancels them instead.
 */
public final class ServingEngine implements AutoCloseable {

    /** Work for the engine thread, queued by other threads. */
    private sealed interface Command {
        record Submit(Active request) implements Command {
        }

        record Cancel(Active request) implements Command {
        }

        record CancelAll() implements Command {
        }

        record Call(FutureTask<?> task) implements Command {
        }

        /** Wakes an idle engine thread so that it notices a shutdown. */
        record Wake() implements Command {
        }
    }

    private final LlmEngine engine;
    private final Tokenizer tokenizer;
    /** Replaced only by {@link #startMetricsAfresh}, on the engine thread. */
    private volatile ServingMetrics metrics = new ServingMetrics();
    private final BlockingQueue<Command> inbox = new LinkedBlockingQueue<>();
    private final AtomicInteger queuedSubmissions = new AtomicInteger();
    private final Object admission = new Object();
    /**
     * Written under {@code admission}, so that a submission and a shutdown do not cross; read without it by
     * {@link #isAdmitting()}, so that {@code /health} never waits for the lock: a virtual thread that holds it may be
     * unmounted (queued for the inbox's lock) and wait for a carrier behind hundreds of others.
     */
    private volatile boolean admitting = true;
    private final Thread thread;
    private volatile Throwable failure;
    private int speculativeTokens;  // set before the engine thread starts
    private volatile EngineStats stats;
    // Engine thread only:
    private final Set<Active> active = new LinkedHashSet<>();
    private final List<Active> notYetScheduled = new ArrayList<>();

    private ServingEngine(ModelRunner runner, Tokenizer tokenizer, SchedulerConfig config) {
        this.tokenizer = tokenizer;
        this.engine = LlmEngine.of(runner, config, tokenizer);
        this.stats = snapshot();
        this.thread = Thread.ofPlatform().name("ember-engine").daemon(true).unstarted(this::run);
    }

    /**
     * Warms the runner up for {@code config}'s largest steps (the CUDA backend captures its decode graphs), then starts an
     * engine thread that runs {@code runner}'s steps; the caller keeps ownership of the runner and tokenizer.
     */
    public static ServingEngine start(ModelRunner runner, Tokenizer tokenizer, SchedulerConfig config) {
        return start(runner, tokenizer, config, null);
    }

    /** As {@link #start(ModelRunner, Tokenizer, SchedulerConfig)}, speculating with {@code speculation} (none if null). */
    public static ServingEngine start(ModelRunner runner, Tokenizer tokenizer, SchedulerConfig config, Speculation speculation) {
        ServingEngine engine = new ServingEngine(runner, tokenizer, config);
        if (speculation != null) {
            engine.engine.speculate(speculation);
            engine.speculativeTokens = speculation.gamma();
        }
        engine.engine.warmUp();
        engine.thread.start();
        return engine;
    }

    /** The longest sequence, prompt plus generated tokens, a request may reach. */
    public int contextLength() {
        return engine.contextLength();
    }

    /** The engine's check of a prompt ({@link LlmEngine#validate}), for a caller that must answer before it submits. */
    public void validate(int[] prompt) {
        engine.validate(prompt);
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /** The model's vocabulary: the rows of its logits, which may be more than the tokenizer's tokens (padded). */
    public int vocabSize() {
        return engine.runner().config().vocabSize();
    }

    /** The tokens that end a request (unless it ignores them): the model's end-of-sequence ids and the tokenizer's. */
    public Set<Integer> endOfSequenceIds() {
        return LlmEngine.endOfSequenceIds(engine.runner().config(), tokenizer);
    }

    public ServingMetrics metrics() {
        return metrics;
    }

    /**
     * Starts the counters and histograms of {@link #metrics} afresh, between two steps, so that what was served before
     * (a server's warm-up, which no client sent) counts nowhere; requests still running count from here on only.
     */
    public void startMetricsAfresh() {
        inspect(ignored -> metrics = new ServingMetrics());
    }

    /** The engine's state after its latest step. */
    public EngineStats stats() {
        return stats;
    }

    /** The most tokens drafted per sequence and step (vLLM's num_speculative_tokens); 0 when the engine does not speculate. */
    public int speculativeTokens() {
        return speculativeTokens;
    }

    /** Whether the engine thread is running and has not failed. */
    public boolean isHealthy() {
        return failure == null && thread.isAlive();
    }

    /** Whether new requests are accepted (false once a shutdown began or the engine failed). */
    public boolean isAdmitting() {
        return admitting;
    }

    /**
     * Queues a request for the next step. With {@code stream}, its handle receives a {@link RequestEvent.Token}
     * per generated token; always, one final {@link RequestEvent.Done}.
     *
     * @throws EmberException naming the problem when the prompt is empty, holds an id outside the vocabulary or
     *                        cannot fit the context; a {@link ShutDownException} when the engine no longer admits
     */
    public RequestHandle submit(int[] prompt, SamplingParams params, boolean stream) {
        engine.validate(prompt);
        Active request = new Active(prompt.clone(), params, stream, System.nanoTime());
        synchronized (admission) {
            if (!admitting) {
                Throwable cause = failure;
                throw new ShutDownException(cause == null ? "the engine is shutting down and admits no new requests"
                        : "the engine failed (" + cause + ") and admits no new requests");
            }
            queuedSubmissions.incrementAndGet();
            inbox.add(new Command.Submit(request));
        }
        return request.handle;
    }

    /** As {@link #submit(int[], SamplingParams, boolean)}, for a prompt text encoded as HF's {@code tokenizer(text)} does. */
    public RequestHandle submit(String prompt, SamplingParams params, boolean stream) {
        return submit(tokenizer.encode(prompt), params, stream);
    }

    /** The offline API: generates for every prompt in one batch and returns each one's outcome, in order. */
    public List<RequestOutcome> generate(List<String> prompts, SamplingParams params) {
        List<int[]> encoded = new ArrayList<>(prompts.size());
        for (String prompt : prompts) {
            encoded.add(tokenizer.encode(prompt));
        }
        return generateTokens(encoded, params);
    }

    /**
     * The offline API on token ids. A prompt that is rejected fails alone: its outcome is a {@link RequestError}
     * and the rest still run.
     */
    public List<RequestOutcome> generateTokens(List<int[]> prompts, SamplingParams params) {
        RequestHandle[] handles = new RequestHandle[prompts.size()];
        RequestOutcome[] outcomes = new RequestOutcome[prompts.size()];
        try {
            for (int i = 0; i < handles.length; i++) {
                try {
                    handles[i] = submit(prompts.get(i), params, false);
                } catch (ShutDownException e) {
                    throw e;
                } catch (EmberException e) {
                    outcomes[i] = new RequestError(e.getMessage());
                }
            }
            for (int i = 0; i < handles.length; i++) {
                if (handles[i] != null) {
                    outcomes[i] = handles[i].await();
                }
            }
        } catch (InterruptedException e) {
            cancelAll(handles);
            Thread.currentThread().interrupt();
            throw new CancellationException("interrupted while generating; the remaining requests were cancelled");
        } catch (RuntimeException e) {
            cancelAll(handles);
            throw e;
        }
        return List.of(outcomes);
    }

    private static void cancelAll(RequestHandle[] handles) {
        for (RequestHandle h : handles) {
            if (h != null) {
                h.cancel();
            }
        }
    }

    /**
     * Runs {@code query} on the engine thread between steps and returns its result: for tests and diagnostics
     * that need a consistent view of the engine's state (the block allocator, the scheduler).
     */
    public <T> T inspect(Function<LlmEngine, T> query) {
        FutureTask<T> task = new FutureTask<>(() -> query.apply(engine));
        inbox.add(new Command.Call(task));
        try {
            while (true) {
                if (!thread.isAlive()) {
                    // Nobody else touches the engine once its thread has ended (and that end happens-before this check).
                    // Checked again while waiting: the thread may have taken its last command just before the task came.
                    task.run();
                }
                try {
                    return task.get(10, TimeUnit.MILLISECONDS);
                } catch (TimeoutException e) {
                    // still queued, or the thread is ending: look again
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CancellationException("interrupted while inspecting the engine");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        }
    }

    /** Stops admitting requests; the engine thread ends once those in flight have finished. Returns at once. */
    public void shutdown() {
        synchronized (admission) {
            admitting = false;
        }
        inbox.add(new Command.Wake());
    }

    /** Stops admitting requests and cancels those in flight, freeing their blocks. Returns at once. */
    public void shutdownNow() {
        shutdown();
        inbox.add(new Command.CancelAll());
    }

    /** Waits for the engine thread to end; returns whether it did within {@code timeout}. */
    public boolean awaitTermination(Duration timeout) throws InterruptedException {
        return thread.join(timeout);
    }

    /**
     * Cancels every request in flight ({@link #shutdownNow}) and waits up to {@code timeout} for the engine thread to end;
     * an interrupt ends the wait early (and stays set).
     */
    public void stopNow(Duration timeout) {
        shutdownNow();
        try {
            awaitTermination(timeout);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Graceful shutdown: stops admitting, waits for every request in flight to finish. */
    @Override
    public void close() {
        shutdown();
        boolean interrupted = false;
        while (thread.isAlive()) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                interrupted = true;
                shutdownNow();
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private void run() {
        try {
            while (true) {
                boolean idle = !engine.hasWork();
                if (idle && drained()) {
                    return;
                }
                Command command = idle ? inbox.take() : inbox.poll();
                while (command != null) {
                    execute(command);
                    command = inbox.poll();
                }
                if (engine.hasWork()) {
                    long start = System.nanoTime();
                    engine.step();
                    noteScheduled(start);
                }
                stats = snapshot();
            }
        } catch (Throwable t) {
            failure = t;
            synchronized (admission) {
                admitting = false;
            }
            String message = t instanceof InterruptedException ? "the engine thread was interrupted" : "the engine failed: " + t;
            for (Active request : List.copyOf(active)) {
                request.fail(message);
            }
            active.clear();
            Command command;
            while ((command = inbox.poll()) != null) {
                switch (command) {
                    case Command.Submit(Active request) -> request.fail(message);
                    case Command.Call(FutureTask<?> task) -> task.cancel(false);
                    default -> {
                    }
                }
            }
            if (!(t instanceof InterruptedException)) {
                System.err.println("ember: the engine thread failed; requests in flight were ended with an error");
                t.printStackTrace();
            }
        }
    }

    private boolean drained() {
        synchronized (admission) {
            return !admitting && inbox.isEmpty();
        }
    }

    private void execute(Command command) {
        switch (command) {
            case Command.Submit(Active request) -> {
                queuedSubmissions.decrementAndGet();
                if (request.handle.isCancelled()) {
                    request.fail("cancelled before it started");
                    return;
                }
                try {
                    request.sequence = engine.add(request.prompt, request.params, request);
                } catch (EmberException e) {
                    request.fail(e.getMessage());
                    return;
                }
                metrics.requestStarted(request.prompt.length);
                active.add(request);
                notYetScheduled.add(request);
            }
            case Command.Cancel(Active request) -> {
                if (request.sequence != null && !request.sequence.isFinished()) {
                    engine.cancel(request.sequence);
                }
            }
            case Command.CancelAll() -> {
                for (Active request : List.copyOf(active)) {
                    request.handle.cancel();
                    engine.cancel(request.sequence);
                }
            }
            case Command.Call(FutureTask<?> task) -> task.run();
            case Command.Wake() -> {
            }
        }
    }

    /** Requests scheduled for the first time in the step that began at {@code stepStart} end their queue time there. */
    private void noteScheduled(long stepStart) {
        notYetScheduled.removeIf(request -> {
            if (request.sequence.status() == Sequence.Status.WAITING) {
                return false;
            }
            request.scheduledNanos = stepStart;
            return true;
        });
    }

    private EngineStats snapshot() {
        Scheduler scheduler = engine.scheduler();
        PrefixCache prefixCache = scheduler.prefixCache();
        var allocator = engine.runner().blockAllocator();
        return new EngineStats(scheduler.runningCount(), scheduler.waitingCount() + Math.max(0, queuedSubmissions.get()),
                allocator.usedBlocks(), allocator.capacity(), prefixCache == null ? 0 : prefixCache.cachedBlocks(),
                prefixCache == null ? 0 : prefixCache.hitRate(), scheduler.preemptions(), engine.steps(),
                scheduler.speculation().snapshot());
    }

    /** Thrown by {@link #submit} once the engine has begun shutting down, or has failed. */
    public static final class ShutDownException extends EmberException {
        ShutDownException(String message) {
            super(message);
        }
    }

    /** One request in the engine: its timings and its handle. Touched only by the engine thread. */
    private final class Active implements RequestListener {
        final int[] prompt;
        final SamplingParams params;
        final boolean stream;
        final long arrivalNanos;
        final RequestHandle handle;
        Sequence sequence;
        long scheduledNanos;
        long firstTokenNanos;
        long lastTokenNanos;
        long[] gaps = new long[16];
        int tokens;

        Active(int[] prompt, SamplingParams params, boolean stream, long arrivalNanos) {
            this.prompt = prompt;
            this.params = params;
            this.stream = stream;
            this.arrivalNanos = arrivalNanos;
            this.handle = new RequestHandle(prompt.length, () -> inbox.add(new Command.Cancel(this)));
        }

        @Override
        public void onToken(Sequence s, int token, String text) {
            long now = System.nanoTime();
            if (tokens == 0) {
                firstTokenNanos = now;
                metrics.firstToken(now - arrivalNanos);
            } else {
                if (tokens - 1 == gaps.length) {
                    gaps = Arrays.copyOf(gaps, gaps.length * 2);
                }
                gaps[tokens - 1] = now - lastTokenNanos;
                metrics.nextToken(now - lastTokenNanos);
            }
            lastTokenNanos = now;
            tokens++;
            if (stream && !handle.isCancelled() && tokens == 1 && params.promptLogprobs() >= 0) {
                handle.deliver(new RequestEvent.PromptScores(promptScores(s)));
            }
            if (stream && !handle.isCancelled()) {
                handle.deliver(new RequestEvent.Token(token, text, s.sampler().logprobs(tokens - 1)));
            }
        }

        @Override
        public void onFinish(Sequence s) {
            active.remove(this);
            if (handle.isCancelled()) {
                fail("cancelled");
                return;
            }
            long now = System.nanoTime();
            long scheduled = scheduledNanos != 0 ? scheduledNanos : now;
            RequestTimings timings = new RequestTimings(scheduled - arrivalNanos, tokens > 0 ? firstTokenNanos - arrivalNanos : 0,
                    now - arrivalNanos, Arrays.copyOf(gaps, Math.max(0, tokens - 1)));
            List<TokenLogprobs> logprobs = new ArrayList<>();
            for (int i = 0; params.logprobs() >= 0 && i < s.generatedCount(); i++) {
                logprobs.add(s.sampler().logprobs(i));  // the sampler drew the sequence's tokens in order
            }
            RequestOutput output = new RequestOutput(s.text(), prompt, s.generatedTokens(), s.finishReason(),
                    s.cachedPromptTokens(), timings, logprobs, promptScores(s), s.stopString(), s.stopToken());
            metrics.requestFinished(output);
            handle.deliver(new RequestEvent.Done(output));
        }

        /** The prompt's scores from its second token on, or none when the request did not ask for them. */
        private List<ScoredToken> promptScores(Sequence s) {
            List<ScoredToken> scores = new ArrayList<>();
            for (int position = 1; params.promptLogprobs() >= 0 && position < prompt.length; position++) {
                ScoredToken score = s.sampler().promptLogprobs(position);
                if (score == null) {
                    break;  // cancelled or failed before its prompt was computed
                }
                scores.add(score);
            }
            return scores;
        }

        @Override
        public void onError(Sequence s, String message) {
            active.remove(this);
            fail(message);
        }

        void fail(String message) {
            notYetScheduled.remove(this);
            metrics.requestFailed();
            handle.deliver(new RequestEvent.Done(new RequestError(message)));
        }
    }
}
