package dev.ember.model;

import dev.ember.EmberException;
import dev.ember.Progress;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Locale;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Builds a {@link Model} of any config with random weights in host memory: for tests and for benchmarks of
 * shapes whose real weights are not at hand. Linear weights are uniform in ±sqrt(3/in) (unit-variance
 * outputs for unit-variance inputs), so activations and logits stay in a realistic range at any depth;
 * norm weights are near 1 and biases small.
 */
public final class RandomWeights {
    private RandomWeights() {
    }

    /**
     * The directory of a model of shape {@code c} with the random weights {@link #create} makes, written once as
     * safetensors under {@code cacheDir} (for runs that read weights from files: streaming) and reused while it is
     * there. A directory is complete once its marker file is written, so an interrupted write is redone.
     */
    public static Path onDisk(ModelConfig c, DType dtype, long seed, String name, Path cacheDir, Progress progress) {
        Path dir = cacheDir.resolve(name.replaceAll("[^A-Za-z0-9._-]", "_") + "-" + dtype.name().toLowerCase(Locale.ROOT)
                + "-seed" + seed);
        Path complete = dir.resolve(".complete");
        if (Files.isRegularFile(complete)) {
            return dir;
        }
        progress.update("writing random weights to " + dir, 0, 1);
        try (Model model = create(c, dtype, seed)) {
            SafeTensorsWriter.writeModel(dir, model);
            Files.writeString(complete, "");
        } catch (IOException e) {
            throw new EmberException("cannot write random weights to " + dir + ": " + e.getMessage(), e);
        }
        progress.update("wrote random weights to " + dir, 1, 1);
        return dir;
    }

    public static Model create(ModelConfig c, DType dtype, long seed) {
        Arena arena = Arena.ofShared();
        Maker m = new Maker(arena, dtype, new SplittableRandom(seed));
        long h = c.hiddenSize(), q = c.qDim(), kv = c.kvDim(), ff = c.intermediateSize(), v = c.vocabSize(), hd = c.headDim();
        Tensor embedding = m.uniform("model.embed_tokens.weight", 1.0, v, h);
        List<LayerWeights> layers = new ArrayList<>();
        for (int i = 0; i < c.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            Biases b = c.biases();
            layers.add(new LayerWeights(
                    m.norm(p + "input_layernorm.weight", h),
                    m.linear(p + "self_attn.q_proj.weight", q, h),
                    m.linear(p + "self_attn.k_proj.weight", kv, h),
                    m.linear(p + "self_attn.v_proj.weight", kv, h),
                    m.linear(p + "self_attn.o_proj.weight", h, q),
                    b.qkv() ? m.bias(p + "self_attn.q_proj.bias", q) : null,
                    b.qkv() ? m.bias(p + "self_attn.k_proj.bias", kv) : null,
                    b.qkv() ? m.bias(p + "self_attn.v_proj.bias", kv) : null,
                    b.output() ? m.bias(p + "self_attn.o_proj.bias", h) : null,
                    c.qkNorm() ? m.norm(p + "self_attn.q_norm.weight", hd) : null,
                    c.qkNorm() ? m.norm(p + "self_attn.k_norm.weight", hd) : null,
                    m.norm(p + "post_attention_layernorm.weight", h),
                    m.linear(p + "mlp.gate_proj.weight", ff, h),
                    m.linear(p + "mlp.up_proj.weight", ff, h),
                    m.linear(p + "mlp.down_proj.weight", h, ff),
                    b.mlp() ? m.bias(p + "mlp.gate_proj.bias", ff) : null,
                    b.mlp() ? m.bias(p + "mlp.up_proj.bias", ff) : null,
                    b.mlp() ? m.bias(p + "mlp.down_proj.bias", h) : null));
        }
        Tensor norm = m.norm("model.norm.weight", h);
        Tensor lmHead = c.tieWordEmbeddings() ? embedding : m.linear("lm_head.weight", v, h);
        return new Model(null, c, embedding, layers, norm, lmHead, arena);
    }

    private record Maker(Arena arena, DType dtype, SplittableRandom random) {
        Tensor linear(String name, long out, long in) {
            return uniform(name, Math.sqrt(3.0 / in), out, in);
        }

        Tensor bias(String name, long n) {
            return uniform(name, 0.1, n);
        }

        Tensor norm(String name, long n) {
            Tensor t = allocate(name, n);
            for (long i = 0; i < n; i++) {
                put(t.data(), i, (float) (1.0 + 0.2 * (random.nextDouble() - 0.5)));
            }
            return t;
        }

        Tensor uniform(String name, double bound, long... shape) {
            Tensor t = allocate(name, shape);
            long n = t.elementCount();
            for (long i = 0; i < n; i++) {
                put(t.data(), i, (float) ((2 * random.nextDouble() - 1) * bound));
            }
            return t;
        }

        private Tensor allocate(String name, long... shape) {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return new Tensor(name, dtype, shape, arena.allocate(n * dtype.bytes(), 64));
        }

        private void put(MemorySegment s, long i, float value) {
            dtype.set(s, i, value);
        }
    }
}
