package dev.ember.backend;

import dev.ember.kvcache.BlockTable;

import java.util.ArrayList;
import java.util.List;

/** The work of one engine step: a chunk of new tokens for each participating sequence. */
public record ForwardBatch(List<Chunk> chunks) {

    public ForwardBatch {
        chunks = List.copyOf(chunks);
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

    /** Whether a chunk takes its token from the step submitted before this one ({@link Chunk#carriedFrom()}). */
    public boolean carriesTokens() {
        for (Chunk c : chunks) {
            if (c.carriedFrom() >= 0) {
                return true;
            }
        }
        return false;
    }

    /**
     * This batch with every block table copied ({@link BlockTable#snapshot}): what a runner that computes a submitted
     * step later keeps, since the scheduler may have freed or regrown the tables by then.
     */
    public ForwardBatch snapshot() {
        List<Chunk> out = new ArrayList<>(chunks.size());
        for (Chunk c : chunks) {
            out.add(new Chunk(c.tokens(), c.startPosition(), c.blockTable().snapshot(), c.carriedFrom(), c.outputs()));
        }
        return new ForwardBatch(out);
    }

    /** This batch with every carried chunk's token taken from {@code previousTokens}, what the step before sampled. */
    public ForwardBatch withCarriedTokens(int[] previousTokens) {
        if (!carriesTokens()) {
            return this;
        }
        List<Chunk> out = new ArrayList<>(chunks.size());
        for (Chunk c : chunks) {
            if (c.carriedFrom() < 0) {
                out.add(c);
                continue;
            }
            int token = c.carriedFrom() < previousTokens.length ? previousTokens[c.carriedFrom()] : -1;
            if (token < 0) {
                throw new IllegalStateException("a chunk carries the token of chunk " + c.carriedFrom()
                        + " of the previous step, which sampled none");
            }
            out.add(new Chunk(new int[] {token}, c.startPosition(), c.blockTable()));
        }
        return new ForwardBatch(out);
    }

    /**
     * New tokens of one sequence, at positions {@code startPosition ..}; earlier positions are already in
     * the cache. A decode step is a chunk of one token; a prefill is one or more chunks of many; a speculative
     * verification is the last token and the draft's tokens, with an output at each.
     *
     * @param carriedFrom -1, or the chunk of the previously submitted step whose sampled token is this chunk's one
     *                    token, not known on the host yet ({@link ModelRunner#submit}); {@code tokens} then holds a
     *                    placeholder
     * @param outputs     how many of the chunk's last positions produce next-token logits (and a token, where a
     *                    sampler is given): 1 but for a verification
     */
    public record Chunk(int[] tokens, int startPosition, BlockTable blockTable, int carriedFrom, int outputs) {
        public Chunk {
            if (tokens.length == 0) {
                throw new IllegalArgumentException("a chunk needs at least one token");
            }
            if (carriedFrom >= 0 && tokens.length != 1) {
                throw new IllegalArgumentException("a chunk that carries a token from the previous step has only that token");
            }
            if (outputs < 1 || outputs > tokens.length) {
                throw new IllegalArgumentException("a chunk of " + tokens.length + " tokens has " + outputs + " outputs");
            }
        }

        public Chunk(int[] tokens, int startPosition, BlockTable blockTable) {
            this(tokens, startPosition, blockTable, -1, 1);
        }

        /** The one-token chunk at {@code position} whose token chunk {@code fromChunk} of the previous step samples. */
        public static Chunk carried(int fromChunk, int position, BlockTable blockTable) {
            if (fromChunk < 0) {
                throw new IllegalArgumentException("chunk index " + fromChunk);
            }
            return new Chunk(new int[] {0}, position, blockTable, fromChunk, 1);
        }
    }
}
