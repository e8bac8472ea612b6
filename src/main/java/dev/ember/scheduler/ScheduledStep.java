package dev.ember.scheduler;

import dev.ember.backend.ForwardBatch;

import java.util.ArrayList;
import java.util.List;

/** What one engine step computes: a run of new tokens for each scheduled sequence. */
public record ScheduledStep(List<Work> work) {

    public ScheduledStep {
        work = List.copyOf(work);
    }

    /**
     * Tokens {@code [start, start + count)} of {@code sequence}; when they reach its end, the step's logits
     * for it sample the next token.
     */
    public record Work(Sequence sequence, int start, int count) {
        public boolean samples() {
            return start + count == sequence.length();
        }

        public boolean isDecode() {
            return count == 1 && start == sequence.length() - 1 && sequence.generatedCount() > 0;
        }
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
            chunks.add(new ForwardBatch.Chunk(w.sequence().tokenRange(w.start(), w.start() + w.count()), w.start(),
                    w.sequence().blockTable()));
        }
        return new ForwardBatch(chunks);
    }
}
