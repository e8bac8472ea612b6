package dev.ember.bench;

import dev.ember.Progress;
import dev.ember.cli.SpeculativeOptions;
import dev.ember.cli.Stats;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.tokenizer.Tokenizer;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What a step costs, measured on the runners alone ({@link StepCost}) at a run's batch and mean context: a plain decode
 * step of the target and of the draft (null for n-gram lookup, which runs no model), and the target's verification
 * step at each gamma. The cost ratio c of the prediction is the draft's decode step over the target's; v, a
 * verification over a target decode step, is what the paper takes as 1.
 */
record SpecCost(int batch, int context, Stats target, Stats draft, Map<Integer, Stats> verify) {
    /** Timed rounds, after untimed ones. */
    static final int ROUNDS = 40;
    static final int WARMUP_ROUNDS = 10;

    /**
     * Times the steps in rounds of one step of each kind, so that a slower or faster spell of the machine falls on all
     * alike. The draft is a runner of its own, loaded from {@code source} for this and closed; with {@code gammas}
     * empty, the target's decode step alone is timed.
     */
    static SpecCost measure(BenchEngine bench, Tokenizer tokenizer, SpeculativeOptions source, List<Integer> gammas, int batch,
                            int context, long seed, Progress progress) {
        int maxTokens = gammas.stream().mapToInt(g -> g + 1).max().orElse(1);
        int block = KvCacheSpec.DEFAULT_BLOCK_SIZE;
        int draftTokens = batch * ((context + 1 + block) / block * block);
        try (SpeculativeOptions.Draft draft = !gammas.isEmpty() && !source.ngram()
                ? source.openDraft(bench.backend(), bench.loaded(), tokenizer, draftTokens, Progress.NONE) : null;
             StepCost targetStep = StepCost.prepare(bench.runner(), batch, context, maxTokens, seed);
             StepCost draftStep = draft == null ? null : StepCost.prepare(draft.runner(), batch, context, 1, seed)) {
            double[] target = new double[ROUNDS];
            double[] drafted = new double[ROUNDS];
            double[][] verify = new double[gammas.size()][ROUNDS];
            for (int r = 0; r < WARMUP_ROUNDS + ROUNDS; r++) {
                progress.update("bench spec: timing steps", r, WARMUP_ROUNDS + ROUNDS);
                int at = r - WARMUP_ROUNDS;
                double t = targetStep.seconds(1);
                double d = draftStep == null ? 0 : draftStep.seconds(1);
                for (int g = 0; g < gammas.size(); g++) {
                    double v = targetStep.seconds(gammas.get(g) + 1);
                    if (at >= 0) {
                        verify[g][at] = v;
                    }
                }
                if (at >= 0) {
                    target[at] = t;
                    drafted[at] = d;
                }
            }
            progress.update("bench spec: timing steps", WARMUP_ROUNDS + ROUNDS, WARMUP_ROUNDS + ROUNDS);
            Map<Integer, Stats> verifyStats = new LinkedHashMap<>();
            for (int g = 0; g < gammas.size(); g++) {
                verifyStats.put(gammas.get(g), Stats.of(verify[g]));
            }
            return new SpecCost(batch, context, Stats.of(target), draftStep == null ? null : Stats.of(drafted), verifyStats);
        }
    }

    /** The draft's decode step over the target's; 0 without a draft model. */
    double c() {
        return draft == null ? 0 : draft.median() / target.median();
    }

    /** The target's verification step of gamma + 1 tokens a sequence over its decode step. */
    double v(int gamma) {
        return verify.get(gamma).median() / target.median();
    }

    String method() {
        return String.format(Locale.ROOT, "host clock around submit and await of one step of each runner alone, %d sequences of %d "
                + "cached tokens; medians of %d rounds of one step of each kind after %d untimed rounds", batch, context, ROUNDS, WARMUP_ROUNDS);
    }

    /** One line for the console. */
    String describe() {
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT, "%s: target decode %.3f ms", method(), target.median() * 1e3));
        if (draft != null) {
            s.append(String.format(Locale.ROOT, ", draft decode %.3f ms: c = %.3f", draft.median() * 1e3, c()));
        } else if (!verify.isEmpty()) {
            s.append("; n-gram lookup runs no model: c = 0");
        }
        verify.forEach((g, v) -> s.append(String.format(Locale.ROOT, "; verification of %d tokens a sequence %.3f ms = %.2f target steps",
                g + 1, v.median() * 1e3, v(g))));
        return s.toString();
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("method", method());
        m.put("batch", batch);
        m.put("context", context);
        m.put("target_decode_ms", target.median() * 1e3);
        m.put("draft_decode_ms", draft == null ? null : draft.median() * 1e3);
        m.put("cost_ratio_c", c());
        Map<String, Object> verifyMs = new LinkedHashMap<>();
        verify.forEach((g, s) -> verifyMs.put(String.valueOf(g), s.median() * 1e3));
        m.put("verify_ms_by_gamma", verifyMs);
        return m;
    }
}
