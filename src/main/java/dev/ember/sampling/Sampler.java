package dev.ember.sampling;

import dev.ember.EmberException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Picks one sequence's next token from a row of logits. The steps and their order are those of HF
 * transformers' {@code generate}: repetition penalty, then (when sampling) temperature, top-k, top-p and
 * min-p, then a draw from the softmax of what is left. Greedy decoding (temperature 0) takes the argmax of
 * the penalised logits; the lowest id wins a tie, as with {@code torch.argmax}.
 *
 * <p>Before those steps come the OpenAI and vLLM ones, in vLLM's order: the logit bias, then (until {@code min_tokens}
 * tokens have been drawn) the stop tokens masked, then the penalties: repetition (HF's, over prompt and output) and
 * OpenAI's presence and frequency penalties (over the output: the tokens this sampler drew). With logprobs asked for,
 * each drawn token's log-probability and the most likely tokens' are read off the raw row first
 * ({@link #logprobs(int)}). Last, a grammar ({@link SamplingParams#grammar()}, structured output) masks every token
 * that would not keep the output matching it.
 *
 * <p>Ties between equal logits: top-k keeps every token tied with the k-th largest logit, exactly as HF
 * does ({@code scores < topk(scores)[-1]} is what it removes). Top-p depends on an order among equal
 * logits that HF leaves to {@code torch.sort}; here the lower id counts as the more likely, the same rule
 * as the argmax, so the nucleus is always the smallest prefix of one well-defined order.
 *
 * <p>The work per step is sized for a 150k vocabulary: top-k is a partial selection through a k-element
 * heap; top-p histograms the tokens' weights to find the one bucket where the nucleus ends, and orders
 * only that bucket's tokens, lazily, through a heap popped until the nucleus is complete. Token weights
 * are floats, as in HF's float32 softmax; their sums are doubles. After its work arrays have grown to
 * the vocabulary, {@link #sample} allocates nothing.
 *
 * <p>One sampler per sequence; not thread-safe. Its random stream is seeded from
 * {@link SamplingParams#seed()}, so the same request with the same logits draws the same tokens.
 */
public final class Sampler {
    /** Buckets of the nucleus histogram: 1/8 octave each (a 9% ratio), reaching 2^-64 below the top token. */
    static final int NUCLEUS_BUCKETS = 512;
    private static final int ONE_BITS = Float.floatToRawIntBits(1f);

    private final SamplingParams params;
    private final int vocabSize;
    private final SamplingScratch scratch;
    private final SplittableRandom random;
    /** Absent when the penalty is 1: then there is nothing to remember. */
    private final RepetitionPenalty repetitionPenalty;
    /** Absent when the presence and frequency penalties are 0. */
    private final OutputPenalties outputPenalties;
    /** The logit bias as arrays, and the stop tokens in the vocabulary (masked before min_tokens): no iterator per draw. */
    private final int[] biasIds;
    private final float[] biasValues;
    private final int[] maskedIds;
    /** Where the output stands in its grammar (structured output), and the tokens it allows; null for free text. */
    private final OutputGrammar.Matcher grammar;
    private final BitSet allowed;
    /** What has been drawn for the sequence, shared with the samplers that verify its drafts. */
    private final Draws draws;
    /** The raw row, kept while logprobs are read after the draw. */
    private float[] raw = new float[0];

    /** Total weight of the tokens that survive the current step's filters. */
    private double keptMass;
    /**
     * What this sampler does beside drawing freely: for a sampled (non-greedy) sequence's speculation, a drafting sampler
     * keeps the distribution it drew its last token from and a verifying one judges a drafted token instead of drawing;
     * a scoring one reads a prompt token's log-probabilities off the row before it and draws nothing. Null for a plain one.
     */
    private final Role role;

    /**
     * A sequence's draws: how many, and each one's log-probabilities (absent when none were asked for). A verification's
     * rows are drawn in order by the samplers that judge its drafts and then by the sequence's own, each counting on
     * from the one before, so that min_tokens masks by a token's place in the output and the logprobs are each row's;
     * {@link #resumeAt} then drops the draws of the rows the verification rejected. Also the prompt's scores, by position
     * (absent when none were asked for).
     */
    private static final class Draws {
        int count;
        final List<TokenLogprobs> logprobs;
        ScoredToken[] prompt;
        /** Why the sequence cannot go on: a row it could not be drawn from ({@link #sampleInStep}); null while it can. */
        String failure;

        Draws(boolean withLogprobs, boolean withPromptLogprobs) {
            logprobs = withLogprobs ? new ArrayList<>() : null;
            prompt = withPromptLogprobs ? new ScoredToken[0] : null;
        }
    }

    /** What a drafting, verifying or scoring sampler does beside (or instead of) drawing. */
    private sealed interface Role {
        /** Keeps the distribution of the last draw (the draft's q for that token). */
        final class Drafting implements Role {
            double[] lastDistribution;
        }

        /** Judges {@code draftToken}, drawn from {@code draftDistribution} by the draft. */
        record Verifying(int draftToken, double[] draftDistribution) implements Role {
        }

        /** Scores the prompt's {@code token} at {@code position} from the row of the position before it. */
        record Scoring(int position, int token) implements Role {
        }
    }

    public Sampler(SamplingParams params, int vocabSize) {
        this(params, vocabSize, new SamplingScratch());
    }

    /** A sampler that borrows {@code scratch}, which it may share with other samplers run by the same thread. */
    public Sampler(SamplingParams params, int vocabSize, SamplingScratch scratch) {
        if (vocabSize < 1) {
            throw new EmberException("sampler: vocabulary size must be >= 1, got " + vocabSize);
        }
        this.params = params;
        this.vocabSize = vocabSize;
        this.scratch = scratch;
        this.random = new SplittableRandom(params.seed());
        this.repetitionPenalty = params.repetitionPenalty() == 1f ? null
                : new RepetitionPenalty(params.repetitionPenalty(), vocabSize);
        this.outputPenalties = params.presencePenalty() == 0f && params.frequencyPenalty() == 0f ? null
                : new OutputPenalties(params.presencePenalty(), params.frequencyPenalty());
        this.draws = new Draws(params.logprobs() >= 0, params.promptLogprobs() >= 0);
        this.biasIds = new int[params.logitBias().size()];
        this.biasValues = new float[biasIds.length];
        int b = 0;
        for (Map.Entry<Integer, Float> bias : params.logitBias().entrySet()) {
            if (bias.getKey() >= vocabSize) {
                throw new EmberException("logit_bias: token id " + bias.getKey() + " is outside the vocabulary of " + vocabSize + " tokens");
            }
            biasIds[b] = bias.getKey();
            biasValues[b++] = bias.getValue();
        }
        this.maskedIds = params.stopTokenIds().stream().filter(id -> id < vocabSize).mapToInt(Integer::intValue).toArray();
        this.grammar = params.grammar() == null ? null : params.grammar().start();
        this.allowed = grammar == null ? null : new BitSet(vocabSize);
        this.role = null;
    }

    /** A sampler of {@code base}'s parameters that shares its random stream and its draws, in {@code role}. */
    private Sampler(Sampler base, Role role) {
        this.params = base.params;
        this.vocabSize = base.vocabSize;
        this.scratch = base.scratch;
        this.random = base.random;
        this.repetitionPenalty = base.repetitionPenalty;
        this.outputPenalties = base.outputPenalties;
        this.draws = base.draws;
        this.biasIds = base.biasIds;
        this.biasValues = base.biasValues;
        this.maskedIds = base.maskedIds;
        this.grammar = base.grammar;
        this.allowed = base.allowed;
        this.role = role;
    }

    /**
     * Whether a sequence with this sampler can speculate: its choice must depend on the logits of its position and on
     * how many tokens came before it (min_tokens), not on which (the penalties count the tokens drawn, drafted ones
     * too, and a grammar follows them).
     */
    public boolean canSpeculate() {
        return repetitionPenalty == null && outputPenalties == null && grammar == null && role == null;
    }

    /**
     * For a draft model's steps: a sampler that draws as this one does (min_tokens included, once {@link #resumeAt}
     * tells it where the sequence is), from its own random stream seeded from this one's seed, without logprobs, and
     * keeps the distribution of each draw ({@link #lastDistribution()}), which verification needs. A greedy one needs
     * no distribution: it is a plain sampler.
     */
    public Sampler drafting() {
        Sampler own = new Sampler(params.withSeed(params.seed() * 0x9E3779B97F4A7C15L + 1).withLogprobs(-1).withPromptLogprobs(-1),
                vocabSize);
        return params.isGreedy() ? own : new Sampler(own, new Role.Drafting());
    }

    /**
     * Continues as a sampler that has drawn {@code kept} tokens: the sequence kept that many (a verification rejected
     * the rows after them, or a draft runs ahead of it again), so the draws beyond, and their logprobs, are dropped.
     */
    public void resumeAt(int kept) {
        if (draws.logprobs != null && draws.logprobs.size() > kept) {
            draws.logprobs.subList(kept, draws.logprobs.size()).clear();
        }
        draws.count = kept;
    }

    /** Whether this sampler may draw {@code token} as the sequence's {@code index}-th output (0 for the first). */
    public boolean mayDraw(int token, int index) {
        if (index < params.minTokens()) {
            for (int id : maskedIds) {
                if (id == token) {
                    return false;
                }
            }
        }
        return true;
    }

    /** The distribution a drafting sampler drew its last token from; null for a greedy or plain one. */
    public double[] lastDistribution() {
        return role instanceof Role.Drafting d ? d.lastDistribution : null;
    }

    /**
     * For the target's row that follows a drafted token: a sampler sharing this one's random stream that returns
     * {@code draftToken} when it accepts it and otherwise the token it draws instead, so that the tokens kept are
     * distributed as this sampler's own (Leviathan et al. 2023; Chen et al. 2023). Greedy: this sampler, whose argmax
     * accepts the draft exactly when it equals it. Sampled: accepts with probability min(1, p/q) of the draft token
     * and, on rejection, draws from the normalised max(0, p - q).
     *
     * @param draftDistribution the draft's distribution q for the token ({@link #lastDistribution()}); unused if greedy
     */
    public Sampler verifying(int draftToken, double[] draftDistribution) {
        if (params.isGreedy()) {
            return this;
        }
        if (draftDistribution == null || draftDistribution.length != vocabSize) {
            throw new IllegalArgumentException("verifying a sampled draft needs the draft's distribution over "
                    + vocabSize + " tokens");
        }
        return new Sampler(this, new Role.Verifying(draftToken, draftDistribution));
    }

    public SamplingParams params() {
        return params;
    }

    public int vocabSize() {
        return vocabSize;
    }

    /**
     * The next number of this sampler's seeded stream, uniform in [0, 1): what {@link #sample} draws with, for a
     * backend that draws on its own device. One call per sampled (non-greedy) token keeps the stream where
     * {@code sample} would have left it, so a run is repeatable whichever side drew.
     */
    public double nextUniform() {
        return random.nextDouble();
    }

    /**
     * Whether this sampler's steps are plain temperature / top-k / top-p (or greedy), the steps that need nothing
     * but the row of logits and one uniform number; false with a repetition penalty or min-p. Logprobs do not count:
     * they are read off the raw row, which a device can do beside its draw ({@link #recordLogprobs}).
     */
    public boolean isPlainTopKTopP() {
        return grammar == null && plainButForGrammar();
    }

    /**
     * Whether this sampler is plain temperature / top-k / top-p (or greedy) but for a grammar, and asks no logprobs: a
     * device can draw its token from a row it masks with {@link #allowedTokens}, as {@link #sample} masks it, and then
     * tell the sampler with {@link #drewElsewhere}. (Logprobs are read off the raw row, before the mask, so a sampler
     * that asks for them draws where that row is kept.)
     */
    public boolean isPlainButForItsGrammar() {
        return grammar != null && draws.logprobs == null && plainButForGrammar();
    }

    /** No step but temperature, top-k and top-p, the grammar aside; and drawing for itself, not scoring or speculating. */
    private boolean plainButForGrammar() {
        return repetitionPenalty == null && params.minP() == 0f && outputPenalties == null && params.logitBias().isEmpty()
                && (params.minTokens() == 0 || params.stopTokenIds().isEmpty()) && role == null;
    }

    /**
     * The tokens this sampler's grammar allows next, every other token's logit being what {@link #sample} sets to
     * minus infinity. The sampler's own set, valid until its next draw: read it, do not keep it.
     *
     * @throws IllegalStateException if the sampler has no grammar
     */
    public BitSet allowedTokens() {
        if (grammar == null) {
            throw new IllegalStateException("a sampler without a grammar allows every token");
        }
        grammar.allowedTokens(allowed);
        return allowed;
    }

    /**
     * Records a token drawn elsewhere (a device, from a row masked by {@link #allowedTokens}): its grammar moves past it,
     * as after {@link #sample}.
     */
    public void drewElsewhere(int token) {
        draws.count++;
        if (grammar != null) {
            grammar.accept(token);
        }
    }

    /**
     * Whether this sampler must know a sequence's latest token on the host before it draws the next (a repetition
     * penalty {@link #observe}s it; a grammar has moved past it, unless it allows the same tokens at every step): a step
     * whose tokens it draws cannot be computed before the previous step's token reached the host.
     */
    public boolean observesTokens() {
        return repetitionPenalty != null || grammar != null && params.grammar().followsTokens();
    }

    /**
     * The log-probabilities of the {@code index}-th token drawn (0 for the first), when {@link SamplingParams#logprobs()}
     * asked for them; null otherwise.
     */
    public TokenLogprobs logprobs(int index) {
        return draws.logprobs == null ? null : draws.logprobs.get(index);
    }

    /**
     * For the row of prompt position {@code position - 1}, when {@link SamplingParams#promptLogprobs()} asked for the
     * prompt's scores: a sampler that records that row's log-probabilities of the prompt's {@code token} at
     * {@code position} ({@link #promptLogprobs(int)}) and returns {@code token}, drawing nothing. It reads the raw row,
     * before bias, penalties and temperature, as vLLM's prompt logprobs do; a row scored again (a prompt recomputed after
     * preemption) replaces the earlier score.
     *
     * @throws IllegalStateException if no prompt logprobs were asked for
     */
    public Sampler scoring(int position, int token) {
        if (draws.prompt == null) {
            throw new IllegalStateException("a prompt scored for a sampler that was not asked for its logprobs");
        }
        if (position < 1 || token < 0 || token >= vocabSize) {
            throw new IllegalArgumentException("prompt token " + token + " at position " + position + " cannot be scored");
        }
        return new Sampler(this, new Role.Scoring(position, token));
    }

    /** The score of the prompt's token at {@code position} (1 for the second token), or null where none was recorded. */
    public ScoredToken promptLogprobs(int position) {
        return draws.prompt == null || position >= draws.prompt.length ? null : draws.prompt[position];
    }

    private void scorePrompt(int position, ScoredToken score) {
        if (position >= draws.prompt.length) {
            draws.prompt = Arrays.copyOf(draws.prompt, Math.max(position + 1, 2 * draws.prompt.length));
        }
        draws.prompt[position] = score;
    }

    /**
     * How many of the most likely tokens each draw reports beside its own log-probability ({@link SamplingParams#logprobs()}),
     * or -1 when no logprobs are asked for: what a runner that draws on its own device computes for {@link #recordLogprobs}.
     */
    public int topLogprobs() {
        return draws.logprobs == null ? -1 : params.logprobs();
    }

    /**
     * Records the logprobs of a draw made elsewhere (a device that drew this sampler's token from its row and read them
     * off it, as {@link TokenLogprobs#of} does), in the order {@link #sample} would have recorded them: one call per
     * draw, draws in the order of their rows, so that {@link #logprobs(int)} and {@link #resumeAt} find each where
     * {@code sample} would have put it. Counts no draw, as a device's draw without logprobs counts none: the count only
     * masks the stop tokens before min_tokens, and a sampler that masks any is not {@link #isPlainTopKTopP plain}.
     *
     * @throws IllegalStateException if no logprobs were asked for
     */
    public void recordLogprobs(TokenLogprobs logprobs) {
        if (draws.logprobs == null) {
            throw new IllegalStateException("logprobs recorded for a sampler that was not asked for them");
        }
        draws.logprobs.add(logprobs);
    }

    /** Records a token of the sequence (prompt or output) for the repetition penalty. */
    public void observe(int tokenId) {
        if (tokenId < 0 || tokenId >= vocabSize) {
            throw new EmberException("sampler: token id " + tokenId + " is outside the vocabulary [0, " + vocabSize + ")");
        }
        if (repetitionPenalty != null) {
            repetitionPenalty.observe(tokenId);
        }
    }

    /** Records every token of {@code tokenIds}, typically the prompt. */
    public void observe(int[] tokenIds) {
        for (int tokenId : tokenIds) {
            observe(tokenId);
        }
    }

    /**
     * Draws the next token from the row {@code logits[offset, offset + vocabSize)}. The repetition penalty
     * is applied to that row in place (as HF's processor does to its scores); the other steps leave the
     * row as it is. Nothing outside the row is read or written.
     *
     * @throws EmberException if the row does not fit in {@code logits}, holds a NaN, or (when sampling)
     *                        has no finite largest logit
     */
    public int sample(float[] logits, int offset) {
        checkRow(logits, offset);
        if (role instanceof Role.Scoring(int position, int token)) {
            scorePrompt(position, ScoredToken.of(logits, offset, vocabSize, token, params.promptLogprobs()));
            return token;
        }
        if (draws.logprobs != null) {
            if (raw.length < vocabSize) {
                raw = new float[vocabSize];
            }
            System.arraycopy(logits, offset, raw, 0, vocabSize);
        }
        prepare(logits, offset);
        int token = params.isGreedy() ? argmax(logits, offset) : switch (role) {
            case null -> draw(filter(logits, offset));
            case Role.Scoring s -> throw new AssertionError(s);
            case Role.Drafting d -> {
                int kept = filter(logits, offset);
                d.lastDistribution = distribution(kept);
                yield draw(kept);
            }
            case Role.Verifying v -> verify(v, distribution(filter(logits, offset)));
        };
        draws.count++;
        if (outputPenalties != null) {
            outputPenalties.add(token);
        }
        if (grammar != null) {
            grammar.accept(token);
        }
        if (draws.logprobs != null) {
            draws.logprobs.add(TokenLogprobs.of(raw, 0, vocabSize, token, params.logprobs()));
        }
        return token;
    }

    /**
     * {@link #sample}, as a runner draws within a step of many sequences: where this row cannot be drawn from (a NaN in
     * it, no token its grammar allows, ...), that is recorded as its sequence's {@link #failure()} instead of thrown, and
     * -1 returned, so that one request's bad row ends that request alone and the step's other rows go on.
     */
    public int sampleInStep(float[] logits, int offset) {
        try {
            return sample(logits, offset);
        } catch (RuntimeException e) {
            fail(e.getMessage());
            return -1;
        }
    }

    /** Records that this sampler's sequence cannot go on, and why (the first reason is kept). */
    public void fail(String why) {
        if (draws.failure == null) {
            draws.failure = why == null ? "sampling failed" : why;
        }
    }

    /** Why this sampler's sequence cannot go on ({@link #sampleInStep}, {@link #fail}); null while it can. */
    public String failure() {
        return draws.failure;
    }

    /** The survivors of {@link #filter} as a probability per vocabulary id. */
    private double[] distribution(int kept) {
        double[] p = new double[vocabSize];
        for (int i = 0; i < kept; i++) {
            p[scratch.pool[i]] = scratch.weights[i] / keptMass;
        }
        return p;
    }

    /**
     * Rejection sampling of a drafted token against the target's distribution {@code p}: accept with probability
     * min(1, p(d) / q(d)); otherwise draw from max(0, p - q), normalised. A rejection never returns the draft token,
     * since max(0, p(d) - q(d)) is 0 whenever p(d) < q(d).
     */
    private int verify(Role.Verifying v, double[] p) {
        double[] q = v.draftDistribution();
        int d = v.draftToken();
        if (q[d] > 0 && nextUniform() * q[d] < p[d]) {
            return d;
        }
        double residual = 0;
        for (int id = 0; id < vocabSize; id++) {
            residual += Math.max(0, p[id] - q[id]);
        }
        if (residual <= 0) {  // p == q up to rounding: any draw from p is as good
            residual = 1;
            q = new double[vocabSize];
        }
        double target = nextUniform() * residual, cumulative = 0;
        int last = -1;
        for (int id = 0; id < vocabSize; id++) {
            double w = Math.max(0, p[id] - q[id]);
            if (w > 0 && id != d) {
                cumulative += w;
                last = id;
                if (target < cumulative) {
                    return id;
                }
            }
        }
        return last >= 0 ? last : d;
    }

    /**
     * The distribution {@link #sample} draws from for this row, as a probability per vocabulary id (0 for
     * filtered tokens), without drawing. Applies the repetition penalty in place, like {@code sample}.
     * For tests, which compare it with a plain transcription of HF's processors.
     */
    double[] probabilities(float[] logits, int offset) {
        checkRow(logits, offset);
        prepare(logits, offset);
        if (params.isGreedy()) {
            double[] probabilities = new double[vocabSize];
            probabilities[argmax(logits, offset)] = 1;
            return probabilities;
        }
        return distribution(filter(logits, offset));
    }

    private void checkRow(float[] logits, int offset) {
        if (offset < 0 || offset > logits.length - vocabSize) {
            throw new EmberException("sampler: a logits row of " + vocabSize + " at offset " + offset
                    + " does not fit in an array of " + logits.length);
        }
    }

    /** The logit bias, the stop tokens masked before min_tokens, the penalties, then the grammar's mask, in place. */
    private void prepare(float[] logits, int offset) {
        for (int i = 0; i < biasIds.length; i++) {
            logits[offset + biasIds[i]] += biasValues[i];
        }
        if (draws.count < params.minTokens()) {
            for (int id : maskedIds) {
                logits[offset + id] = Float.NEGATIVE_INFINITY;
            }
        }
        if (repetitionPenalty != null) {
            repetitionPenalty.apply(logits, offset);
        }
        if (outputPenalties != null) {
            outputPenalties.apply(logits, offset);
        }
        if (grammar != null) {
            grammar.allowedTokens(allowed);
            for (int id = allowed.nextClearBit(0); id < vocabSize; id = allowed.nextClearBit(id + 1)) {
                logits[offset + id] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    private int argmax(float[] logits, int offset) {
        int best = 0;
        float bestLogit = Float.NEGATIVE_INFINITY;
        for (int id = 0; id < vocabSize; id++) {
            float logit = logits[offset + id];
            if (logit > bestLogit) {
                bestLogit = logit;
                best = id;
            } else if (logit != logit) {
                throw nanLogit(logits, offset);
            }
        }
        return best;
    }

    /**
     * Runs temperature, top-k, top-p and min-p. Leaves the survivors' ids, ascending, in
     * {@code scratch.pool[0, kept)}, their weights in {@code scratch.weights}, their total in
     * {@link #keptMass}, and returns {@code kept}.
     */
    private int filter(float[] logits, int offset) {
        int topK = params.topK();
        int candidates;
        float max;
        if (topK > 0 && topK < vocabSize) {
            float threshold = kthLargest(logits, offset, topK);
            max = largest(scratch.topKHeap, 0, topK); // the heap holds the k largest
            candidates = keepAtLeast(logits, offset, threshold);
        } else {
            max = largest(logits, offset, vocabSize);
            candidates = keepAll();
        }
        checkSoftmaxDefined(logits, offset, max);
        boolean nucleus = params.topP() < 1f;
        keptMass = weigh(logits, offset, candidates, max, nucleus);
        if (nucleus) {
            return keepNucleus(logits, offset, candidates);
        }
        if (params.minP() > 0f) {
            return keepAboveMinP(candidates);
        }
        return candidates;
    }

    private int keepAll() {
        scratch.reservePool(vocabSize);
        int[] pool = scratch.pool;
        for (int id = 0; id < vocabSize; id++) {
            pool[id] = id;
        }
        return vocabSize;
    }

    /** HF's TopKLogitsWarper, given the k-th largest logit: keeps every token at least that large (ties included). */
    private int keepAtLeast(float[] logits, int offset, float threshold) {
        scratch.reservePool(vocabSize);
        int[] pool = scratch.pool;
        int kept = 0;
        for (int id = 0; id < vocabSize; id++) {
            if (logits[offset + id] >= threshold) {
                pool[kept++] = id;
            }
        }
        return kept;
    }

    /** The largest of {@code values[from, from + length)}; NaN if any is NaN, as Math.max has it. */
    private static float largest(float[] values, int from, int length) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = from; i < from + length; i++) {
            max = Math.max(max, values[i]);
        }
        return max;
    }

    /**
     * Weighs the candidates (temperature and softmax numerator) and returns their total. With
     * {@code histogram}, also sums the weights into the nucleus buckets, in the same pass.
     */
    private double weigh(float[] logits, int offset, int candidates, float max, boolean histogram) {
        int[] pool = scratch.pool;
        float[] weights = scratch.weights;
        double[] bucketMass = scratch.bucketMass;
        if (histogram) {
            Arrays.fill(bucketMass, 0);
        }
        float temperature = params.temperature();
        double mass = 0;
        for (int i = 0; i < candidates; i++) {
            float weight = weight(logits[offset + pool[i]], max, temperature);
            weights[i] = weight;
            mass += weight;
            if (histogram) {
                bucketMass[bucketOf(weight)] += weight;
            }
        }
        return mass;
    }

    /**
     * HF's TemperatureLogitsWarper and softmax numerator: {@code exp((logit - max) / temperature)}, so
     * the top token weighs 1. A float, like the float32 probabilities HF computes.
     */
    private static float weight(float logit, float max, float temperature) {
        return (float) Math.exp((logit - max) / temperature);
    }

    /**
     * A k-element min-heap over one pass: most logits lose to the heap's root at once, so this is O(V) in
     * practice. Also the top-k path's NaN check, since NaN loses every comparison and would slip through.
     */
    private float kthLargest(float[] logits, int offset, int k) {
        scratch.reserveTopKHeap(k);
        float[] heap = scratch.topKHeap;
        for (int id = 0; id < k; id++) {
            float logit = logits[offset + id];
            if (logit != logit) {
                throw nanLogit(logits, offset);
            }
            heap[id] = logit;
        }
        Heaps.heapifyMin(heap, k);
        for (int id = k; id < vocabSize; id++) {
            float logit = logits[offset + id];
            if (logit > heap[0]) {
                Heaps.replaceMin(heap, k, logit);
            } else if (logit != logit) {
                throw nanLogit(logits, offset);
            }
        }
        return heap[0];
    }

    /** A NaN anywhere (the row's maximum is then NaN), or no finite maximum, leaves nothing to sample from. */
    private void checkSoftmaxDefined(float[] logits, int offset, float max) {
        if (max != max) {
            throw nanLogit(logits, offset);
        }
        if (Float.isInfinite(max)) {
            throw new EmberException("sampler: the largest logit is " + max
                    + ", so the softmax is undefined (every token masked, or an overflow in the model)");
        }
    }

    /**
     * Buckets of 1/8 octave, read straight from the float's bits (exponent and top three mantissa bits
     * fall as the weight falls): bucket 0 holds weights near 1, the last one everything below 2^-64. A
     * token's bucket never increases with its logit, which is all {@link #keepNucleus} relies on.
     */
    private static int bucketOf(float weight) {
        return Math.clamp((ONE_BITS - Float.floatToRawIntBits(weight)) >> 20, 0, NUCLEUS_BUCKETS - 1);
    }

    /**
     * HF's TopPLogitsWarper, then its MinPLogitsWarper. Top-p keeps a token when the mass of the tokens
     * ranked above it is below {@code top_p} (so the token that crosses {@code top_p} stays, and so does the
     * top token); min-p then drops tokens whose probability is below {@code min_p} times the top token's,
     * i.e. whose weight is below {@code min_p}.
     *
     * <p>The histogram of the weights, made while weighing them, finds the bucket where the mass crosses
     * {@code top_p}: every token in the buckets above it is in the nucleus and every token below it is out.
     * So one pass drops the tokens below that bucket (and below min-p), and only the crossing bucket's
     * tokens are ordered, lazily, through a heap popped until the running mass reaches {@code top_p}. Min-p
     * may run first because it drops a suffix of the same order: once the walk meets a token below min-p,
     * all the rest are too.
     */
    private int keepNucleus(float[] logits, int offset, int candidates) {
        int[] pool = scratch.pool;
        float[] weights = scratch.weights;
        double[] bucketMass = scratch.bucketMass;
        double target = params.topP() * keptMass;
        int crossing = 0;
        double massAboveCrossing = 0;
        while (massAboveCrossing + bucketMass[crossing] < target && crossing < NUCLEUS_BUCKETS - 1) {
            massAboveCrossing += bucketMass[crossing++];
        }

        float minP = params.minP();
        scratch.reserveRankHeap(candidates);
        long[] heap = scratch.rankHeap;
        int heapSize = 0;
        int kept = 0;
        for (int i = 0; i < candidates; i++) {
            float weight = weights[i];
            int bucket = bucketOf(weight);
            if (bucket <= crossing && weight >= minP) {
                int id = pool[i];
                pool[kept] = id;
                weights[kept] = weight;
                if (bucket == crossing) {
                    heap[heapSize++] = rankKey(logits[offset + id], kept);
                }
                kept++;
            }
        }
        if (heapSize == 0) {
            keptMass = sum(weights, kept); // the nucleus ends in a bucket that min-p emptied
            return kept;
        }

        Heaps.heapifyMax(heap, heapSize);
        double massBefore = massAboveCrossing;
        long lastKept;
        // The bucket sums and this walk add in different orders; if rounding leaves the walk a hair short
        // of the target, the heap runs dry and the whole crossing bucket stays.
        do {
            lastKept = Heaps.popMax(heap, heapSize--);
            massBefore += weights[positionOf(lastKept)];
        } while (massBefore < target && heapSize > 0);

        int nucleus = 0;
        double mass = 0;
        for (int i = 0; i < kept; i++) {
            int id = pool[i];
            if (rankKey(logits[offset + id], i) >= lastKept) {
                pool[nucleus] = id;
                weights[nucleus] = weights[i];
                mass += weights[i];
                nucleus++;
            }
        }
        keptMass = mass;
        return nucleus;
    }

    /**
     * Orders candidates by logit, higher first, and equal logits by lower id (pool positions ascend with
     * ids): the float's bits made order-preserving as a signed int in the high half, the inverted position
     * in the low half.
     */
    private static long rankKey(float logit, int position) {
        int bits = Float.floatToIntBits(logit + 0.0f); // + 0.0f folds -0.0 into 0.0, which compare equal
        int ordered = bits ^ ((bits >> 31) & 0x7fffffff);
        return ((long) ordered << 32) | (Integer.MAX_VALUE - position);
    }

    private static int positionOf(long rankKey) {
        return Integer.MAX_VALUE - (int) rankKey;
    }

    /** HF's MinPLogitsWarper alone: keeps the tokens whose weight (probability relative to the top token's) reaches min_p. */
    private int keepAboveMinP(int candidates) {
        int[] pool = scratch.pool;
        float[] weights = scratch.weights;
        float minP = params.minP();
        int kept = 0;
        for (int i = 0; i < candidates; i++) {
            if (weights[i] >= minP) {
                pool[kept] = pool[i];
                weights[kept] = weights[i];
                kept++;
            }
        }
        keptMass = sum(weights, kept);
        return kept;
    }

    private static double sum(float[] weights, int count) {
        double sum = 0;
        for (int i = 0; i < count; i++) {
            sum += weights[i];
        }
        return sum;
    }

    private int draw(int kept) {
        int[] pool = scratch.pool;
        float[] weights = scratch.weights;
        double target = nextUniform() * keptMass;
        double cumulative = 0;
        int lastPossible = pool[0];
        for (int i = 0; i < kept; i++) {
            float weight = weights[i];
            if (weight > 0) {
                cumulative += weight;
                lastPossible = pool[i];
                if (target < cumulative) {
                    return lastPossible;
                }
            }
        }
        return lastPossible; // only when rounding put the target at the very top of the mass
    }

    private EmberException nanLogit(float[] logits, int offset) {
        int id = 0;
        while (!Float.isNaN(logits[offset + id])) {
            id++;
        }
        return new EmberException("sampler: the logit of token " + id + " is NaN (the model's forward pass produced it)");
    }
}
