package dev.ember.engine;

import dev.ember.EmberException;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.StepCounters;
import dev.ember.backend.SubmittedStep;
import dev.ember.kvcache.BlockTable;
import dev.ember.sampling.Sampler;
import dev.ember.scheduler.ScheduledStep;
import dev.ember.scheduler.Sequence;
import dev.ember.trace.Trace;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Drafting with a smaller model of the same vocabulary (another model, or the target's first layers): per step, one
 * batched draft step brings each sequence's draft cache up to its last token and drafts its first token, then up to
 * gamma - 1 single-token draft steps draft the rest, queued back to back where the draft samples on the device. Where
 * the last of them draws greedy tokens on the device, they stay there: the target's verification, submitted next, takes
 * them on the device, and they reach the host after it ({@link #awaitDrafts}), so that no wait on the host comes between
 * the draft's steps and the verification. The draft keeps its own paged KV cache; what it computed for tokens the target
 * rejected is found by comparing the tokens it was fed with the sequence's, and recomputed.
 *
 * <p>The draft's catch-up: where the verification draws greedy tokens on the device, a draft step is queued right behind
 * it ({@link #verificationSubmitted}) that feeds the draft all of the verification's tokens, at the positions after the
 * sequence's last token. Whatever the verification accepts, those positions up to its own token hold what the draft
 * needs next (the accepted drafts, then the target's token), and the draft's output at that last one is the next round's
 * first drafted token; the positions after it are recomputed later. So the next round's first draft step has run on the
 * device while the host judged the verification, and no draft step waits on the host between two verifications at
 * gamma 1. Only where the draft's runner computes ahead of the host ({@link ModelRunner#computesAhead}: a GPU; on the
 * CPU a step computes when awaited, and the catch-up would only add rows); EMBER_DRAFT_CATCH_UP=0 drafts every round
 * from the host there too.
 *
 * <p>Traced ({@link Trace#ENGINE}), inside the engine's {@code propose}: {@code draft_prepare} (each sequence's draft
 * cache checked against its tokens and reserved), then per draft step ({@code step} j) {@code draft_chunks} (its
 * inputs built), {@code draft_submit} (the runner's submit: metadata, upload, launch) and {@code draft_await} (waiting
 * for its tokens; for a last step left on the device, inside the engine's {@code await}, from {@link #awaitDrafts});
 * inside the engine's {@code submit}, {@code draft_catch_up} (the catch-up built and submitted).
 */
public final class DraftModelProposer implements Proposer {
    /** Whether a draft step catches up on each greedy verification's tokens on the device (EMBER_DRAFT_CATCH_UP=0: no). */
    private static final boolean CATCH_UP_BY_DEFAULT = !"0".equals(System.getenv("EMBER_DRAFT_CATCH_UP"));
    private final ModelRunner draft;
    private final String name;
    private final AutoCloseable owned;
    private final Map<Sequence, State> states = new HashMap<>();
    private final boolean catchesUp;
    /** Rounds whose first drafted tokens came from a catch-up. */
    private long caughtUpRounds;
    /** The last draft step, while its tokens are known only on the device, and the sequences it drafted for; or null. */
    private DraftStep lastOnDevice;
    private List<Sequence> lastOnDeviceSequences;
    /** The catch-up queued behind the last verification and not yet taken by {@link #propose}, and its outputs; or null. */
    private SubmittedStep catchUp;
    private int catchUpOutputs;

    /** One sequence's draft: its cache table, the tokens fed at each position, and its drafting sampler. */
    private static final class State {
        final BlockTable table;
        final Sampler sampler;
        int[] fed = new int[64];
        int computed;
        /**
         * Positions below this were found to hold the sequence's tokens, and neither has changed there since: a
         * sequence's tokens before its length at a check are final, and every write here lowers it.
         */
        int checked;
        /**
         * The catch-up that fed this sequence {@code catchUpCount} tokens from position {@code catchUpStart}, their
         * outputs from {@code catchUpOutput} of the step; once its verification is retired, the output of the next
         * drafted token, or -1 where the catch-up did not draft it.
         */
        SubmittedStep catchUpStep;
        int catchUpStart, catchUpCount, catchUpOutput = -1;

        State(BlockTable table, Sampler sampler) {
            this.table = table;
            this.sampler = sampler;
        }

        void feed(int position, int token) {
            if (position >= fed.length) {
                fed = Arrays.copyOf(fed, Math.max(2 * fed.length, position + 1));
            }
            fed[position] = token;
            checked = Math.min(checked, position);
        }
    }

    /**
     * @param draft the draft model's runner; its vocabulary must be the target's
     * @param owned what {@link #close} closes beside this proposer's blocks (the runner, its model), or null
     */
    public DraftModelProposer(ModelRunner draft, String name, int targetVocab, AutoCloseable owned) {
        this(draft, name, targetVocab, owned, CATCH_UP_BY_DEFAULT && draft.computesAhead());
    }

    /** @param catchesUp whether a draft step catches up on each greedy verification's tokens on the device */
    DraftModelProposer(ModelRunner draft, String name, int targetVocab, AutoCloseable owned, boolean catchesUp) {
        if (draft.config().vocabSize() != targetVocab) {
            throw new EmberException("the draft model " + name + " has a vocabulary of " + draft.config().vocabSize()
                    + " tokens and the target one of " + targetVocab + ": speculative decoding needs the same vocabulary");
        }
        this.draft = draft;
        this.name = name;
        this.owned = owned;
        this.catchesUp = catchesUp;
    }

    @Override
    public void warmUp(int maxBatch, int maxStepTokens, int contextTokens) {
        draft.warmUp(maxBatch, maxStepTokens, contextTokens);
    }

    @Override
    public void propose(List<Sequence> sequences, int gamma, Trace trace) {
        awaitDrafts(trace);  // a draft left on the device by a round whose verification did not run: the runner's steps in order
        long preparing = trace.start();
        SubmittedStep caughtUp = catchUp;
        catchUp = null;
        List<Sequence> drafting = new ArrayList<>(sequences.size());
        List<State> drafted = new ArrayList<>(sequences.size());
        List<int[]> tokens = new ArrayList<>();
        List<double[][]> distributions = new ArrayList<>();
        int[] room = new int[sequences.size()];
        for (Sequence s : sequences) {
            int k = Math.min(gamma, s.lengthLimit() - s.length() - 1);
            if (k <= 0) {
                continue;
            }
            State state = states.computeIfAbsent(s, q -> new State(draft.blockAllocator().newTable(), q.sampler().drafting()));
            state.sampler.resumeAt(s.generatedCount());  // the draft masks as the target will at each position (min_tokens)
            // The draft's cache is the sequence's where the tokens fed are the sequence's: checked from where it was last
            // found so, not from the start, which at a long context would cost a round more than its drafting.
            int upTo = Math.min(state.computed, s.length());
            int valid = Math.min(state.checked, upTo);
            while (valid < upTo && state.fed[valid] == s.token(valid)) {
                valid++;
            }
            state.computed = state.checked = valid;
            state.table.truncate(valid, draft.blockAllocator());
            if (!state.table.reserve(s.length() + k - 1, draft.blockAllocator())) {
                continue;  // no room in the draft's cache: this sequence decodes plainly this step
            }
            room[drafting.size()] = k;
            drafting.add(s);
            drafted.add(state);
            tokens.add(new int[k]);
            distributions.add(new double[k][]);
        }
        ArrayDeque<DraftStep> inFlight = new ArrayDeque<>(2);
        int[] previousRow = new int[drafting.size()];
        boolean caughtUpAll = takeCatchUp(caughtUp, drafting, drafted, inFlight, previousRow);
        trace.end(Trace.ENGINE, "draft_prepare", preparing, "sequences", drafting.size());
        // Steps after the first feed each sequence the token the step before drafted. Where the draft samples on the
        // device (greedy drafts) a step takes that token on the device (a carried chunk) and is submitted before the
        // step before is awaited, so the gamma steps run back to back with no round trip between them.
        int[][] positions = new int[drafting.size()][gamma];
        boolean previousOnDevice = caughtUpAll;
        for (int j = caughtUpAll ? 1 : 0; j < gamma && !drafting.isEmpty(); j++) {
            long building = trace.start();
            List<ForwardBatch.Chunk> chunks = new ArrayList<>();
            List<Sampler> samplers = new ArrayList<>();
            List<Integer> rows = new ArrayList<>();
            for (int i = 0; i < drafting.size(); i++) {
                if (j >= room[i]) {
                    continue;
                }
                Sequence s = drafting.get(i);
                State state = drafted.get(i);
                positions[i][j] = state.computed;
                if (j == 0) {  // from what the draft has up to the sequence's last token
                    int[] input = new int[s.length() - state.computed];
                    for (int p = state.computed; p < s.length(); p++) {
                        input[p - state.computed] = s.token(p);
                        state.feed(p, s.token(p));
                    }
                    chunks.add(new ForwardBatch.Chunk(input, state.computed, state.table));
                } else if (previousOnDevice) {
                    chunks.add(new ForwardBatch.Chunk(new int[1], state.computed, state.table, previousRow[i], 1));
                } else {
                    awaitOldest(inFlight, 0, tokens, distributions, trace);
                    chunks.add(new ForwardBatch.Chunk(new int[] {tokens.get(i)[j - 1]}, state.computed, state.table));
                }
                state.computed += chunks.getLast().tokens().length;
                previousRow[i] = chunks.size() - 1;
                samplers.add(state.sampler);
                rows.add(i);
            }
            if (chunks.isEmpty()) {
                break;
            }
            Sampler[] stepSamplers = samplers.toArray(Sampler[]::new);
            int[] stepRows = rows.stream().mapToInt(Integer::intValue).toArray();
            trace.end(Trace.ENGINE, "draft_chunks", building, "step", j);
            if (inFlight.size() == 2) {  // the runner holds the host side of two steps in flight
                inFlight.removeFirst().await(tokens, distributions, trace);
            }
            long submitting = trace.start();
            inFlight.addLast(new DraftStep(draft.submit(new ForwardBatch(chunks), stepSamplers), stepRows.length, j,
                    stepSamplers, stepRows, IntStream.range(0, stepRows.length).toArray()));
            trace.end(Trace.ENGINE, "draft_submit", submitting, "step", j);
            // Tokens drawn on the host are awaited (below, before the next step is built) and fed from the host.
            previousOnDevice = samplers.stream().allMatch(draft::carriesTokens);
        }
        // The last step's tokens stay on the device where it drew them there for greedy sequences only (a sampled one's
        // verification needs each token's distribution on the host). The earlier steps' tokens are the verification's
        // other drafted tokens and what the draft was fed: they are awaited while the last step runs.
        DraftStep last = previousOnDevice && inFlight.peekLast() != null && inFlight.peekLast().rows().length > 0
                && Arrays.stream(inFlight.peekLast().rows()).allMatch(i -> drafting.get(i).params().isGreedy())
                ? inFlight.peekLast() : null;
        awaitOldest(inFlight, last == null ? 0 : 1, tokens, distributions, trace);
        for (int i = 0; i < drafting.size(); i++) {
            for (int j = 1; j < room[i]; j++) {
                drafted.get(i).feed(positions[i][j], tokens.get(i)[j - 1]);  // steps before the last fed these
            }
        }
        int[] lastRow = new int[drafting.size()];
        Arrays.fill(lastRow, -1);
        for (int r = 0; last != null && r < last.rows().length; r++) {
            lastRow[last.rows()[r]] = last.outputs()[r];
        }
        for (int i = 0; i < drafting.size(); i++) {
            Sequence s = drafting.get(i);
            if (lastRow[i] >= 0) {
                s.proposeEndingOnDevice(tokens.get(i), last.step(), lastRow[i]);
            } else {
                s.propose(tokens.get(i), s.params().isGreedy() ? null : distributions.get(i));
            }
        }
        lastOnDevice = last;
        lastOnDeviceSequences = last == null ? null : drafting;
    }

    /**
     * Puts {@code caughtUp} (the catch-up queued behind the last verification, or null) first in {@code inFlight}: as
     * this round's first draft step, its output for each drafting sequence in {@code previousRow}, where it drafted
     * every one's first token (it fed each up to its last token); else only to be awaited in turn, the first step then
     * feeding each sequence from the host, at least its last token. Returns whether it is the first draft step.
     */
    private boolean takeCatchUp(SubmittedStep caughtUp, List<Sequence> drafting, List<State> drafted,
                                ArrayDeque<DraftStep> inFlight, int[] previousRow) {
        boolean all = caughtUp != null;
        for (int i = 0; i < drafting.size() && all; i++) {
            State state = drafted.get(i);
            all = state.catchUpStep == caughtUp && state.catchUpOutput >= 0 && state.computed == drafting.get(i).length();
        }
        if (all) {
            int[] rows = new int[drafting.size()], outputs = new int[drafting.size()];
            Sampler[] samplers = new Sampler[drafting.size()];
            for (int i = 0; i < drafting.size(); i++) {
                rows[i] = i;
                outputs[i] = previousRow[i] = drafted.get(i).catchUpOutput;
                samplers[i] = drafted.get(i).sampler;
            }
            inFlight.addLast(new DraftStep(caughtUp, catchUpOutputs, 0, samplers, rows, outputs));
            caughtUpRounds += drafting.isEmpty() ? 0 : 1;
            return true;
        }
        if (caughtUp != null) {
            inFlight.addLast(new DraftStep(caughtUp, catchUpOutputs, 0, new Sampler[0], new int[0], new int[0]));
        }
        for (int i = 0; i < drafting.size(); i++) {
            State state = drafted.get(i);
            state.computed = Math.min(state.computed, drafting.get(i).length() - 1);
        }
        return false;
    }

    /**
     * Settles what the pending catch-up fed each sequence {@code plan} verified, now that the verification's tokens are
     * the sequence's: the positions it fed up to the sequence's new last token hold that token and the accepted drafts
     * before it, and its output there is the next drafted token; the positions after were fed tokens the verification
     * did not accept, and are not counted.
     */
    @Override
    public void verificationRetired(ScheduledStep plan) {
        if (catchUp == null) {
            return;
        }
        for (ScheduledStep.Work w : plan.work()) {
            State state = states.get(w.sequence());
            if (w.drafted() == 0 || state == null || state.catchUpStep != catchUp) {
                continue;
            }
            Sequence s = w.sequence();
            int fed = s.length() - state.catchUpStart;  // the accepted drafts and the verification's own token
            if (fed >= 1 && fed <= state.catchUpCount) {
                for (int p = state.catchUpStart; p < s.length(); p++) {
                    state.feed(p, s.token(p));
                }
                state.computed = s.length();
                state.catchUpOutput += fed - 1;
            } else {
                state.catchUpOutput = -1;
            }
        }
    }

    /**
     * Queues the draft's catch-up on {@code verification}'s tokens, just submitted for {@code plan}: for each
     * verified sequence a chunk of its drafted tokens plus one at the positions after its last token, each carried from
     * the verification's output there, an output at each. Only where every verified sequence is greedy and drafted
     * on the device, and no earlier catch-up is still untaken (the runner holds two steps in flight).
     */
    @Override
    public void verificationSubmitted(ScheduledStep plan, SubmittedStep verification, Trace trace) {
        if (!catchesUp || catchUp != null) {
            return;
        }
        long start = trace.start();
        List<ForwardBatch.Chunk> chunks = new ArrayList<>();
        List<State> fed = new ArrayList<>();
        int output = 0;  // the verification's first output of the work
        for (ScheduledStep.Work w : plan.work()) {
            Sequence s = w.sequence();
            int first = w.start() + 1, count = w.drafted() + 1;
            // A sequence this verification must end (its length limit reached whatever it accepts) needs no catch-up.
            if (w.drafted() > 0 && first + 1 < s.lengthLimit()) {
                State state = states.get(s);
                if (state == null || !s.params().isGreedy() || !draft.carriesTokens(state.sampler) || state.computed < first
                        || !state.table.reserve(first + count, draft.blockAllocator())) {
                    return;
                }
                chunks.add(new ForwardBatch.Chunk(new int[count], first, state.table, output + w.firstTokenOutput(), count,
                        verification, count));
                fed.add(state);
            }
            output += w.outputs();
        }
        if (chunks.isEmpty()) {
            return;
        }
        List<Sampler> samplers = new ArrayList<>();
        for (int i = 0; i < fed.size(); i++) {
            for (int j = 0; j < chunks.get(i).tokens().length; j++) {
                samplers.add(fed.get(i).sampler);
            }
        }
        catchUp = draft.submit(new ForwardBatch(chunks), samplers.toArray(Sampler[]::new));
        catchUpOutputs = samplers.size();
        for (int i = 0, first = 0; i < fed.size(); i++) {
            State state = fed.get(i);
            state.catchUpStep = catchUp;
            state.catchUpStart = chunks.get(i).startPosition();
            state.catchUpCount = chunks.get(i).tokens().length;
            state.catchUpOutput = first;
            state.computed = state.catchUpStart;  // the positions from there on are rewritten
            first += state.catchUpCount;
        }
        trace.end(Trace.ENGINE, "draft_catch_up", start, "sequences", chunks.size());
    }

    /** Awaits the oldest steps in flight until {@code left} remain. */
    private static void awaitOldest(ArrayDeque<DraftStep> inFlight, int left, List<int[]> tokens, List<double[][]> distributions,
                                    Trace trace) {
        while (inFlight.size() > left) {
            inFlight.removeFirst().await(tokens, distributions, trace);
        }
    }

    @Override
    public void awaitDrafts(Trace trace) {
        if (lastOnDevice == null) {
            return;
        }
        int[] next = lastOnDevice.awaitTokens(trace);
        for (int r = 0; r < lastOnDevice.rows().length; r++) {
            lastOnDeviceSequences.get(lastOnDevice.rows()[r]).draftArrived(next[lastOnDevice.outputs()[r]]);
        }
        lastOnDevice = null;
        lastOnDeviceSequences = null;
    }

    /**
     * A submitted draft step of {@code size} outputs: drafting position {@code j} of the sequences {@code rows} (indices
     * into the drafting ones), row r's token at the step's output {@code outputs[r]} (r itself but for a catch-up, which
     * has an output at every token it fed; none for a catch-up only awaited).
     */
    private record DraftStep(SubmittedStep step, int size, int j, Sampler[] samplers, int[] rows, int[] outputs) {
        void await(List<int[]> tokens, List<double[][]> distributions, Trace trace) {
            int[] next = awaitTokens(trace);
            for (int r = 0; r < rows.length; r++) {
                tokens.get(rows[r])[j] = next[outputs[r]];
                distributions.get(rows[r])[j] = samplers[r].lastDistribution();
            }
        }

        int[] awaitTokens(Trace trace) {
            int[] next = new int[size];
            long start = trace.start();
            step.await(next);
            trace.end(Trace.ENGINE, "draft_await", start, "step", j);
            return next;
        }
    }

    @Override
    public void release(Sequence sequence) {
        State state = states.remove(sequence);
        if (state != null) {
            state.table.release(draft.blockAllocator());
        }
    }

    /** How many rounds took their first drafted tokens from a catch-up rather than a draft step of their own. */
    public long caughtUpRounds() {
        return caughtUpRounds;
    }

    @Override
    public StepCounters counters() {
        return draft.counters();
    }

    @Override
    public String describe() {
        return "draft model " + name;
    }

    @Override
    public void close() {
        for (State state : states.values()) {
            state.table.release(draft.blockAllocator());
        }
        states.clear();
        if (owned != null) {
            try {
                owned.close();
            } catch (Exception e) {
                throw new EmberException("closing the draft model " + name + " failed: " + e.getMessage());
            }
        }
    }
}
