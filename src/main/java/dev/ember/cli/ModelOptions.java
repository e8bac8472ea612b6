package dev.ember.cli;

import dev.ember.EmberException;
import dev.ember.model.DType;
import dev.ember.model.HubCache;
import dev.ember.model.ModelLoader;
import dev.ember.model.ModelConfig;
import dev.ember.model.Model;
import dev.ember.Progress;
import dev.ember.backend.Backend;
import dev.ember.backend.Backends;
import dev.ember.backend.PipelineSplit;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;

/** The options every command that runs a model shares: which model, and where to run it. */
public final class ModelOptions {
    static final String DEFAULT_MODEL = "models/ember-tiny";
    private static final AtomicBoolean SAID_NO_GPU = new AtomicBoolean();
    /** The default model's draft for speculative decoding, shipped beside it. */
    static final String DEFAULT_DRAFT = "models/ember-tiny-draft";

    @Option(names = {"-m", "--model"}, paramLabel = "DIR",
            description = "HF model directory (config.json + *.safetensors + tokenizer.json), or a Hub id (org/name) "
                    + "found in the local Hugging Face cache; default: the built-in " + DEFAULT_MODEL)
    Path model;

    @Option(names = "--backend", defaultValue = "auto",
            description = "auto (GPU when present, else CPU), cpu or cuda; default: ${DEFAULT-VALUE}")
    String backend;

    @Option(names = "--enforce-eager", description = "run every GPU step eagerly, without CUDA graphs (vLLM's flag: for "
            + "debugging and comparison; decoding is slower); the CPU backend has no graphs")
    boolean enforceEager;

