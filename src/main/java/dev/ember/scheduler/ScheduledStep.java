package dev.ember.scheduler;

import dev.ember.backend.ForwardBatch;
import dev.ember.kvcache.BlockTable;

import java.util.ArrayList;
import java.util.List;

/** What one engine step computes: a run of new tokens for each scheduled sequence. */
public record ScheduledStep(List<Work> work) {

    public ScheduledStep {
        work = List.copyOf(work);
    }

    /**
     * Tokens {@code [start, start + count)} of {@code sequence}.
     *
     * @param samples     whether they reach its end, so that the step's logits for it sample the next token
     * @param carriedFrom -1, or the output of the step in flight whose sampled token is this work's one token (the
     *                    engine overlaps steps: this token reaches the host only after this step is scheduled)
     * @param drafted     how many of the tokens are a draft's proposals that follow the sequence's last token (a
     *                    verification: each of the {@code drafted + 1} positions samples a token); 0 otherwise
     * @param scoresPrompt whether every position of these prompt tokens produces logits, from which the request's
     *                    prompt logprobs are read ({@link dev.ember.sampling.Sampler#scoring}); the last samples the
     *                    first generated token when it ends the prompt
     */
    public record Work(Sequence sequence, int start, int count, boolean samples, int carriedFrom, int drafted,
                       boolean scoresPrompt) {
        public Work {
            if (scoresPrompt && (drafted > 0 || carriedFrom >= 0)) {
                throw new IllegalArgumentException("a work that scores its prompt neither verifies a draft nor carries a token");
            }
        }

        /**
         * How many positions of the work produce logits: its last, every one of a verification, or every one of a chunk
         * that scores its prompt.
         */
        public int outputs() {
            return scoresPrompt ? count : drafted + 1;
        }

        /** Of the work's {@link #outputs()}, the first whose token is the sequence's: a verification's first, else the last. */
        public int firstTokenOutput() {
            return scoresPrompt ? count - 1 : 0;
        }
    }

    public boolean isEmpty() {
        return work.isEmpty();
    }

    public int tokens() {
        return work.stream().mapToInt(Work::count).sum();
    }

    /** Whether some work verifies a draft. */
    public boolean verifies() {
        for (Work w : work) {
            if (w.drafted() > 0) {
                return true;
            }
        }
        return false;
    }

    /** The positions that sample a token, one per plain work and {@code drafted + 1} per verification: the step's outputs. */
    public int outputs() {
        int n = 0;
        for (Work w : work) {
            n += w.outputs();
        }
        return n;
    }

    public ForwardBatch toForwardBatch() {
        List<ForwardBatch.Chunk> chunks = new ArrayList<>(work.size());
        for (Work w : work) {
            BlockTable table = w.sequence().blockTable();
            if (w.carriedFrom() >= 0) {
                chunks.add(ForwardBatch.Chunk.carried(w.carriedFrom(), w.start(), table));
            } else if (w.drafted() > 0) {  // the last token and the draft, whose last token may be on the device still
                Sequence s = w.sequence();
                int[] tokens = new int[w.count()];
                tokens[0] = s.token(w.start());
                System.arraycopy(s.draft(), 0, tokens, 1, w.drafted());
                chunks.add(s.draftLastOnDevice() == null ? new ForwardBatch.Chunk(tokens, w.start(), table, -1, w.outputs())
                        : new ForwardBatch.Chunk(tokens, w.start(), table, s.draftLastOutput(), w.outputs(), s.draftLastOnDevice()));
            } else {
                chunks.add(new ForwardBatch.Chunk(w.sequence().tokenRange(w.start(), w.start() + w.count()), w.start(), table,
                        -1, w.outputs()));
            }
        }
        return new ForwardBatch(chunks);
    }
}
