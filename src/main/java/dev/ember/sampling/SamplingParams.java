package dev.ember.sampling;

import dev.ember.EmberException;

import java.util.List;

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
 */
public record SamplingParams(float temperature, int topK, float topP, float minP, float repetitionPenalty,
                             long seed, int maxTokens, List<String> stopStrings, boolean ignoreEos) {

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
    }

    /** Always the most likely token (after the repetition penalty, which is off here too). */
    public static SamplingParams greedy(int maxTokens) {
        return new SamplingParams(0f, 0, 1f, 0f, 1f, 0L, maxTokens, List.of(), false);
    }

    public boolean isGreedy() {
        return temperature == 0f;
    }

    public SamplingParams withTemperature(float temperature) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, seed, maxTokens, stopStrings, ignoreEos);
    }

    public SamplingParams withTopK(int topK) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, seed, maxTokens, stopStrings, ignoreEos);
    }

    public SamplingParams withTopP(float topP) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, seed, maxTokens, stopStrings, ignoreEos);
    }

    public SamplingParams withMinP(float minP) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, seed, maxTokens, stopStrings, ignoreEos);
    }

    public SamplingParams withRepetitionPenalty(float repetitionPenalty) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, seed, maxTokens, stopStrings, ignoreEos);
    }

    public SamplingParams withSeed(long seed) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, seed, maxTokens, stopStrings, ignoreEos);
    }

    public SamplingParams withMaxTokens(int maxTokens) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, seed, maxTokens, stopStrings, ignoreEos);
    }

    public SamplingParams withStopStrings(List<String> stopStrings) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, seed, maxTokens, stopStrings, ignoreEos);
    }

    public SamplingParams withIgnoreEos(boolean ignoreEos) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, seed, maxTokens, stopStrings, ignoreEos);
    }

    /** Names the parameter with the request field users know it by (top_p, not topP). */
    private static void require(boolean valid, String name, Object value, String expected) {
        if (!valid) {
            throw new EmberException("invalid sampling parameter " + name + " = " + value + ": must be " + expected);
        }
    }
}
