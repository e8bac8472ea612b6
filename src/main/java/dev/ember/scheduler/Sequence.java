package dev.ember.scheduler;

import dev.ember.backend.SubmittedStep;
import dev.ember.kvcache.BlockTable;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;

import java.util.Arrays;

/**
 * One request as the scheduler sees it: its tokens (prompt, then generated), how many of them already have
 * keys and values in the cache, its block table, its own sampler and its text. The {@link Scheduler} owns its life,
 * from {@link Scheduler#add} to the step whose token ends it.
 */
public final class Sequence {
    public enum Status { WAITING, RUNNING, FINISHED }

    private static final int[] NO_DRAFT = new int[0];

    private final long id;
    private final int promptLength;
    private final SamplingParams params;
    private final Sampler sampler;
    private final BlockTable blockTable;
    private final SequenceText text;
    private final long arrivalNanos;
    private final int lengthLimit;
    private int[] tokens;
    private int length;
    private int computed;
    /** Tokens sampled by submitted steps that have not reached the host yet (0, or 1 while steps overlap). */
    private int inFlight;
    /** The output of the latest submitted step that samples this sequence's next token. */
    private int inFlightOutput = -1;
    /** Tokens a draft proposed to follow this sequence, for the next step to verify; empty when none. */
    private int[] draft = NO_DRAFT;
    /** The draft's distribution for each drafted token (sampled drafts); null for greedy ones. */
    private double[][] draftDistributions;
    /**
     * The draft model's step that sampled the last drafted token, while that token is known only on the device (its
     * place in {@link #draft} holds a placeholder), and its output there; null once every drafted token is on the host.
     */
    private SubmittedStep draftLastOnDevice;
    private int draftLastOutput;
    private Status status = Status.WAITING;
    private FinishReason finishReason;
    private String stopString;
    private int stopToken = -1;
    private int cachedPromptTokens;
    private int preemptions;
    private long firstTokenNanos;
    private long finishNanos;

    /**
     * @param blockTable    an empty table over the cache's blocks ({@code BlockAllocator.newTable})
     * @param text          how its tokens become text ({@link SequenceText#of})
     * @param contextLength the longest the sequence may grow (prompt plus generated tokens), whatever
     *                      {@code params.maxTokens()} allows
     */
    public Sequence(long id, int[] prompt, SamplingParams params, Sampler sampler, BlockTable blockTable,
                    SequenceText text, long arrivalNanos, int contextLength) {
        this.id = id;
        this.lengthLimit = (int) Math.min(contextLength, (long) prompt.length + params.maxTokens());
        this.promptLength = prompt.length;
        this.params = params;
        this.sampler = sampler;
        this.blockTable = blockTable;
        this.text = text;
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

    /** The generated text so far, stop strings and what follows them left out. */
    public String text() {
        return text.text();
    }

    SequenceText sequenceText() {
        return text;
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

    /** The output of the latest submitted step that samples this sequence's next token (valid while in flight). */
    int inFlightOutput() {
        return inFlightOutput;
    }

    /** Notes that the step just submitted samples this sequence's next token at its output {@code output}. */
    void sampling(int output) {
        inFlight++;
        inFlightOutput = output;
    }

    /**
     * Proposes {@code tokens} to follow this sequence, for its next decode step to verify alongside its last token
     * ({@code distributions[i]}: the draft's distribution of token i, for sampled requests; null for greedy ones).
     */
    public void propose(int[] tokens, double[][] distributions) {
        if (tokens.length > 0 && length + tokens.length >= lengthLimit) {
            throw new IllegalArgumentException(tokens.length + " drafted tokens would run past the sequence's length limit");
        }
        this.draft = tokens.clone();
        this.draftDistributions = distributions;
        this.draftLastOnDevice = null;
    }

    /**
     * Proposes {@code tokens} as {@link #propose} does for a greedy draft, but the last of them is a placeholder for the
     * token output {@code output} of {@code step} samples: a draft model's last step, not awaited yet, from which the
     * verification takes that token on the device. {@link #draftArrived} puts it in place when it reaches the host, which
     * must be before the verification is judged.
     */
    public void proposeEndingOnDevice(int[] tokens, SubmittedStep step, int output) {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("a draft ending on the device has at least that token");
        }
        propose(tokens, null);
        this.draftLastOnDevice = step;
        this.draftLastOutput = output;
    }

    /** The drafted tokens the next step verifies (empty when none); the last a placeholder while {@link #draftLastOnDevice}. */
    public int[] draft() {
        return draft;
    }

    /** The step whose output {@link #draftLastOutput} is the last drafted token while the host does not know it; else null. */
    public SubmittedStep draftLastOnDevice() {
        return draftLastOnDevice;
    }

    public int draftLastOutput() {
        return draftLastOutput;
    }

    /** The last drafted token, which was known only on the device, reached the host: it replaces the placeholder. */
    public void draftArrived(int token) {
        if (draftLastOnDevice == null) {
            throw new IllegalStateException("no drafted token of sequence " + id + " is on the device");
        }
        draft[draft.length - 1] = token;
        draftLastOnDevice = null;
    }

    /** The draft's distribution of drafted token {@code i}; null for a greedy draft. */
    public double[] draftDistribution(int i) {
        return draftDistributions == null ? null : draftDistributions[i];
    }

    void clearDraft() {
        draft = NO_DRAFT;
        draftDistributions = null;
        draftLastOnDevice = null;
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

    /** How many leading tokens, of the first {@code limit}, this sequence has in common with {@code other}. */
    int commonPrefix(Sequence other, int limit) {
        int n = Math.min(limit, Math.min(length, other.length));
        int mismatch = Arrays.mismatch(tokens, 0, n, other.tokens, 0, n);
        return mismatch < 0 ? n : mismatch;
    }

    /**
     * Appends a sampled token (one in flight, if any: tokens land in the order their steps were submitted); its keys
     * and values are computed by the next step.
     */
    void append(int token, long nowNanos) {
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

    /**
     * What ended it, where a request's own stop did (vLLM's {@code stop_reason}): the stop string its text completed,
     * or null; the stop token drawn, or -1. An end-of-sequence token or the length leaves both unset.
     */
    public String stopString() {
        return stopString;
    }

    public int stopToken() {
        return stopToken;
    }

    void stoppedBy(String stopString, int stopToken) {
        this.stopString = stopString;
        this.stopToken = stopToken;
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
