package dev.ember.scheduler;

import dev.ember.kvcache.BlockTable;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;

import java.util.Arrays;

/**
 * One request as the scheduler sees it: its tokens (prompt, then generated), how many of them already have
 * keys and values in the cache, its block table and its own sampler.
 */
public final class Sequence {
    public enum Status { WAITING, RUNNING, FINISHED }

    private final long id;
    private final int promptLength;
    private final SamplingParams params;
    private final Sampler sampler;
    private final BlockTable blockTable;
    private final long arrivalNanos;
    private final int lengthLimit;
    private int[] tokens;
    private int length;
    private int computed;
    /** Tokens sampled by submitted steps that have not reached the host yet (0, or 1 while steps overlap). */
    private int inFlight;
    /** The chunk of the latest submitted step that samples this sequence's next token. */
    private int inFlightChunk = -1;
    private Status status = Status.WAITING;
    private FinishReason finishReason;
    private int cachedPromptTokens;
    private int preemptions;
    private long firstTokenNanos;
    private long finishNanos;

    /**
     * @param contextLength the longest the sequence may grow (prompt plus generated tokens), whatever
     *                      {@code params.maxTokens()} allows
     */
    public Sequence(long id, int[] prompt, SamplingParams params, Sampler sampler, int blockSize, long arrivalNanos,
                    int contextLength) {
        this.id = id;
        this.lengthLimit = (int) Math.min(contextLength, (long) prompt.length + params.maxTokens());
        this.promptLength = prompt.length;
        this.params = params;
        this.sampler = sampler;
        this.blockTable = new BlockTable(blockSize);
        this.arrivalNanos = arrivalNanos;
        this.tokens = Arrays.copyOf(prompt, prompt.length + Math.min(params.maxTokens(), 1 << 16));
        this.length = prompt.length;
        for (int t : prompt) {
            sampler.observe(t);
        }
    }

    public long id() {
        return id;
    }

    public SamplingParams params() {
        return params;
    }

    public Sampler sampler() {
        return sampler;
    }

    public BlockTable blockTable() {
        return blockTable;
    }

    public Status status() {
        return status;
    }

    void status(Status status) {
        this.status = status;
    }

    public int promptLength() {
        return promptLength;
    }

    /** Prompt plus generated tokens. */
    public int length() {
        return length;
    }

    /** Tokens whose keys and values are in the cache. */
    public int computed() {
        return computed;
    }

    void computed(int computed) {
        this.computed = computed;
    }

    /** The length at which the sequence ends: its prompt plus max tokens, or the context, whichever is shorter. */
    public int lengthLimit() {
        return lengthLimit;
    }

    /** Tokens sampled by submitted steps that the host has not appended yet. */
    public int inFlight() {
        return inFlight;
    }

    /** The chunk of the latest submitted step that samples this sequence's next token (valid while in flight). */
    int inFlightChunk() {
        return inFlightChunk;
    }

    /** Notes that the step just submitted samples this sequence's next token in its chunk {@code chunk}. */
    void sampling(int chunk) {
        inFlight++;
        inFlightChunk = chunk;
    }

    public int generatedCount() {
        return length - promptLength;
    }

    public int token(int index) {
        return tokens[index];
    }

    public int lastToken() {
        return tokens[length - 1];
    }

    public int[] tokens() {
        return Arrays.copyOf(tokens, length);
    }

    public int[] generatedTokens() {
        return Arrays.copyOfRange(tokens, promptLength, length);
    }

    /** Tokens {@code [from, to)}; positions still in flight are not known here. */
    int[] tokenRange(int from, int to) {
        if (to > length) {
            throw new IllegalStateException("tokens up to " + to + " asked of a sequence of " + length);
        }
        return Arrays.copyOfRange(tokens, from, to);
    }

    /**
     * Appends a sampled token (one in flight, if any: tokens land in the order their steps were submitted); its keys
     * and values are computed by the next step.
     */
    public void append(int token, long nowNanos) {
        if (inFlight > 0) {
            inFlight--;
        }
        if (length == tokens.length) {
            tokens = Arrays.copyOf(tokens, tokens.length * 2);
        }
        tokens[length++] = token;
        sampler.observe(token);
        if (length - promptLength == 1) {
            firstTokenNanos = nowNanos;
        }
    }

    public FinishReason finishReason() {
        return finishReason;
    }

    void finished(FinishReason reason, long nowNanos) {
        this.finishReason = reason;
        this.finishNanos = nowNanos;
        this.status = Status.FINISHED;
    }

    public boolean isFinished() {
        return status == Status.FINISHED;
    }

    /** Prompt tokens served from the prefix cache at admission. */
    public int cachedPromptTokens() {
        return cachedPromptTokens;
    }

    void cachedPromptTokens(int n) {
        this.cachedPromptTokens = n;
    }

    public int preemptions() {
        return preemptions;
    }

    void preempted() {
        preemptions++;
    }

    public long arrivalNanos() {
        return arrivalNanos;
    }

    public long firstTokenNanos() {
        return firstTokenNanos;
    }

    public long finishNanos() {
        return finishNanos;
    }
}
