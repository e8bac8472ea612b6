package dev.ember.backend.cpu;

import dev.ember.model.LayerWeights;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.Tensor;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A deliberately naive float64 forward pass over a whole sequence, written straight from the HF modeling
 * code with plain loops and no cache: the independent reference the CPU backend (and what is computed from its
 * logits, such as perplexity) is checked against.
 */
public final class ReferenceForward {
    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private ReferenceForward() {
    }

    static double at(Tensor t, long i) {
        return switch (t.dtype()) {
            case F32 -> t.data().getAtIndex(F32, i);
            case F16 -> Float.float16ToFloat(t.data().getAtIndex(HALF, i));
            case BF16 -> Float.intBitsToFloat(t.data().getAtIndex(HALF, i) << 16);
        };
    }

    /** Logits {@code [tokens.length][vocab]} for every position of {@code tokens}. */
    public static double[][] logits(Model model, int[] tokens) {
        ModelConfig c = model.config();
        int n = tokens.length;
        int h = c.hiddenSize();
        double[][] x = new double[n][h];
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < h; i++) {
                x[t][i] = at(model.embedding(), (long) tokens[t] * h + i);
            }
        }
        double[] inv = c.ropeScaling().inverseFrequencies(c.headDim(), c.ropeTheta());
        for (LayerWeights w : model.layers()) {
            double[][] xn = norm(x, w.attnNorm(), c.rmsNormEps());
            double[][] q = linear(xn, w.wq(), w.bq());
            double[][] k = linear(xn, w.wk(), w.bk());
            double[][] v = linear(xn, w.wv(), w.bv());
            headNormAndRotate(q, c.numHeads(), c, w.qNorm(), inv);
            headNormAndRotate(k, c.numKvHeads(), c, w.kNorm(), inv);
            // As HF scales cos and sin (YaRN's attention factor; 1 otherwise): q and k themselves.
            scale(q, c.ropeScaling().attentionFactor());
            scale(k, c.ropeScaling().attentionFactor());
            double[][] attn = attention(q, k, v, c);
            add(x, linear(attn, w.wo(), w.bo()));
            double[][] hn = norm(x, w.ffnNorm(), c.rmsNormEps());
            double[][] gate = linear(hn, w.wGate(), w.bGate());
            double[][] up = linear(hn, w.wUp(), w.bUp());
            for (int t = 0; t < n; t++) {
                for (int i = 0; i < gate[t].length; i++) {
                    double g = gate[t][i];
                    gate[t][i] = g / (1 + Math.exp(-g)) * up[t][i];
                }
            }
            add(x, linear(gate, w.wDown(), w.bDown()));
        }
        return linear(norm(x, model.finalNorm(), c.rmsNormEps()), model.lmHead(), null);
    }

    private static void scale(double[][] x, double factor) {
        for (double[] row : x) {
            for (int i = 0; i < row.length; i++) {
                row[i] *= factor;
            }
        }
    }

    private static double[][] norm(double[][] x, Tensor weight, double eps) {
        double[][] out = new double[x.length][];
        for (int t = 0; t < x.length; t++) {
            out[t] = normRow(x[t], 0, x[t].length, weight, eps);
        }
        return out;
    }

    private static double[] normRow(double[] x, int from, int n, Tensor weight, double eps) {
        double ss = 0;
        for (int i = 0; i < n; i++) {
            ss += x[from + i] * x[from + i];
        }
        double scale = 1 / Math.sqrt(ss / n + eps);
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = at(weight, i) * x[from + i] * scale;
        }
        return out;
    }

    private static double[][] linear(double[][] x, Tensor w, Tensor bias) {
        int out = w.dim(0);
        int in = w.dim(1);
        double[][] y = new double[x.length][out];
        for (int t = 0; t < x.length; t++) {
            for (int o = 0; o < out; o++) {
                double s = bias == null ? 0 : at(bias, o);
                for (int i = 0; i < in; i++) {
                    s += at(w, (long) o * in + i) * x[t][i];
                }
                y[t][o] = s;
            }
        }
        return y;
    }

    private static void headNormAndRotate(double[][] x, int heads, ModelConfig c, Tensor headNorm, double[] inv) {
        int hd = c.headDim();
        int half = hd / 2;
        for (int t = 0; t < x.length; t++) {
            for (int head = 0; head < heads; head++) {
                int off = head * hd;
                if (headNorm != null) {
                    System.arraycopy(normRow(x[t], off, hd, headNorm, c.rmsNormEps()), 0, x[t], off, hd);
                }
                for (int i = 0; i < half; i++) {
                    double angle = t * inv[i];
                    double a = x[t][off + i];
                    double b = x[t][off + i + half];
                    x[t][off + i] = a * Math.cos(angle) - b * Math.sin(angle);
                    x[t][off + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
                }
            }
        }
    }

    private static double[][] attention(double[][] q, double[][] k, double[][] v, ModelConfig c) {
        int hd = c.headDim();
        int group = c.numHeads() / c.numKvHeads();
        double[][] out = new double[q.length][c.qDim()];
        for (int t = 0; t < q.length; t++) {
            for (int head = 0; head < c.numHeads(); head++) {
                int kvOff = (head / group) * hd;
                int first = c.slidingWindow() > 0 ? Math.max(0, t - c.slidingWindow() + 1) : 0;
                double[] p = new double[t + 1];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = first; j <= t; j++) {
                    double s = 0;
                    for (int i = 0; i < hd; i++) {
                        s += q[t][head * hd + i] * k[j][kvOff + i];
                    }
                    p[j] = s / Math.sqrt(hd);
                    max = Math.max(max, p[j]);
                }
                double sum = 0;
                for (int j = first; j <= t; j++) {
                    p[j] = Math.exp(p[j] - max);
                    sum += p[j];
                }
                for (int j = first; j <= t; j++) {
                    for (int i = 0; i < hd; i++) {
                        out[t][head * hd + i] += p[j] / sum * v[j][kvOff + i];
                    }
                }
            }
        }
        return out;
    }

    private static void add(double[][] x, double[][] y) {
        for (int t = 0; t < x.length; t++) {
            for (int i = 0; i < x[t].length; i++) {
                x[t][i] += y[t][i];
            }
        }
    }
}
