package dev.ember.cli;

import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.Backend;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.streaming.StreamingPlan;
import dev.ember.backend.streaming.StreamingSettings;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelConfig;
import dev.ember.model.RandomWeights;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;

/**
 * A model ready to run on a backend: read from {@code --model}, or a {@code --preset} shape whose random weights are
 * made on the GPU (milliseconds) or, for small shapes, on the host. Commands that load a model for serving or
 * benchmarks open it here, so that there is one way to do it.
 *
 * @param name      the model's name for headers and the API ("llama-3.1-8b (random weights)" for a preset)
 * @param dtype     the weights' storage type
 * @param hostModel the mapped or host-made model, or null for a preset made on the GPU
 */
public record LoadedModel(String name, DType dtype, Model hostModel, ModelRunner runner) implements AutoCloseable {
    /** Random-weight presets made on the host are limited to this many bytes of weights. */
    static final long CPU_PRESET_BYTES = 2L << 30;

    /** Sizes the KV cache once the model's shape and weight bytes are known. */
    @FunctionalInterface
    public interface KvSizing {
        /**
         * @param kvElementBytes bytes of one cached K or V element on this backend (the CPU keeps them as f32; the
         *                       GPU in the weights' type)
         */
        KvCacheSpec spec(ModelConfig config, long weightBytes, int kvElementBytes);
    }

    public static LoadedModel open(ModelOptions modelOptions, PresetOption preset, Backend backend, KvSizing kv,
                                   Progress progress, PrintStream log) {
        return open(modelOptions, preset, backend, kv, modelOptions.streaming().settings(), progress, log);
    }

    /**
     * Opens the model with its weights held or streamed as {@code streaming} says. A preset that may stream, or one
     * given {@code --weights-dir}, has its random weights written once to safetensors files there (streaming reads
     * files) and loaded from them, so that resident and streamed runs of a preset read the same weights.
     */
    public static LoadedModel open(ModelOptions modelOptions, PresetOption preset, Backend backend, KvSizing kv,
                                   StreamingSettings streaming, Progress progress, PrintStream log) {
        if (streaming.gpuMemoryLimit() > 0) {
            backend.limitMemory(streaming.gpuMemoryLimit());
        }
        Optional<String> split = modelOptions.splitOption();
        if (split.isPresent() && backend.onGpu()) {
            throw Backend.splitRefused(backend.deviceName(), split.get());  // before a preset is made for nothing
        }
        if (!preset.given()) {
            return fromFiles(modelOptions.load(modelOptions.modelDirectory(), progress), null, backend, kv, streaming,
                    modelOptions, progress);
        }
        DType dtype = modelOptions.dtype().orElse(DType.BF16);
        String name = preset.name() + " (random weights)";
        if (streaming.mayStream() || modelOptions.streaming().weightsDirectoryGiven()) {
            Path dir = RandomWeights.onDisk(preset.config(modelOptions), dtype, preset.weightsSeed(), preset.name(),
                    modelOptions.streaming().weightsDirectory(), progress);
            return fromFiles(modelOptions.load(dir, progress), name, backend, kv, streaming, modelOptions, progress);
        }
        ModelConfig config = modelOptions.capped(preset.config(modelOptions));
        long weightBytes = config.matrixParameters() * dtype.bytes();
        KvCacheSpec spec = kv.spec(config, weightBytes, backend.kvElementBytes(dtype));
        Optional<ModelRunner> onDevice = backend.loadRandomOnDevice(config, dtype, spec, preset.weightsSeed());
        if (onDevice.isPresent()) {
            return new LoadedModel(name, dtype, null, onDevice.get());
        }
        if (weightBytes > CPU_PRESET_BYTES) {
            throw new EmberException(String.format(Locale.ROOT, "preset %s has %.1f GB of weights; random-weight presets on the CPU "
                    + "are limited to %.1f GB: use a GPU (--backend cuda) or a smaller preset", preset.name(), weightBytes / 1e9,
                    CPU_PRESET_BYTES / 1e9));
        }
        log.printf(Locale.ROOT, "ember: preset %s on the CPU: random bf16 weights made on the host; presets are meant for a GPU, "
                + "and on the CPU this shape (%.1f GB of weights) runs far slower than the default model%n", preset.name(),
                weightBytes / 1e9);
        Model model = RandomWeights.create(config, dtype, preset.weightsSeed());
        try {
            return new LoadedModel(name, dtype, model, load(backend, model, spec, streaming, modelOptions, progress));
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    /** {@code model}, read from files, on {@code backend}; the KV cache sized beside the device bytes its weights will take. */
    private static LoadedModel fromFiles(Model model, String name, Backend backend, KvSizing kv,
                                         StreamingSettings streaming, ModelOptions options, Progress progress) {
        try {
            DType dtype = model.layers().getFirst().wq().dtype();
            StreamingPlan plan = backend.planWeights(model, streaming);
            KvCacheSpec spec = kv.spec(model.config(), plan.deviceBytes(), backend.kvElementBytes(dtype));
            return new LoadedModel(name != null ? name : model.name(), dtype, model, load(backend, model, spec, streaming, options, progress));
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    /**
     * {@code model} on {@code backend} with a cache of {@code kv}: its weights held or streamed as {@code streaming}
     * says, or split over tensor-parallel ranks or pipeline stages (which hold every weight) as {@code options} say.
     */
    public static ModelRunner load(Backend backend, Model model, KvCacheSpec kv, StreamingSettings streaming,
                                   ModelOptions options, Progress progress) {
        int ranks = options.tensorParallelSize();
        int[] stages = options.pipelineStages(model.config().numLayers());
        if (ranks == 1 && stages.length == 1) {
            return backend.load(model, kv, streaming, progress);
        }
        EmberException.require(ranks == 1 || stages.length == 1, "--tensor-parallel-size and --pipeline-parallel-size "
                + "together are not supported yet: give one of them");
        EmberException.require(!streaming.mayStream(), (ranks > 1 ? "--tensor-parallel-size " + ranks
                : "--pipeline-parallel-size " + stages.length) + " holds every weight and streams none: leave out "
                + "--weight-mode and --gpu-weight-budget");
        return ranks > 1 ? backend.loadTensorParallel(model, kv, ranks, progress)
                : backend.loadPipelineParallel(model, kv, stages, progress);
    }

    /** A model loaded by its caller, who closes it and its runner. */
    public static LoadedModel of(Model model, ModelRunner runner) {
        return new LoadedModel(model.name(), model.layers().getFirst().wq().dtype(), model, runner);
    }

    public ModelConfig config() {
        return runner.config();
    }

    /**
     * A runner of this model's first {@code layers} decoder layers with its final norm and output projection (a
     * self-speculative draft) on {@code backend}, with a cache of {@code kv}: reading the target runner's weights where
     * it lends them ({@link ModelRunner#firstLayers}), else loaded from the same mapped tensors.
     */
    public ModelRunner firstLayers(Backend backend, int layers, KvCacheSpec kv, Progress progress) {
        return runner.firstLayers(layers, kv).orElseGet(() -> {
            if (hostModel == null) {
                throw new EmberException("the backend made this preset on its device but cannot lend its first layers");
            }
            return backend.load(hostModel.firstLayers(layers), kv, progress);
        });
    }

    @Override
    public void close() {
        runner.close();
        if (hostModel != null) {
            hostModel.close();
        }
    }
}
