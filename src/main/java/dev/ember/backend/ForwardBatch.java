package dev.ember.backend;

import dev.ember.kvcache.BlockTable;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/** The work of one engine step: a chunk of new tokens for each participating sequence. */
public record ForwardBatch(List<Chunk> chunks) {

    public ForwardBatch {
        chunks = List.copyOf(chunks);
        SubmittedStep source = null;
        boolean carries = false;
        for (Chunk c : chunks) {
            if (c.carriedFrom() < 0) {
                continue;
            }
            if (carries && c.carrySource() != source) {
                throw new IllegalArgumentException("the carried tokens of one batch come from one step");
            }
            carries = true;
            source = c.carrySource();
        }
    }

    public static ForwardBatch of(Chunk... chunks) {
        return new ForwardBatch(List.of(chunks));
    }

    public int size() {
        return chunks.size();
    }

    /** The positions whose next-token logits the step produces: each chunk's {@link Chunk#outputs()}, in chunk order. */
    public int outputRows() {
        int n = 0;
        for (Chunk c : chunks) {
            n += c.outputs();
        }
        return n;
    }

    public int totalTokens() {
        int n = 0;
        for (Chunk c : chunks) {
            n += c.tokens().length;
        }
        return n;
    }

    /** Whether a chunk takes tokens from a submitted step's sampled outputs ({@link Chunk#carriedFrom()}). */
    public boolean carriesTokens() {
        for (Chunk c : chunks) {
            if (c.carriedFrom() >= 0) {
                return true;
            }
        }
        return false;
    }

    /**
     * The step of another runner whose sampled tokens the carried chunks take ({@link Chunk#carrySource()}); null when
     * they take those of the step their own runner submitted before this one, or when none carries.
     */
    public SubmittedStep carrySource() {
        for (Chunk c : chunks) {
            if (c.carriedFrom() >= 0) {
                return c.carrySource();
            }
        }
        return null;
    }

    /**
     * {@link #carrySource} as the runner's own kind of step, or null; refused, as every runner refuses it, when it is
     * another backend's step or not the last its runner submitted (a later step has overwritten its tokens).
     */
    public <S extends SubmittedStep> S carrySource(Class<S> kind, Predicate<S> lastOfItsRunner) {
        SubmittedStep source = carrySource();
        if (source == null) {
            return null;
        }
        if (!kind.isInstance(source)) {
            throw new IllegalArgumentException("a chunk carries a token from a step of another backend");
        }
        S step = kind.cast(source);
        if (!lastOfItsRunner.test(step)) {
            throw new IllegalStateException("a chunk carries a token from a step its runner has submitted another after");
        }
        return step;
    }

    /**
     * This batch with every block table copied ({@link BlockTable#snapshot}): what a runner that computes a submitted
     * step later keeps, since the scheduler may have freed or regrown the tables by then.
     */
    public ForwardBatch snapshot() {
        List<Chunk> out = new ArrayList<>(chunks.size());
        for (Chunk c : chunks) {
            out.add(new Chunk(c.tokens(), c.startPosition(), c.blockTable().snapshot(), c.carriedFrom(), c.outputs(),
                    c.carrySource(), c.carried()));
        }
        return new ForwardBatch(out);
    }

    /**
     * This batch with every carried chunk's carried tokens taken from {@code sourceTokens}, what the step the chunks
     * carry from sampled ({@link #carrySource}, or the step submitted before this one).
     */
    public ForwardBatch withCarriedTokens(int[] sourceTokens) {
        if (!carriesTokens()) {
            return this;
        }
        List<Chunk> out = new ArrayList<>(chunks.size());
        for (Chunk c : chunks) {
            if (c.carriedFrom() < 0) {
                out.add(c);
                continue;
            }
            if (c.carriedFrom() + c.carried() > sourceTokens.length) {
                throw new IllegalStateException("a chunk carries the tokens of outputs " + c.carriedFrom() + " to "
                        + (c.carriedFrom() + c.carried() - 1) + " of " + (c.carrySource() == null ? "the previous step"
                        : "another runner's step") + ", which has " + sourceTokens.length);
            }
            int[] tokens = c.tokens().clone();
            int first = tokens.length - c.carried();
            for (int i = 0; i < c.carried(); i++) {
                // A row that drew nothing failed (Sampler.failure): the engine ends its sequence, and drops what this
                // chunk computes, so any token of the vocabulary stands in.
                tokens[first + i] = Math.max(0, sourceTokens[c.carriedFrom() + i]);
            }
            out.add(new Chunk(tokens, c.startPosition(), c.blockTable(), -1, c.outputs()));
        }
        return new ForwardBatch(out);
    }

