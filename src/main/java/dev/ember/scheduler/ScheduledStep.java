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
     * @param carriedFrom -1, or the chunk of the step in flight whose sampled token is this work's one token (the
     *                    engine overlaps steps: this token reaches the host only after this step is scheduled)
     */
    public record Work(Sequence sequence, int start, int count, boolean samples, int carriedFrom) {
    }

    public boolean isEmpty() {
        return work.isEmpty();
    }

    public int tokens() {
        return work.stream().mapToInt(Work::count).sum();
    }

    public ForwardBatch toForwardBatch() {
        List<ForwardBatch.Chunk> chunks = new ArrayList<>(work.size());
        for (Work w : work) {
            BlockTable table = w.sequence().blockTable();
            chunks.add(w.carriedFrom() >= 0 ? ForwardBatch.Chunk.carried(w.carriedFrom(), w.start(), table)
                    : new ForwardBatch.Chunk(w.sequence().tokenRange(w.start(), w.start() + w.count()), w.start(), table));
        }
        return new ForwardBatch(chunks);
    }
}
