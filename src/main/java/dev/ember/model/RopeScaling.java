package dev.ember.model;

/** How rotary frequencies are stretched for long contexts: a closed set, read from config.json. */
public sealed interface RopeScaling {

    /** Plain RoPE: inv_freq[i] = theta^(-2i/d). */
    record None() implements RopeScaling {
    }

    /** Positions divided by {@code factor} (HF "linear"). */
    record Linear(double factor) implements RopeScaling {
    }

    /**
     * Dynamic NTK scaling (HF "dynamic"): transformers recomputes the frequencies with a larger base once a sequence
     * passes the original context, {@code base * (factor * length / original - (factor - 1))^(d / (d - 2))}, and keeps
     * the plain ones within it. A cached key keeps the frequencies it was rotated with, so beyond the original context
     * transformers' own outputs depend on how the sequence was fed; Ember keeps such a model to its original context
     * (config.json's max_position_embeddings), where both compute the plain frequencies exactly.
     */
    record Dynamic(double factor) implements RopeScaling {
    }

    /** Llama 3.1's piecewise scaling of the low frequencies (HF "llama3"). */
    record Llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) implements RopeScaling {
    }

    /**
     * YaRN (Peng et al. 2023; HF "yarn", as Qwen2.5 and Qwen3 configure it for long contexts): the pairs that turn
     * fewer than {@code betaSlow} times over the original context are interpolated (divided by {@code factor}), those
     * that turn more than {@code betaFast} times are kept, and a linear ramp blends the pairs between (its ends rounded
     * outwards where {@code truncate}); q and k are scaled by {@code attentionFactor} as HF scales cos and sin.
     */
    record Yarn(double factor, int originalMaxPositions, double betaFast, double betaSlow, boolean truncate,
                double attentionFactor) implements RopeScaling {

        /** YaRN's default attention factor for a scale: 0.1 * mscale * ln(scale) + 1 above 1, else 1. */
        public static double magnitudeScale(double scale, double mscale) {
            return scale <= 1 ? 1.0 : 0.1 * mscale * Math.log(scale) + 1.0;
        }

        /** The dimension (of {@code headDim}) at which a pair turns {@code rotations} times over the original context. */
        private double correctionDimension(double rotations, int headDim, double theta) {
            return headDim * Math.log(originalMaxPositions / (rotations * 2 * Math.PI)) / (2 * Math.log(theta));
        }
    }

    /**
     * How q and k are scaled after their rotation (HF's attention scaling of cos and sin), so that attention scores
     * scale by its square: 1 but for YaRN.
     */
    default double attentionFactor() {
        return 1.0;
    }

    /**
     * The inverse frequency of each of the {@code headDim / 2} rotary pairs, scaled as this
     * variant prescribes; the same function HF transformers' rope initialisers compute.
     */
    default double[] inverseFrequencies(int headDim, double theta) {
        int half = headDim / 2;
        double[] inv = new double[half];
        for (int i = 0; i < half; i++) {
            inv[i] = 1.0 / Math.pow(theta, (2.0 * i) / headDim);
        }
        switch (this) {
            case None n -> { }
            case Dynamic d -> { }
            case Linear l -> {
                for (int i = 0; i < half; i++) {
                    inv[i] /= l.factor();
                }
            }
            case Llama3 s -> {
                double lowFreqWavelen = s.originalMaxPositions() / s.lowFreqFactor();
                double highFreqWavelen = s.originalMaxPositions() / s.highFreqFactor();
                for (int i = 0; i < half; i++) {
                    double wavelen = 2 * Math.PI / inv[i];
                    if (wavelen > lowFreqWavelen) {
                        inv[i] = inv[i] / s.factor();
                    } else if (wavelen >= highFreqWavelen) {
                        double smooth = (s.originalMaxPositions() / wavelen - s.lowFreqFactor())
                                / (s.highFreqFactor() - s.lowFreqFactor());
                        inv[i] = (1 - smooth) * inv[i] / s.factor() + smooth * inv[i];
                    }
                }
            }
            case Yarn y -> {
                double low = y.correctionDimension(y.betaFast(), headDim, theta);
                double high = y.correctionDimension(y.betaSlow(), headDim, theta);
                if (y.truncate()) {
                    low = Math.floor(low);
                    high = Math.ceil(high);
                }
                low = Math.max(low, 0);
                high = Math.min(high, headDim - 1);
                if (low == high) {
                    high += 0.001;  // as HF: no division by zero where the ramp has no width
                }
                for (int i = 0; i < half; i++) {
                    double kept = 1 - Math.clamp((i - low) / (high - low), 0.0, 1.0);
                    inv[i] = inv[i] / y.factor() * (1 - kept) + inv[i] * kept;
                }
            }
        }
        return inv;
    }
}