    /**
     * New tokens of one sequence, at positions {@code startPosition ..}; earlier positions are already in
     * the cache. A decode step is a chunk of one token; a prefill is one or more chunks of many; a speculative
     * verification is the last token and the draft's tokens, with an output at each.
     *
     * @param carriedFrom -1, or the output of a submitted step whose sampled token is this chunk's first carried
     *                    token, not known on the host yet ({@link ModelRunner#submit}); {@code tokens} then holds
     *                    placeholders there. An overlapped decode's one token, a verification's last drafted one, or
     *                    a draft's catch-up on a verification's tokens
     * @param outputs     how many of the chunk's last positions produce next-token logits (and a token, where a
     *                    sampler is given): 1 but for a verification and a draft's catch-up
     * @param carrySource the step {@code carriedFrom} indexes when it is another runner's: the last that runner
     *                    submitted (a draft model's step, whose drafted tokens the target's verification takes on the
     *                    device, or the target's verification, whose tokens a draft's catch-up takes). Null for the step
     *                    this chunk's runner submitted just before this one (an overlapped decode), and for a chunk that
     *                    carries nothing
     * @param carried     how many of the chunk's last tokens are carried, from outputs {@code carriedFrom},
     *                    {@code carriedFrom + 1} ...: 0 when it carries nothing, 1 but for a draft's catch-up; at most
     *                    {@code outputs}, so that the carried tokens lie among the positions that produce logits
     */
    public record Chunk(int[] tokens, int startPosition, BlockTable blockTable, int carriedFrom, int outputs,
                        SubmittedStep carrySource, int carried) {
        public Chunk {
            if (tokens.length == 0) {
                throw new IllegalArgumentException("a chunk needs at least one token");
            }
            if (carriedFrom < 0 && carrySource != null) {
                throw new IllegalArgumentException("a chunk names a step to carry from but carries no token");
            }
            if ((carriedFrom < 0) != (carried == 0) || carried < 0 || carried > outputs) {
                throw new IllegalArgumentException("a chunk of " + tokens.length + " tokens carries " + carried
                        + " from output " + carriedFrom);
            }
            if (outputs < 1 || outputs > tokens.length) {
                throw new IllegalArgumentException("a chunk of " + tokens.length + " tokens has " + outputs + " outputs");
            }
        }

        /** A chunk that carries no token, or carries its last one from {@code carrySource} (null: the step before). */
        public Chunk(int[] tokens, int startPosition, BlockTable blockTable, int carriedFrom, int outputs,
                     SubmittedStep carrySource) {
            this(tokens, startPosition, blockTable, carriedFrom, outputs, carrySource, carriedFrom < 0 ? 0 : 1);
        }

        /** A chunk that carries no token, or carries its last one from the step its runner submitted before. */
        public Chunk(int[] tokens, int startPosition, BlockTable blockTable, int carriedFrom, int outputs) {
            this(tokens, startPosition, blockTable, carriedFrom, outputs, null);
        }

        public Chunk(int[] tokens, int startPosition, BlockTable blockTable) {
            this(tokens, startPosition, blockTable, -1, 1);
        }

        /** The one-token chunk at {@code position} whose token output {@code fromOutput} of the previous step samples. */
        public static Chunk carried(int fromOutput, int position, BlockTable blockTable) {
            if (fromOutput < 0) {
                throw new IllegalArgumentException("output index " + fromOutput);
            }
            return new Chunk(new int[] {0}, position, blockTable, fromOutput, 1);
        }
    }
}
