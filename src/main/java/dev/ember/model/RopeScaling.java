package dev.ember.model;

/** How rotary frequencies are stretched for long contexts: a closed set, read from config.json. */
public sealed interface RopeScaling {

    /** Plain RoPE: inv_freq[i] = theta^(-2i/d). */
    record None() implements RopeScaling {
    }

    /** Positions divided by {@code factor} (HF "linear"). */
    record Linear(double factor) implements RopeScaling {
    }

    /** Llama 3.1's piecewise scaling of the low frequencies (HF "llama3"). */
    record Llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) implements RopeScaling {
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
        }
        return inv;
    }
}
