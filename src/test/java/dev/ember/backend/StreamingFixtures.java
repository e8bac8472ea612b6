package dev.ember.backend;

import dev.ember.Numerics;
import dev.ember.Progress;
import dev.ember.backend.streaming.StreamingMode;
import dev.ember.backend.streaming.StreamingSettings;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.RequestListener;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.RandomWeights;
import dev.ember.model.RopeScaling;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.scheduler.Sequence;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * What the streaming tests of every backend share: random-weight models written to disk (so that every mode, direct
 * reads from the files included, has files to read), the settings of each mode, and greedy generation through a
 * runner's forward pass.
 */
public final class StreamingFixtures {
    /** Llama with attention_bias and mlp_bias: a bias on every projection (Qwen2's q/k/v ones among them), untied head. */
    public static final ModelConfig WITH_BIAS = new ModelConfig(Architecture.LLAMA, 64, 160, 4, 4, 2, 16, 97, 256, 1e-6,
            10000, new RopeScaling.None(), false, new Biases(true, true, true), 0, 1, List.of(2), DType.BF16);
    /** Qwen3-like: per-head q/k norms, tied embeddings. */
    public static final ModelConfig WITH_QK_NORM = new ModelConfig(Architecture.QWEN3, 64, 96, 3, 4, 4, 16, 89, 256, 1e-6,
            1_000_000, new RopeScaling.None(), true, Biases.NONE, 0, 1, List.of(2), DType.BF16);

    private StreamingFixtures() {
    }

    /** {@code config}'s random bf16 weights of {@code seed}, written once under {@code dir}. */
    public static Path onDisk(ModelConfig config, long seed, Path dir) {
        return RandomWeights.onDisk(config, DType.BF16, seed, config.architecture().name(), dir, Progress.NONE);
    }

    /**
     * Settings of {@code mode} with a window of {@code windowLayers} layers, a host cache of one layer (so that
     * {@code stream} mode both copies cached groups and stages the others) and a small staging ring (so that a group
     * takes several staging buffers).
     */
    public static StreamingSettings settings(StreamingMode mode, int windowLayers) {
        return new StreamingSettings(mode, 0, 0, windowLayers, 1, 1, 2, 1, 64 * 1024, null);
    }

    /** A cache of room for {@code tokens} tokens for {@code model}. */
    public static KvCacheSpec kv(Model model, int tokens) {
        return KvCacheSpec.forTokens(model.config(), tokens, 16);
    }

    /** Greedy tokens after {@code prompt}: a prefill step, then single-token decode steps, through forward's logits. */
    public static int[] greedy(ModelRunner runner, int[] prompt, int count) {
        BlockTable table = runner.blockAllocator().newTable();
        table.reserveOrFail(prompt.length + count, runner.blockAllocator());
        float[] logits = new float[runner.config().vocabSize()];
        int[] out = new int[count];
        runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table)), logits);
        for (int i = 0; i < count; i++) {
            out[i] = Numerics.argmax(logits, 0, logits.length);
            if (i + 1 < count) {
                runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(new int[] {out[i]}, prompt.length + i, table)), logits);
            }
        }
        table.release(runner.blockAllocator());
        return out;
    }

    /** The logits of {@code prompt}'s last token, from one prefill step. */
    public static float[] lastLogits(ModelRunner runner, int[] prompt) {
        BlockTable table = runner.blockAllocator().newTable();
        table.reserveOrFail(prompt.length, runner.blockAllocator());
        float[] logits = new float[runner.config().vocabSize()];
        runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table)), logits);
        table.release(runner.blockAllocator());
        return logits;
    }

    /**
     * Greedy tokens of several requests run together through the engine (chunked prefill mixed with decodes, steps
     * overlapped), as {@code ember generate} and the benchmarks run them; {@code lengths[i]} tokens for request i.
     */
    public static int[][] engineGreedy(ModelRunner runner, int[][] prompts, int[] lengths) {
        LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(8, 64, 32, SchedulePolicy.DECODE_FIRST, false, true),
                Set.of(), null);
        Sequence[] sequences = new Sequence[prompts.length];
        for (int i = 0; i < prompts.length; i++) {
            sequences[i] = engine.add(prompts[i], SamplingParams.greedy(lengths[i]), RequestListener.NONE);
        }
        while (engine.hasWork()) {
            engine.step();
        }
        int[][] out = new int[prompts.length][];
        for (int i = 0; i < out.length; i++) {
            out[i] = sequences[i].generatedTokens();
        }
        return out;
    }

    /** A prompt of {@code length} tokens below {@code vocab}, not all the same. */
    public static int[] prompt(int length, int vocab) {
        int[] p = new int[length];
        Arrays.setAll(p, i -> (i * 37 + 11) % vocab);
        return p;
    }
}
