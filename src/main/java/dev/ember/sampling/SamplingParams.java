package dev.ember.sampling;

import dev.ember.EmberException;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * How one request turns logits into tokens and when it ends. Field meanings follow HF transformers'
 * {@code GenerationConfig} (and the OpenAI / vLLM request fields of the same names).
 *
 * @param temperature       divides the logits before sampling; 0 means greedy (argmax)
 * @param topK              keep the {@code topK} most likely tokens (and any tied with the last of them);
 *                          0 turns it off
 * @param topP              nucleus sampling: keep the smallest set of most likely tokens whose mass reaches
 *                          {@code topP}; 1 turns it off
 * @param minP              drop tokens less likely than {@code minP} times the most likely one; 0 turns it off
 * @param repetitionPenalty HF's (CTRL's) penalty on every token already seen in the prompt or the output; 1 turns it off
 * @param seed              seeds the sampler's random stream, so that the same request draws the same tokens
 * @param maxTokens         the most tokens to generate
 * @param stopStrings       generation ends when the text contains one of these; it is not part of the output
 * @param ignoreEos         keep generating past the end-of-sequence token (benchmarks), up to {@code maxTokens}
 * @param presencePenalty   OpenAI's: subtracted once from the logit of every token the output holds; 0 turns it off
 * @param frequencyPenalty  OpenAI's: subtracted from a token's logit once per time the output holds it; 0 turns it off
 * @param logitBias         added to the logits of these token ids before anything else (OpenAI's {@code logit_bias})
 * @param minTokens         tokens generated before an end-of-sequence token, a stop token or a stop string may end the
 *                          output: until then the sampler never draws {@code stopTokenIds}
 * @param stopTokenIds      further tokens that end the output (vLLM's {@code stop_token_ids}; their text is not shown)
 * @param includeStopStrInOutput whether the stop string (or a stop token's text) that ended the output is part of it
 * @param logprobs          how many of the most likely tokens to report beside each sampled token's own log-probability;
 *                          0 reports only the sampled token's, -1 nothing
 * @param promptLogprobs    vLLM's {@code prompt_logprobs}: each prompt token's log-probability given the tokens before
 *                          it, and this many of the most likely tokens at its place beside it; -1 nothing (the prompt's
 *                          positions then produce no logits, and its prefix may come from the cache)
 * @param grammar           what the output must match (structured output: a JSON schema, one of some strings), each
 *                          step's tokens masked to those that keep it matching; null for free text
 * @param skipSpecialTokens whether the output's text leaves special tokens out (vLLM's {@code skip_special_tokens},
 *                          true by default); an end-of-sequence or stop token that ends the output is never written
 */
public record SamplingParams(float temperature, int topK, float topP, float minP, float repetitionPenalty,
                             long seed, int maxTokens, List<String> stopStrings, boolean ignoreEos,
                             float presencePenalty, float frequencyPenalty, Map<Integer, Float> logitBias, int minTokens,
                             Set<Integer> stopTokenIds, boolean includeStopStrInOutput, int logprobs,
                             int promptLogprobs, OutputGrammar grammar, boolean skipSpecialTokens) {
    /** The most {@link #logprobs} a request may ask for (OpenAI's limit on {@code top_logprobs}). */
    public static final int MAX_LOGPROBS = 20;

    public SamplingParams {
        require(temperature >= 0 && temperature < Float.POSITIVE_INFINITY, "temperature", temperature,
                "a finite number >= 0 (0 means greedy)");
        require(topK >= 0, "top_k", topK, ">= 0 (0 turns it off)");
        require(topP > 0 && topP <= 1, "top_p", topP, "in (0, 1] (1 turns it off)");
        require(minP >= 0 && minP < 1, "min_p", minP, "in [0, 1) (0 turns it off)");
        require(repetitionPenalty > 0 && repetitionPenalty < Float.POSITIVE_INFINITY, "repetition_penalty",
                repetitionPenalty, "a finite number > 0 (1 turns it off)");
        require(maxTokens >= 1, "max_tokens", maxTokens, ">= 1");
        if (stopStrings == null) {
            throw new EmberException("invalid sampling parameter stop: the list of stop strings is missing (use an empty list)");
        }
        for (String stop : stopStrings) {
            require(stop != null && !stop.isEmpty(), "stop", stop == null ? "null" : "\"\"", "a non-empty string");
        }
        stopStrings = List.copyOf(stopStrings);
        require(presencePenalty >= -2 && presencePenalty <= 2, "presence_penalty", presencePenalty, "in [-2, 2] (0 turns it off)");
        require(frequencyPenalty >= -2 && frequencyPenalty <= 2, "frequency_penalty", frequencyPenalty, "in [-2, 2] (0 turns it off)");
        for (Map.Entry<Integer, Float> bias : logitBias.entrySet()) {
            require(bias.getKey() >= 0, "logit_bias", bias.getKey(), "a token id >= 0");
            require(bias.getValue() >= -100 && bias.getValue() <= 100, "logit_bias", bias.getValue(), "a bias in [-100, 100]");
        }
        logitBias = Map.copyOf(logitBias);
        require(minTokens >= 0 && minTokens <= maxTokens, "min_tokens", minTokens, "in [0, max_tokens = " + maxTokens + "]");
        for (int id : stopTokenIds) {
            require(id >= 0, "stop_token_ids", id, "a token id >= 0");
        }
        stopTokenIds = Set.copyOf(stopTokenIds);
        require(logprobs >= -1 && logprobs <= MAX_LOGPROBS, "logprobs", logprobs, "in [0, " + MAX_LOGPROBS + "] (or off)");
        require(promptLogprobs >= -1 && promptLogprobs <= MAX_LOGPROBS, "prompt_logprobs", promptLogprobs,
                "in [0, " + MAX_LOGPROBS + "] (or off)");
    }

    /** Without prompt logprobs or a grammar. */
    public SamplingParams(float temperature, int topK, float topP, float minP, float repetitionPenalty,
                          long seed, int maxTokens, List<String> stopStrings, boolean ignoreEos,
                          float presencePenalty, float frequencyPenalty, Map<Integer, Float> logitBias, int minTokens,
                          Set<Integer> stopTokenIds, boolean includeStopStrInOutput, int logprobs) {
        this(temperature, topK, topP, minP, repetitionPenalty, seed, maxTokens, stopStrings, ignoreEos, presencePenalty,
                frequencyPenalty, logitBias, minTokens, stopTokenIds, includeStopStrInOutput, logprobs, -1, null, true);
    }

    /** Without the OpenAI and vLLM extras: no presence or frequency penalty, logit bias, min tokens, stop ids or logprobs. */
    public SamplingParams(float temperature, int topK, float topP, float minP, float repetitionPenalty,
                          long seed, int maxTokens, List<String> stopStrings, boolean ignoreEos) {
        this(temperature, topK, topP, minP, repetitionPenalty, seed, maxTokens, stopStrings, ignoreEos, 0f, 0f, Map.of(), 0,
                Set.of(), false, -1, -1, null, true);
    }

    /** Always the most likely token (after the repetition penalty, which is off here too). */
    public static SamplingParams greedy(int maxTokens) {
        return new SamplingParams(0f, 0, 1f, 0f, 1f, 0L, maxTokens, List.of(), false);
    }

    public boolean isGreedy() {
        return temperature == 0f;
    }

    public SamplingParams withTemperature(float temperature) {
        return new Builder(this).temperature(temperature).build();
    }

    public SamplingParams withTopK(int topK) {
        return new Builder(this).topK(topK).build();
    }

    public SamplingParams withTopP(float topP) {
        return new Builder(this).topP(topP).build();
    }

    public SamplingParams withMinP(float minP) {
        return new Builder(this).minP(minP).build();
    }

    public SamplingParams withRepetitionPenalty(float repetitionPenalty) {
        return new Builder(this).repetitionPenalty(repetitionPenalty).build();
    }

    public SamplingParams withSeed(long seed) {
        return new Builder(this).seed(seed).build();
    }

    public SamplingParams withMaxTokens(int maxTokens) {
        return new Builder(this).maxTokens(maxTokens).build();
    }

    public SamplingParams withStopStrings(List<String> stopStrings) {
        return new Builder(this).stopStrings(stopStrings).build();
    }

    public SamplingParams withIgnoreEos(boolean ignoreEos) {
        return new Builder(this).ignoreEos(ignoreEos).build();
    }

    public SamplingParams withPenalties(float presencePenalty, float frequencyPenalty) {
        return new Builder(this).presencePenalty(presencePenalty).frequencyPenalty(frequencyPenalty).build();
    }

    public SamplingParams withLogitBias(Map<Integer, Float> logitBias) {
        return new Builder(this).logitBias(logitBias).build();
    }

    public SamplingParams withMinTokens(int minTokens) {
        return new Builder(this).minTokens(minTokens).build();
    }

    public SamplingParams withStopTokenIds(Set<Integer> stopTokenIds) {
        return new Builder(this).stopTokenIds(stopTokenIds).build();
    }

    public SamplingParams withIncludeStopStrInOutput(boolean include) {
        return new Builder(this).includeStopStrInOutput(include).build();
    }

    public SamplingParams withLogprobs(int logprobs) {
        return new Builder(this).logprobs(logprobs).build();
    }

    public SamplingParams withPromptLogprobs(int promptLogprobs) {
        return new Builder(this).promptLogprobs(promptLogprobs).build();
    }

    public SamplingParams withSkipSpecialTokens(boolean skip) {
        return new Builder(this).skipSpecialTokens(skip).build();
    }

    /** These parameters with the output held to {@code grammar} (null: free text). */
    public SamplingParams withGrammar(OutputGrammar grammar) {
        return new Builder(this).grammar(grammar).build();
    }

    /** A copy of some parameters with others changed, checked when built. */
    private static final class Builder {
        private float temperature;
        private int topK;
        private float topP;
        private float minP;
        private float repetitionPenalty;
        private long seed;
        private int maxTokens;
        private List<String> stopStrings;
        private boolean ignoreEos;
        private float presencePenalty;
        private float frequencyPenalty;
        private Map<Integer, Float> logitBias;
        private int minTokens;
        private Set<Integer> stopTokenIds;
        private boolean includeStopStrInOutput;
        private int logprobs;
        private int promptLogprobs;
        private OutputGrammar grammar;
        private boolean skipSpecialTokens;

        Builder(SamplingParams p) {
            temperature = p.temperature;
            topK = p.topK;
            topP = p.topP;
            minP = p.minP;
            repetitionPenalty = p.repetitionPenalty;
            seed = p.seed;
            maxTokens = p.maxTokens;
            stopStrings = p.stopStrings;
            ignoreEos = p.ignoreEos;
            presencePenalty = p.presencePenalty;
            frequencyPenalty = p.frequencyPenalty;
            logitBias = p.logitBias;
            minTokens = p.minTokens;
            stopTokenIds = p.stopTokenIds;
            includeStopStrInOutput = p.includeStopStrInOutput;
            logprobs = p.logprobs;
            promptLogprobs = p.promptLogprobs;
            grammar = p.grammar;
            skipSpecialTokens = p.skipSpecialTokens;
        }

        SamplingParams build() {
            return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, seed, maxTokens, stopStrings, ignoreEos,
                    presencePenalty, frequencyPenalty, logitBias, minTokens, stopTokenIds, includeStopStrInOutput, logprobs,
                    promptLogprobs, grammar, skipSpecialTokens);
        }

        Builder temperature(float v) { temperature = v; return this; }
        Builder topK(int v) { topK = v; return this; }
        Builder topP(float v) { topP = v; return this; }
        Builder minP(float v) { minP = v; return this; }
        Builder repetitionPenalty(float v) { repetitionPenalty = v; return this; }
        Builder seed(long v) { seed = v; return this; }
        Builder maxTokens(int v) { maxTokens = v; return this; }
        Builder stopStrings(List<String> v) { stopStrings = v; return this; }
        Builder ignoreEos(boolean v) { ignoreEos = v; return this; }
        Builder presencePenalty(float v) { presencePenalty = v; return this; }
        Builder frequencyPenalty(float v) { frequencyPenalty = v; return this; }
        Builder logitBias(Map<Integer, Float> v) { logitBias = v; return this; }
        Builder minTokens(int v) { minTokens = v; return this; }
        Builder stopTokenIds(Set<Integer> v) { stopTokenIds = v; return this; }
        Builder includeStopStrInOutput(boolean v) { includeStopStrInOutput = v; return this; }
        Builder logprobs(int v) { logprobs = v; return this; }
        Builder promptLogprobs(int v) { promptLogprobs = v; return this; }
        Builder grammar(OutputGrammar v) { grammar = v; return this; }
        Builder skipSpecialTokens(boolean v) { skipSpecialTokens = v; return this; }
    }

    /** Names the parameter with the request field users know it by (top_p, not topP). */
    private static void require(boolean valid, String name, Object value, String expected) {
        if (!valid) {
            throw new EmberException("invalid sampling parameter " + name + " = " + value + ": must be " + expected);
        }
    }
}
