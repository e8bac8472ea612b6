package dev.ember.backend;

import dev.ember.kvcache.BlockTable;

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

    public int totalTokens() {
        int n = 0;
        for (Chunk c : chunks) {
            n += c.tokens().length;
        }
        return n;
    }

    /**
     * New tokens of one sequence, at positions {@code startPosition ..}; earlier positions are already in
     * the cache. A decode step is a chunk of one token; a prefill is one or more chunks of many.
     */
    public record Chunk(int[] tokens, int startPosition, BlockTable blockTable) {
        public Chunk {
            if (tokens.length == 0) {
                throw new IllegalArgumentException("a chunk needs at least one token");
            }
        }
    }
}
