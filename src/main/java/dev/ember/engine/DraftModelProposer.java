package dev.ember.engine;

import dev.ember.EmberException;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.StepCounters;
import dev.ember.backend.SubmittedStep;
import dev.ember.kvcache.BlockTable;
import dev.ember.sampling.Sampler;
import dev.ember.scheduler.Sequence;
import dev.ember.trace.Trace;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Drafting with a smaller model of the same vocabulary (another model, or the target's first layers): per step, one
 * batched draft step brings each sequence's draft cache up to its last token and drafts its first token, then up to
 * gamma - 1 single-token draft steps draft the rest, queued back to back where the draft samples on the device. Where
 * the last of them draws greedy tokens on the device, they stay there: the target's verification, submitted next, takes
 * them on the device, and they reach the host after it ({@link #awaitDrafts}), so that no wait on the host comes between
 * the draft's steps and the verification. The draft keeps its own paged KV cache; what it computed for tokens the target
 * rejected is found by comparing the tokens it was fed with the sequence's, and recomputed.
 *
 * <p>Traced ({@link Trace#ENGINE}), inside the engine's {@code propose}: {@code draft_prepare} (each sequence's draft
 * cache checked against its tokens and reserved), then per draft step ({@code step} j) {@code draft_chunks} (its
 * inputs built), {@code draft_submit} (the runner's submit: metadata, upload, launch) and {@code draft_await} (waiting
 * for its tokens; for a last step left on the device, inside the engine's {@code await}, from {@link #awaitDrafts}).
 */
public final class DraftModelProposer implements Proposer {
    private final ModelRunner draft;
    private final String name;
    private final AutoCloseable owned;
    private final Map<Sequence, State> states = new HashMap<>();
    /** The last draft step, while its tokens are known only on the device, and the sequences it drafted for; or null. */
    private DraftStep lastOnDevice;
    private List<Sequence> lastOnDeviceSequences;

    /** One sequence's draft: its cache table, the tokens fed at each position, and its drafting sampler. */
    private static final class State {
        final BlockTable table;
        final Sampler sampler;
        int[] fed = new int[64];
        int computed;

        State(BlockTable table, Sampler sampler) {
            this.table = table;
            this.sampler = sampler;
        }

        void feed(int position, int token) {
            if (position >= fed.length) {
                fed = Arrays.copyOf(fed, Math.max(2 * fed.length, position + 1));
            }
            fed[position] = token;
        }
    }

    /**
     * @param draft the draft model's runner; its vocabulary must be the target's
     * @param owned what {@link #close} closes beside this proposer's blocks (the runner, its model), or null
     */
    public DraftModelProposer(ModelRunner draft, String name, int targetVocab, AutoCloseable owned) {
        if (draft.config().vocabSize() != targetVocab) {
            throw new EmberException("the draft model " + name + " has a vocabulary of " + draft.config().vocabSize()
                    + " tokens and the target one of " + targetVocab + ": speculative decoding needs the same vocabulary");
        }
        this.draft = draft;
        this.name = name;
        this.owned = owned;
    }

    @Override
    public void propose(List<Sequence> sequences, int gamma, Trace trace) {
        awaitDrafts(trace);  // a draft left on the device by a round whose verification did not run: the runner's steps in order
        long preparing = trace.start();
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
            int valid = 0;  // the draft's cache is the sequence's where the tokens fed are the sequence's
            while (valid < state.computed && state.fed[valid] == s.token(valid)) {
                valid++;
            }
            state.computed = valid;
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
        trace.end(Trace.ENGINE, "draft_prepare", preparing, "sequences", drafting.size());
        // Steps after the first feed each sequence the token the step before drafted. Where the draft samples on the
        // device (greedy drafts) a step takes that token on the device (a carried chunk) and is submitted before the
        // step before is awaited, so the gamma steps run back to back with no round trip between them.
        int[][] positions = new int[drafting.size()][gamma];
        int[] previousRow = new int[drafting.size()];
        ArrayDeque<DraftStep> inFlight = new ArrayDeque<>(2);
        boolean previousOnDevice = false;
        for (int j = 0; j < gamma && !drafting.isEmpty(); j++) {
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
            inFlight.addLast(new DraftStep(draft.submit(new ForwardBatch(chunks), stepSamplers), j, stepSamplers, stepRows));
            trace.end(Trace.ENGINE, "draft_submit", submitting, "step", j);
            // Tokens drawn on the host are awaited (below, before the next step is built) and fed from the host.
            previousOnDevice = samplers.stream().allMatch(draft::carriesTokens);
        }
        // The last step's tokens stay on the device where it drew them there for greedy sequences only (a sampled one's
        // verification needs each token's distribution on the host). The earlier steps' tokens are the verification's
        // other drafted tokens and what the draft was fed: they are awaited while the last step runs.
        DraftStep last = previousOnDevice && inFlight.peekLast() != null
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
            lastRow[last.rows()[r]] = r;
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
        int[] next = new int[lastOnDevice.rows().length];
        long start = trace.start();
        lastOnDevice.step().await(next);
        trace.end(Trace.ENGINE, "draft_await", start, "step", lastOnDevice.j());
        for (int r = 0; r < next.length; r++) {
            lastOnDeviceSequences.get(lastOnDevice.rows()[r]).draftArrived(next[r]);
        }
        lastOnDevice = null;
        lastOnDeviceSequences = null;
    }

    /** A submitted draft step: drafting position {@code j} of the sequences {@code rows} (indices into the drafting ones). */
    private record DraftStep(SubmittedStep step, int j, Sampler[] samplers, int[] rows) {
        void await(List<int[]> tokens, List<double[][]> distributions, Trace trace) {
            int[] next = new int[rows.length];
            long start = trace.start();
            step.await(next);
            trace.end(Trace.ENGINE, "draft_await", start, "step", j);
            for (int r = 0; r < rows.length; r++) {
                tokens.get(rows[r])[j] = next[r];
                distributions.get(rows[r])[j] = samplers[r].lastDistribution();
            }
        }
    }

    @Override
    public void release(Sequence sequence) {
        State state = states.remove(sequence);
        if (state != null) {
            state.table.release(draft.blockAllocator());
        }
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
