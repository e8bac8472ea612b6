package dev.ember.cli;

import dev.ember.model.GenerationConfig;
import dev.ember.sampling.SamplingParams;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The sampling options of {@code ember generate}. What is not given comes from the model's
 * {@code generation_config.json} as transformers and vLLM take it ({@link GenerationConfig}): {@code do_sample} false
 * (or no file) means greedy, and then only {@code --temperature} above 0 turns sampling on.
 */
public final class SamplingOptions {
    private static final String FROM_MODEL = "default: the model's generation config";
    /** The options that matter to greedy decoding. */
    private static final List<String> GREEDY_OPTIONS = List.of("--temperature", "--repetition-penalty");

    @Option(names = {"--temperature", "--temp"}, paramLabel = "T",
            description = "0 = greedy; " + FROM_MODEL + " (generation_config.json: greedy unless it says do_sample: true)")
    Float temperature;

    @Option(names = "--top-k", paramLabel = "K", description = "keep the k most likely tokens, 0 = off; " + FROM_MODEL + " (top_k, else 50)")
    Integer topK;

    @Option(names = "--top-p", paramLabel = "P", description = "nucleus sampling mass, 1 = off; " + FROM_MODEL + " (top_p, else 1)")
    Float topP;

    @Option(names = "--min-p", paramLabel = "P",
            description = "drop tokens below min-p times the top probability, 0 = off; " + FROM_MODEL + " (min_p, else 0)")
    Float minP;

    @Option(names = {"--repetition-penalty", "--repeat-penalty"}, paramLabel = "R",
            description = "HF-style repetition penalty, 1 = off; " + FROM_MODEL + " (repetition_penalty, else 1)")
    Float repetitionPenalty;

    @Option(names = {"-s", "--seed"}, description = "random seed, for repeatable sampling; default: random (the summary says which)")
    Long seed;

    /** The parameters a request runs with, and how the summary line says so. */
    public record Sampling(SamplingParams params, String description) {
    }

    /**
     * The sampling for the model in {@code modelDir}: each option given, else the model's generation config. Says on
     * {@code log} when options were given that greedy decoding ignores.
     */
    public Sampling resolve(Path modelDir, int maxTokens, List<String> stop, boolean ignoreEos, PrintStream log) {
        GenerationConfig model = GenerationConfig.read(modelDir);
        float t = temperature != null ? temperature : model.doSample() ? model.temperature() : 0f;
        int k = topK != null ? topK : model.topK();
        float p = topP != null ? topP : model.topP();
        float m = minP != null ? minP : model.minP();
        float r = repetitionPenalty != null ? repetitionPenalty : model.repetitionPenalty();
        long s = seed != null ? seed : System.nanoTime();
        SamplingParams params = new SamplingParams(t, k, p, m, r, s, maxTokens, stop, ignoreEos);
        List<String> given = new ArrayList<>();
        addIfGiven(given, "--temperature", temperature);
        addIfGiven(given, "--top-k", topK);
        addIfGiven(given, "--top-p", topP);
        addIfGiven(given, "--min-p", minP);
        addIfGiven(given, "--repetition-penalty", repetitionPenalty);
        addIfGiven(given, "--seed", seed);
        if (params.isGreedy()) {
            List<String> ignored = given.stream().filter(o -> !GREEDY_OPTIONS.contains(o)).toList();
            if (!ignored.isEmpty()) {
                log.println("ember: warning: " + String.join(", ", ignored) + (ignored.size() == 1 ? " has" : " have")
                        + " no effect when decoding is greedy (" + (temperature != null ? "--temperature 0" : whereGreedy(model))
                        + "); give --temperature above 0 to sample");
            }
            given.retainAll(GREEDY_OPTIONS);
        }
        return new Sampling(params, describe(params) + " (" + source(given, model) + ")");
    }

    private static void addIfGiven(List<String> given, String option, Object value) {
        if (value != null) {
            given.add(option);
        }
    }

    private static String whereGreedy(GenerationConfig model) {
        return model.file() != null ? "the model's generation_config.json does not say do_sample: true"
                : "the model has no generation_config.json";
    }

    /** The knobs in effect: greedy, or the temperature and every filter that is on, with the seed. */
    static String describe(SamplingParams p) {
        List<String> parts = new ArrayList<>();
        if (p.isGreedy()) {
            parts.add("greedy");
        } else {
            parts.add(String.format(Locale.ROOT, "temperature %s", p.temperature()));
            if (p.topK() > 0) {
                parts.add("top-k " + p.topK());
            }
            if (p.topP() < 1) {
                parts.add(String.format(Locale.ROOT, "top-p %s", p.topP()));
            }
            if (p.minP() > 0) {
                parts.add(String.format(Locale.ROOT, "min-p %s", p.minP()));
            }
        }
        if (p.repetitionPenalty() != 1f) {
            parts.add(String.format(Locale.ROOT, "repetition penalty %s", p.repetitionPenalty()));
        }
        if (!p.isGreedy()) {
            parts.add("seed " + p.seed());
        }
        return String.join(", ", parts);
    }

    private static String source(List<String> given, GenerationConfig model) {
        String defaults = model.file() != null ? "the model's generation_config.json"
                : "transformers' defaults: the model has no generation_config.json";
        if (given.isEmpty()) {
            return defaults;
        }
        if (given.size() == 6) {
            return String.join(", ", given);
        }
        return String.join(", ", given) + "; the rest from " + defaults;
    }
}
