package dev.ember.scheduler;

import dev.ember.kvcache.BlockAllocator;
import dev.ember.sampling.SamplingParams;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * Continuous batching over a paged KV cache, and the owner of every sequence's life. Each {@link #schedule()} picks
 * the work of one step: decodes of running sequences and chunks of waiting prompts, within a token budget;
 * {@link #submitted} records that the step was handed to the runner, and {@link #update} takes its sampled tokens
 * back, appends them and ends the sequences that reached an end-of-sequence token, a stop string or their length.
 * Sequences join and leave at every step. When blocks run out, the most recently admitted sequence is preempted: its
 * blocks are freed and it goes back to the head of the queue, to be recomputed later (never dropped).
 *
 * <p>Not thread-safe: one engine thread drives it.
 */
public final class Scheduler {
    private final SchedulerConfig config;
    private final BlockAllocator allocator;
    private final PrefixCache prefixCache;
    private final Set<Integer> stopTokenIds;
    private final SpeculationStats speculation = new SpeculationStats();
    private final Deque<Sequence> waiting = new ArrayDeque<>();
    /** In admission order: the last is the first to be preempted. */
    private final List<Sequence> running = new ArrayList<>();
    /** The running sequences still computing their prompt, gathered anew by each admission (kept to allocate nothing). */
    private final List<Sequence> prefilling = new ArrayList<>();
    /**
     * The most positions of one step that may produce logits for prompt logprobs, and how many are left to the step being
     * planned: each such row is a whole vocabulary of logits, on the device and copied back.
     */
    private final int scoredRowsPerStep;
    private int scoredRowsLeft;
    private long preemptions;

    /** A scheduler that lets a step score up to {@value #DEFAULT_SCORED_ROWS} prompt positions. */
    public Scheduler(SchedulerConfig config, BlockAllocator allocator, Set<Integer> stopTokenIds) {
        this(config, allocator, stopTokenIds, DEFAULT_SCORED_ROWS);
    }

    /** A step's prompt positions scored for their logprobs when the caller does not size them by the vocabulary. */
    public static final int DEFAULT_SCORED_ROWS = 256;

    /**
     * @param stopTokenIds      the tokens that end a sequence (unless its request ignores them): the model's end-of-sequence ids
     * @param scoredRowsPerStep the most prompt positions one step scores for prompt logprobs (each a row of logits), at least 1
     */
    public Scheduler(SchedulerConfig config, BlockAllocator allocator, Set<Integer> stopTokenIds, int scoredRowsPerStep) {
        if (scoredRowsPerStep < 1) {
            throw new IllegalArgumentException("a step must be able to score at least one prompt position, got " + scoredRowsPerStep);
        }
        this.scoredRowsPerStep = scoredRowsPerStep;
        this.config = config;
        this.allocator = allocator;
        this.prefixCache = config.prefixCaching() ? new PrefixCache(allocator) : null;
        this.stopTokenIds = Set.copyOf(stopTokenIds);
    }

    public void add(Sequence sequence) {
        sequence.status(Sequence.Status.WAITING);
        waiting.addLast(sequence);
    }

    public int waitingCount() {
        return waiting.size();
    }

    public int runningCount() {
        return running.size();
    }

    /** The running sequences, in admission order (a view: it changes as the scheduler works). */
    public List<Sequence> running() {
        return java.util.Collections.unmodifiableList(running);
    }

    public boolean hasWork() {
        return !waiting.isEmpty() || !running.isEmpty();
    }

    public long preemptions() {
        return preemptions;
    }

    /** The prefix cache, or null when prefix caching is off. */
    public PrefixCache prefixCache() {
        return prefixCache;
    }

    public ScheduledStep schedule() {
        scoredRowsLeft = scoredRowsPerStep;
        if (config.policy() == SchedulePolicy.PREFILL_FIRST) {
            List<ScheduledStep.Work> work = new ArrayList<>();
            int budget = scheduleRunning(work, config.maxBatchedTokens(), true);
            admitWaiting(work, budget);
            if (!work.isEmpty()) {
                return new ScheduledStep(work);
            }
        }
        List<ScheduledStep.Work> work = new ArrayList<>();
        int budget = scheduleRunning(work, config.maxBatchedTokens(), false);
        if (config.policy() == SchedulePolicy.DECODE_FIRST) {
            admitWaiting(work, budget);
        }
        return new ScheduledStep(work);
    }

    /**
     * Schedules running sequences, oldest first, so that preemption (newest first) rarely hits them;
     * with {@code prefillOnly}, only those still computing their prompt. A sequence whose next token is still in
     * flight decodes it as a token carried from that step, unless that token is its last. Returns the budget left.
     */
    private int scheduleRunning(List<ScheduledStep.Work> work, int budget, boolean prefillOnly) {
        for (int i = 0; i < running.size() && budget > 0; i++) {
            Sequence s = running.get(i);
            int end = s.length() + s.inFlight();
            int pending = end - s.computed();
            if (pending <= 0 || s.inFlight() > 0 && end >= s.lengthLimit()
                    || prefillOnly && s.computed() >= s.promptLength() && pending == 1) {
                continue;
            }
            // A decode whose draft is waiting verifies it: its last token and the drafted ones, a token sampled at each.
            int drafted = s.inFlight() == 0 && pending == 1 && 1 + s.draft().length <= budget ? s.draft().length : 0;
            int count = s.inFlight() > 0 ? 1 : drafted > 0 ? 1 + drafted : Math.min(pending, Math.min(budget, config.chunkTokens()));
            boolean scores = scoresPrompt(s, s.computed());
            if (scores) {
                count = Math.min(count, scoredRowsLeft);
                if (count == 0) {
                    continue;
                }
            }
            if (prefillOnly && !reserve(s, s.computed() + count)) {
                // A prompt that cannot grow waits for the pass with the decodes, which preempts the newest to make room.
                // Preempting here would hand the blocks straight back to the prompt now first in the queue, every step,
                // and the decodes holding the rest of the cache would never run to free it.
                continue;
            }
            while (!reserve(s, s.computed() + count)) {
                Sequence victim = running.getLast();
                preempt(victim);
                if (victim == s) {
                    break;
                }
            }
            if (s.status() != Sequence.Status.RUNNING) {
                break;
            }
            work.add(new ScheduledStep.Work(s, s.computed(), count, drafted > 0 || s.computed() + count == end,
                    s.inFlight() > 0 ? s.inFlightOutput() : -1, drafted, scores));
            budget -= count;
            scoredRowsLeft -= scores ? count : 0;
        }
        return budget;
    }

    /**
     * Admits waiting prompts, in arrival order, while budget, batch slots and KV blocks allow; a preempted sequence
     * waits for its token in flight before it is recomputed.
     *
     * <p>A prompt whose leading blocks a running sequence is still computing (the other choices of an {@code n > 1}
     * request, or any prompt sharing them) waits for that prefill instead of computing the blocks again: they reach the
     * prefix cache in the step that finishes that prompt, and the prompt is admitted at the next step. It is skipped
     * rather than holding the queue, so FCFS bends only for it: stopping would leave the budget idle and every unrelated
     * request behind it waiting for as long as that prefill takes (several steps for a long chunked prompt), while the
     * skipped prompt keeps its place ahead of those admitted past it, and its wait is bounded: the sequence it waits for
     * is running and scheduled ahead of any admission, its leaving (preempted or cancelled) ends the wait, and it waits
     * only for blocks the cache does not hold yet, so each wait leaves more of its prefix cached.
     */
    private void admitWaiting(List<ScheduledStep.Work> work, int budget) {
        prefilling.clear();
        if (prefixCache != null) {
            for (Sequence s : running) {
                if (s.computed() < s.promptLength()) {
                    prefilling.add(s);
                }
            }
        }
        Iterator<Sequence> queue = waiting.iterator();
        while (budget > 0 && queue.hasNext() && running.size() < config.maxRunning()) {
            Sequence s = queue.next();
            if (s.inFlight() > 0) {
                break;
            }
            boolean scores = scoresPrompt(s, 0);
            if (scores && scoredRowsLeft == 0) {
                continue;
            }
            if (prefixCache != null && awaitsPrefill(s)) {
                continue;
            }
            if (!admit(s)) {
                break;
            }
            queue.remove();
            running.add(s);
            s.status(Sequence.Status.RUNNING);
            if (prefixCache != null && s.computed() < s.promptLength()) {
                prefilling.add(s);
            }
            int count = Math.min(s.length() - s.computed(), Math.min(budget, config.chunkTokens()));
            count = scores ? Math.min(count, scoredRowsLeft) : count;
            work.add(new ScheduledStep.Work(s, s.computed(), count, s.computed() + count == s.length(), -1, 0, scores));
            budget -= count;
            scoredRowsLeft -= scores ? count : 0;
        }
    }

    /**
     * Whether a waiting sequence would get more full blocks from the prompt of one of the {@code prefilling} sequences,
     * once that prompt is computed and offered to the prefix cache, than the cache holds for it now. Its own last token
     * is left out, as {@link #admit} recomputes it anyway.
     */
    private boolean awaitsPrefill(Sequence s) {
        if (scoresPrompt(s, 0)) {
            return false;  // it computes its whole prompt whatever the cache holds
        }
        int blockSize = s.blockTable().blockSize();
        int limit = s.length() - 1;
        int shared = 0;
        for (Sequence other : prefilling) {
            shared = Math.max(shared, s.commonPrefix(other, Math.min(limit, other.promptLength())) / blockSize);
        }
        return shared > 0 && shared > prefixCache.matchableBlocks(s.tokens(), limit);
    }

    /**
     * Gives a waiting sequence its cached prefix and room for its first chunk; on failure it keeps nothing.
     * The last prompt token is always recomputed, since its logits are needed; a prompt scored for its logprobs takes
     * nothing from the cache, since every position's logits are needed (as vLLM does).
     */
    private boolean admit(Sequence s) {
        int firstChunk = Math.min(s.length(), config.chunkTokens());
        if (prefixCache != null && s.computed() == 0 && !scoresPrompt(s, 0)) {
            int[] cached = prefixCache.match(s.tokens(), s.length() - 1);
            for (int block : cached) {
                allocator.retain(block);
                s.blockTable().append(block);
            }
            int cachedTokens = cached.length * s.blockTable().blockSize();
            s.computed(cachedTokens);
            s.cachedPromptTokens(Math.min(cachedTokens, s.promptLength()));
            firstChunk = Math.min(s.length() - cachedTokens, config.chunkTokens());
        }
        if (reserve(s, s.computed() + firstChunk)) {
            return true;
        }
        s.blockTable().release(allocator);
        s.computed(0);
        s.cachedPromptTokens(0);
        return false;
    }

    /**
     * Whether a chunk of {@code s} from {@code start} scores prompt tokens: its request asked for prompt logprobs, it has
     * generated nothing yet (a sequence recomputed after generating has its prompt's scores already), and a position from
     * {@code start} on predicts a prompt token.
     */
    private static boolean scoresPrompt(Sequence s, int start) {
        return s.params().promptLogprobs() >= 0 && s.generatedCount() == 0 && start + 1 < s.promptLength();
    }

    /** Grows the sequence's table to {@code tokens} slots, evicting unused cached prefixes if needed. */
    private boolean reserve(Sequence s, int tokens) {
        if (s.blockTable().reserve(tokens, allocator)) {
            return true;
        }
        if (prefixCache != null) {
            int needed = (tokens + s.blockTable().blockSize() - 1) / s.blockTable().blockSize() - s.blockTable().blockCount();
            prefixCache.evict(needed);
            return s.blockTable().reserve(tokens, allocator);
        }
        return false;
    }

    private void preempt(Sequence s) {
        running.remove(s);
        s.blockTable().release(allocator);
        s.computed(0);
        s.preempted();
        s.status(Sequence.Status.WAITING);
        waiting.addFirst(s);
        preemptions++;
    }

    /**
     * Records that a step was handed to the runner: advances each sequence's computed positions, puts the token each
     * sampling sequence will get in flight (until {@link Sequence#append} lands it), and, for a sequence whose prompt
     * just finished, offers its full blocks to the prefix cache.
     */
    public void submitted(ScheduledStep step) {
        int row = 0;
        for (ScheduledStep.Work w : step.work()) {
            Sequence s = w.sequence();
            s.computed(w.start() + w.count());
            if (w.samples()) {
                s.sampling(row + w.outputs() - 1);
            }
            row += w.outputs();
            if (prefixCache != null && w.start() < s.promptLength() && s.computed() >= s.promptLength()) {
                prefixCache.insert(s.tokenRange(0, s.computed()), s.blockTable().toArray());
            }
        }
    }

    /**
     * Takes back the tokens a submitted step sampled (one per output position of its works, in order: one for a plain
     * work, {@code drafted + 1} for a verification; -1 where it sampled none), in submission order: appends each to its
     * sequence and ends the sequence when the token is an end-of-sequence one or one of its request's stop tokens,
     * completes a stop string (none of which counts before the request's {@code min_tokens}), or reaches its length limit. A verification keeps the drafted tokens up to the first the target did not choose and then the
     * target's own token, and gives back the blocks of the positions it rejected. A sequence that finished while the step
     * was in flight drops its tokens. Adds one {@link SequenceOutput} per appended token to {@code outputs}.
     */
    public void update(ScheduledStep step, int[] tokens, long nowNanos, List<SequenceOutput> outputs) {
        int row = 0;
        for (ScheduledStep.Work w : step.work()) {
            Sequence s = w.sequence();
            int first = row + w.firstTokenOutput();
            row += w.outputs();
            if (!w.samples() || tokens[first] < 0 || s.isFinished()) {
                continue;
            }
            if (w.drafted() == 0) {
                s.clearDraft();  // a draft proposed before this token no longer follows the sequence's last token
                land(s, tokens[first], nowNanos, outputs);
                continue;
            }
            // A verification: the drafted tokens are kept up to the first the target did not choose, which is replaced
            // by the target's choice (or, when all were kept, the target's token after the last).
            int[] draft = s.draft();
            int accepted = 0;
            while (accepted < w.drafted() && tokens[first + accepted] == draft[accepted]) {
                accepted++;
            }
            speculation.record(w.drafted(), accepted);
            s.clearDraft();
            // A sequence preempted while its verification was in flight holds no blocks and is recomputed from the start.
            boolean running = s.status() == Sequence.Status.RUNNING;
            if (running) {
                s.computed(w.start() + 1 + accepted);  // the cache holds the last token and the accepted drafts
            }
            for (int i = 0; i <= accepted && !s.isFinished(); i++) {
                land(s, i < accepted ? draft[i] : tokens[first + accepted], nowNanos, outputs);
            }
            s.sampler().resumeAt(s.generatedCount());  // the rejected rows' draws (their logprobs) are not the sequence's
            if (running && !s.isFinished()) {
                s.blockTable().truncate(s.length(), allocator);  // the rejected positions' blocks go back
            }
        }
    }

    /**
     * Appends one sampled token and ends the sequence if it is an end-of-sequence or stop token (from min_tokens on),
     * completes a stop string or reaches the length limit.
     */
    private void land(Sequence s, int token, long nowNanos, List<SequenceOutput> outputs) {
        s.append(token, nowNanos);
        SamplingParams params = s.params();
        boolean mayStop = s.generatedCount() >= params.minTokens();
        boolean endOfSequence = mayStop && !params.ignoreEos() && stopTokenIds.contains(token);
        boolean stopToken = mayStop && params.stopTokenIds().contains(token);
        SequenceText text = s.sequenceText();
        // An end-of-sequence token has no text; a request's own stop token shows its text only when asked to.
        String piece = endOfSequence || stopToken && !params.includeStopStrInOutput() ? "" : text.append(token, mayStop);
        FinishReason reason = endOfSequence || stopToken || text.stopped() ? FinishReason.STOP
                : s.length() >= s.lengthLimit() ? FinishReason.LENGTH : null;
        if (reason != null) {
            s.stoppedBy(text.stopped() ? text.matchedStop() : null, stopToken && !endOfSequence ? token : -1);
            if (params.includeStopStrInOutput()) {
                piece += text.includeStop();
            }
            piece += text.finish();
            finish(s, reason, nowNanos);
        }
        outputs.add(new SequenceOutput(s, token, piece, reason));
    }

    /** Drafted and accepted tokens so far, overall and by position in the draft. */
    public SpeculationStats speculation() {
        return speculation;
    }

    /**
     * Ends a sequence: it leaves the batch and its blocks go to the prefix cache or back to the pool. A step still in
     * flight may write into them; any later step that reuses them writes or reads after it, in the device's order.
     */
    public void finish(Sequence s, FinishReason reason, long nowNanos) {
        if (s.isFinished()) {
            return;
        }
        if (!running.remove(s)) {
            waiting.remove(s);
        }
        int known = Math.min(s.computed(), s.length());  // a position computed by a step in flight has no token here yet
        if (prefixCache != null && known > 0) {
            prefixCache.insert(s.tokenRange(0, known), s.blockTable().toArray());
        }
        s.blockTable().release(allocator);
        s.finished(reason, nowNanos);
    }
}
