package dev.ember.backend;

import dev.ember.backend.streaming.StreamingReport;
import dev.ember.kvcache.BlockAllocator;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.ModelConfig;
import dev.ember.sampling.Sampler;

import java.util.List;
import java.util.Optional;

/**
 * Runs a loaded model. One call to {@link #forward} is one engine step: any mix of prefill chunks and
 * single-token decodes for many sequences, each writing its keys and values into the paged cache
 * through its block table, and producing next-token logits for the last token of each chunk.
 */
public interface ModelRunner extends AutoCloseable {

    ModelConfig config();

    KvCacheSpec kvSpec();

    /** The allocator over this runner's KV blocks; block ids index the runner's cache storage. */
    BlockAllocator blockAllocator();

    /**
     * Queues {@code batch} and returns before its tokens are known, so that the caller can prepare the next step while
     * the device computes this one (the engine's overlap of CPU and GPU work). For every chunk {@code i} whose
     * {@code samplers[i]} is non-null, the step picks the token that sampler draws from the chunk's last-token logits
     * (as {@link Sampler#sample} would, consuming the sampler's random stream the same way); a backend samples where the
     * logits are and returns only token ids. A null sampler (a prompt chunk that does not end its prompt) picks none.
     * The samplers are not told of the tokens; the caller {@link Sampler#observe}s them.
     *
     * <p>A chunk whose {@link ForwardBatch.Chunk#carriedFrom()} is not -1 takes as its last {@link
     * ForwardBatch.Chunk#carried()} tokens the ones the step submitted just before this one sampled at that output and
     * those after it: that step's samplers must all {@link #carriesTokens}. Where the chunk names a {@link
     * ForwardBatch.Chunk#carrySource() carrySource}, those tokens are instead ones sampled by the step of another runner
     * of the same backend (and device), which must be the last that runner submitted, its samplers ones that runner
     * {@link #carriesTokens carries}: so a draft model's step feeds the target's verification, and the verification
     * the draft's catch-up, with no wait on the host between them. A step whose tokens another runner carries may be
     * awaited at any time, and that runner's next step is ordered after the carrying step has taken them.
     * At most one step may be submitted and not yet awaited when the next is submitted; {@code samplers} is read
     * until the step is awaited. Each chunk's block table must already hold slots for {@code startPosition +
     * tokens.length} tokens.
     */
    SubmittedStep submit(ForwardBatch batch, Sampler[] samplers);

    /**
     * Computes {@code batch} now and writes the {@code vocabSize} logits of its output row {@code i} into
     * {@code logits[i * vocabSize, (i + 1) * vocabSize)}: each chunk's {@link ForwardBatch.Chunk#outputs()} last
     * positions, in chunk order ({@link ForwardBatch#outputRows()}). For comparing a forward pass against a reference,
     * and for scoring a text (perplexity). Carried chunks are refused.
     */
    void forward(ForwardBatch batch, float[] logits);

    /**
     * Whether a token {@code sampler} draws can feed the next submitted step before it reaches the host (a token the
     * host must draw from copied logits cannot).
     */
    boolean carriesTokens(Sampler sampler);

    /**
     * Whether a submitted step computes on its device while the host goes on, so that work queued behind it runs
     * beside the host's (a GPU); false where a step computes only when it is awaited (the CPU), so that queuing work
     * early overlaps nothing.
     */
    default boolean computesAhead() {
        return false;
    }

    /** Bytes per element of the KV cache as this runner stores it, for the bytes a step reads. */
    int kvElementBytes();

    /**
     * Bytes per element of the weight matrices as this runner reads them each step, for the bytes a step reads: the
     * checkpoint's (or {@code --dtype}'s) type, or wider where the runner widens it at load (f16 on the CPU).
     */
    int weightElementBytes();

    /**
     * {@code points} marks to place along this runner's work ({@link WorkMarks#mark} after a submit falls right after
     * that step's work): CUDA events on the GPU, the host's clock when a step completes on the CPU.
     */
    WorkMarks workMarks(int points);

    /** The device this runner computes on, for summaries and benchmark headers. */
    String deviceName();

    /**
     * Prepares, before any timed work, what steps of up to {@code maxBatch} sequences and {@code maxStepTokens} tokens,
     * in sequences of up to {@code contextTokens} tokens, would otherwise prepare on their way (the CUDA backend grows
     * its buffers and captures its decode graphs); nothing by default.
     */
    default void warmUp(int maxBatch, int maxStepTokens, int contextTokens) {
    }

    /**
     * A runner of this model's first {@code layers} decoder layers, then its final norm and output projection (the
     * draft of self-speculative decoding), reading this runner's weights where they are rather than holding them
     * again, with a KV cache of its own of geometry {@code kv}. Empty where this runner cannot lend its layers (they
     * stream through a window), for the caller to load them itself. Closing it frees only its own cache and buffers;
     * it must be closed before this runner.
     */
    default Optional<ModelRunner> firstLayers(int layers, KvCacheSpec kv) {
        return Optional.empty();
    }

    /**
     * How the weights stream through the device's window, and what has been copied so far; empty for a runner that
     * holds every weight (mode {@code full}).
     */
    default Optional<StreamingReport> streaming() {
        return Optional.empty();
    }

    /** Where this runner's steps spent their time so far; {@link StepCounters#NONE} for a runner that does not count. */
    default StepCounters counters() {
        return StepCounters.NONE;
    }

    /**
     * What this runner chose by timing candidates on its device so far (the CUDA runner: the implementation of each
     * small matrix product), one line each, for a benchmark's log: two runs that chose differently did not run the same
     * code. Empty for a runner that chooses nothing by measuring.
     */
    default List<String> measuredChoices() {
        return List.of();
    }

    /**
     * Starts timing the stages of every step into {@code profile} ({@link StageProfile#OFF} stops it). Off by default;
     * while on, the CUDA runner runs every step eagerly (no graphs) so that it can mark its stream between stages.
     */
    default void profileStages(StageProfile profile) {
        if (profile.enabled()) {
            throw new dev.ember.EmberException("the runner on " + deviceName() + " does not profile stages");
        }
    }

    @Override
    void close();
}