    @Option(names = {"-t", "--threads"}, description = "CPU backend threads; default: all cores")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = {"--tensor-parallel-size", "-tp", "--tp-size"}, paramLabel = "N",
            description = "ranks the model is split over (q/k/v, gate/up and the output projection by output features, o "
                    + "and down by input features, the partial sums added over the ranks); the CPU backend runs them as "
                    + "threads of this process; default: 1")
    int tensorParallelSize = 1;

    @Option(names = {"--pipeline-parallel-size", "-pp"}, paramLabel = "N",
            description = "pipeline stages the decoder layers are split into, each step's rows passing through them in "
                    + "micro-batches; the CPU backend runs them as threads of this process; default: 1")
    int pipelineParallelSize = 1;

    @Option(names = "--split", paramLabel = "A,B,...", split = ",",
            description = "decoder layers of each pipeline stage, in order (they must add up to the model's); default: "
                    + "as even as they go over --pipeline-parallel-size stages")
    int[] split;

    @Option(names = "--max-model-len", paramLabel = "TOKENS",
            description = "the longest a sequence (prompt and output) may grow, below the model's own context (vLLM's name): "
                    + "less KV cache to hold one; default: the model's max_position_embeddings")
    Integer maxModelLen;

    @Option(names = "--revision", paramLabel = "REV",
            description = "for a Hub id: the branch, tag or commit of its snapshot in the Hugging Face cache (vLLM's option); "
                    + "default: main")
    String revision;

    @Option(names = "--download-dir", paramLabel = "DIR",
            description = "for a Hub id: the Hugging Face cache folder to find it in (vLLM's option; Ember downloads nothing); "
                    + "default: $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub")
    Path downloadDir;

    @Option(names = "--dtype", paramLabel = "TYPE", defaultValue = "auto",
            description = "the type the weights are held and computed in: auto (as stored), bfloat16, float16 or float32 "
                    + "(vLLM's names; bf16, half, fp16, f16, float, fp32 and f32 too): a checkpoint of another type is "
                    + "converted as it loads; random-weight presets are made in it (auto: bfloat16); default: ${DEFAULT-VALUE}")
    String dtype;

    @Mixin
    WeightStreamingOptions streaming = new WeightStreamingOptions();

    /** The type {@code --dtype} asks for, or empty for auto (the checkpoint's own). */
    public Optional<DType> dtype() {
        return switch (dtype == null ? "auto" : dtype.strip().toLowerCase(Locale.ROOT)) {
            case "auto" -> Optional.empty();
            case "bfloat16", "bf16" -> Optional.of(DType.BF16);
            case "float16", "half", "fp16", "f16" -> Optional.of(DType.F16);
            case "float32", "float", "fp32", "f32" -> Optional.of(DType.F32);
            default -> throw new EmberException("--dtype " + dtype + " is not one of auto, bfloat16, float16, float32");
        };
    }

    /** Ranks the model is split over ({@code --tensor-parallel-size}); 1 for one. */
    public int tensorParallelSize() {
        EmberException.require(tensorParallelSize >= 1, "--tensor-parallel-size must be at least 1, not " + tensorParallelSize);
        return tensorParallelSize;
    }

    /** Whether the options split the layers into pipeline stages. */
    public boolean pipelined() {
        return pipelineParallelSize > 1 || split != null && split.length > 1;
    }

    /** Whether the options split the model over tensor-parallel ranks or pipeline stages, and how they say so. */
    public Optional<String> splitOption() {
        return tensorParallelSize > 1 ? Optional.of("--tensor-parallel-size " + tensorParallelSize)
                : pipelineParallelSize > 1 ? Optional.of("--pipeline-parallel-size " + pipelineParallelSize)
                : pipelined() ? Optional.of("--split") : Optional.empty();
    }

    /**
     * The decoder layers of each pipeline stage of a model of {@code layers} layers: {@code --split} as given (its
     * stage count must be {@code --pipeline-parallel-size}'s where both are given), else as even as they go.
     */
    public int[] pipelineStages(int layers) {
        EmberException.require(pipelineParallelSize >= 1, "--pipeline-parallel-size must be at least 1, not "
                + pipelineParallelSize);
        if (split == null) {
            return PipelineSplit.even(layers, pipelineParallelSize);
        }
        EmberException.require(pipelineParallelSize == 1 || pipelineParallelSize == split.length, "--split names "
                + split.length + " stages and --pipeline-parallel-size " + pipelineParallelSize);
        PipelineSplit.firstLayers(split, layers);
        return split.clone();
    }

    /** Where the weights live: resident, or streamed through a window of the device. */
    public WeightStreamingOptions streaming() {
        return streaming;
    }

    /** The model in {@code dir}, in {@code --dtype}'s type, its context capped by {@code --max-model-len} where given. */
    public Model load(Path dir, Progress progress) {
        Optional<DType> type = dtype();  // a misspelt type is said before the model is read
        // Converted weights live in host memory: streamed, they are copied from there, not read from the files.
        Model model = ModelLoader.load(dir, type.orElse(null), progress);
        try {
            return maxModelLen == null ? model : model.withMaxPositions(maxModelLen);
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    /** {@code config} with its context capped by {@code --max-model-len} where given. */
    public ModelConfig capped(ModelConfig config) {
        return maxModelLen == null ? config : config.withMaxPositions(maxModelLen);
    }

    /**
     * Takes the model directory given as a command's positional argument ({@code ember serve DIR}, as {@code vllm serve
     * MODEL} takes it); null for none.
     *
     * @throws EmberException if --model names another one too
     */
    public void positionalModel(Path dir) {
        if (dir == null) {
            return;
        }
        EmberException.require(model == null || model.equals(dir), "the model is given twice: " + dir + " and --model " + model);
        model = dir;
    }

    /** Whether --model was given (else {@link #modelDirectory()} is the default model). */
    public boolean modelGiven() {
        return model != null;
    }

    public Path modelDirectory() {
        if (model != null) {
            if (Files.isRegularFile(model)) {
                Path parent = model.toAbsolutePath().getParent();
                throw new EmberException("--model takes a model directory (config.json, *.safetensors, tokenizer.json), not "
                        + "a file: " + model + (parent != null && Files.isRegularFile(parent.resolve("config.json"))
                        ? "; its folder " + parent + " looks like one" : ""));
            }
            return hubModel(model);
        }
        return builtIn(DEFAULT_MODEL, "the default model", "--model DIR");
    }

    /**
     * {@code dir} itself where it is a directory, else the Hub id's snapshot in the cache ({@code --download-dir}, else
     * the Hugging Face default) at {@code --revision}: how every model and tokenizer named by a command is found. A Hub id
     * that cache does not hold is an error naming the cache.
     */
    public Path hubModel(Path dir) {
        return HubCache.find(dir, hubCache(), revision);
    }

    /** The Hugging Face cache folder Hub ids are found in: {@code --download-dir}, else the default. */
    public Path hubCache() {
        return downloadDir != null ? downloadDir : HubCache.defaultRoot();
    }

    /** The default model's shipped draft (models/ember-tiny-draft), found as the default model is. */
    public Path defaultDraftDirectory() {
        return builtIn(DEFAULT_DRAFT, "the default model's draft", "--speculative-model DIR|self:K");
    }

    private static Path builtIn(String relative, String what, String instead) {
        // The launcher passes the repository root, so the built-in models are found from any working directory.
        String home = System.getProperty("ember.home");
        Path dir = (home != null ? Path.of(home) : Path.of("")).resolve(relative);
        if (!Files.isDirectory(dir)) {
            throw new EmberException(what + " " + dir + " is missing; pass " + instead);
        }
        return dir;
    }

    /** These options as command-line arguments, to run another command on the same model and backend. */
    public List<String> toArguments() {
        return List.of("--model", modelDirectory().toString(), "--backend", backend, "--threads", String.valueOf(threads));
    }

    /**
     * Whether the chosen backend is a GPU (--backend cuda, or auto where one is usable), known before it is opened:
     * for the defaults that differ between a GPU and the CPU.
     */
    public boolean runsOnGpu() {
        return switch (backendChoice()) {
            case CUDA -> true;
            case CPU -> false;
            case AUTO -> Backends.whyNotGpu() == null;
        };
    }

    /**
     * Opens the chosen backend; when AUTO falls back to the CPU, says why on {@code log}, once per process (ember report
     * opens a backend for each benchmark it runs).
     */
    public Backend openBackend(PrintStream log) {
        EmberException.require(threads >= 1, "--threads must be at least 1, not " + threads);
        Backends.Choice choice = backendChoice();
        if (choice == Backends.Choice.AUTO) {
            String why = Backends.whyNotGpu();
            if (why != null && !SAID_NO_GPU.getAndSet(true)) {
                log.println("ember: no GPU (" + why + "); running on the CPU");
            }
        }
        return Backends.open(choice, threads, !enforceEager);
    }

    Backends.Choice backendChoice() {
        try {
            return Backends.Choice.valueOf(backend.toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new EmberException("unknown backend \"" + backend + "\" (auto, cpu or cuda)");
        }
    }
}
