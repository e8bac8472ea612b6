package dev.ember.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.Backend;
import dev.ember.backend.ModelRunner;
import dev.ember.engine.DraftModelProposer;
import dev.ember.engine.NgramProposer;
import dev.ember.engine.Proposer;
import dev.ember.engine.Speculation;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.HubCache;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import dev.ember.tokenizer.Tokenizer;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Speculative decoding's options, with vLLM's names: a draft model directory or the target's first K layers
 * ({@code self:K}), or n-gram prompt lookup; how many tokens to draft; above what batch not to.
 */
public final class SpeculativeOptions {
    /** A text whose encoding two tokenizers must agree on to be the same, where their files differ. */
    private static final String PROBE = "The quick brown fox jumps over the lazy dog. 1234567890 ¿Qué? — «Ünïcödé» 東京 🙂\n\t  end";

    @Option(names = "--speculative-model", paramLabel = "DIR|self:K",
            description = "speculate with the draft model in DIR (same vocabulary and tokenizer as the target), or with the "
                    + "target's own first K layers (self:K)")
    String model;

    @Option(names = "--speculative-method", paramLabel = "METHOD",
            description = "draft (a draft model; the default with --speculative-model) or ngram (prompt lookup, no model)")
    String method;

    @Option(names = "--num-speculative-tokens", paramLabel = "GAMMA",
            description = "tokens drafted per sequence and step; default: 4")
    Integer gamma;

    /**
     * On a GPU, the largest batch at which n-gram lookup was measured to pay at every acceptance measured. On an NVIDIA
     * H100 (2026-12-06, ember bench spec, n-gram lookup at gamma 2 on the default model, verifications of several lengths
     * replaying the decode graph of their rows): at 71% acceptance (100 tokens a request) 1.48x, 1.34x, 1.17x and 1.04x
     * at batch 2, 4, 8 and 16, 0.79x at 32 and 1.10x at 64 in single short runs; at 81% (200 tokens) 1.75-1.79x, 1.61x,
     * 1.43-1.47x, 1.27x and 1.28x at batch 8, 16, 32, 64 and 128.
     */
    static final int GPU_NGRAM_DISABLE_ABOVE = 16;

    /**
     * The same on the CPU, where a verification's rows cost nearly what as many decodes cost: the same workload on two
     * cores (2026-12-06, 100 tokens a request) 1.17x at batch 1, 1.23x at 2, 0.91x at 4 and 0.94x at 16.
     */
    static final int CPU_NGRAM_DISABLE_ABOVE = 2;

    /**
     * A draft model's, on either device: it pays at batch 1 only, where it pays at all. The shipped pair (alpha 0.78,
     * a draft step 0.63-0.68 of a target step) on an NVIDIA H100 (2026-12-06, gamma 1): 1.03x at batch 1, 0.95x at 2,
     * 0.94x at 3, 0.82x at 4, and at gamma 4 0.69x at 16; on two CPU cores (gamma 2) 0.87x, 0.82x and 0.74x at batch
     * 1, 2 and 4. A draft much cheaper than its target moves the crossover up: ember bench spec at the batches served
     * measures it, and the option sets it.
     */
    static final int DRAFT_MODEL_DISABLE_ABOVE = 1;

    /**
     * The default of --speculative-disable-by-batch-size: the crossover measured for the method on {@code backend}'s
     * kind of device.
     */
    static int defaultDisableAbove(Backend backend, boolean ngram) {
        if (!ngram) {
            return DRAFT_MODEL_DISABLE_ABOVE;
        }
        return backend != null && backend.onGpu() ? GPU_NGRAM_DISABLE_ABOVE : CPU_NGRAM_DISABLE_ABOVE;
    }

    @Option(names = "--speculative-disable-by-batch-size", paramLabel = "N",
            description = "do not speculate in a step with more than N decoding sequences; default: the largest batch at "
                    + "which the method was measured to pay: for ngram " + GPU_NGRAM_DISABLE_ABOVE + " on a GPU and "
                    + CPU_NGRAM_DISABLE_ABOVE + " on the CPU, for a draft model " + DRAFT_MODEL_DISABLE_ABOVE)
    Integer disableAbove;

    @Option(names = "--prompt-lookup-max", description = "longest n-gram matched (ngram); default: 4")
    Integer lookupMax;

    @Option(names = "--prompt-lookup-min", description = "shortest n-gram matched (ngram); default: 1")
    Integer lookupMin;

    @Option(names = "--speculative-placement", paramLabel = "STRATEGY",
            description = "where the draft model runs (seed 001's GPU strategies): same (the target's GPU), separate (the "
                    + "next GPU), ratio (multi_gpu_ratio: each model's layers over its share of the GPUs, --target-gpus and "
                    + "--draft-gpus), auto (same on one GPU); only same runs yet, the others need models split over GPUs; "
                    + "default: auto")
    String placement;

    @Option(names = "--target-gpus", paramLabel = "N", description = "GPUs the target's layers take under --speculative-placement ratio")
    Integer targetGpus;

    @Option(names = "--draft-gpus", paramLabel = "M", description = "GPUs the draft's layers take under --speculative-placement ratio")
    Integer draftGpus;

    /**
     * vLLM's current form of these options, {@code --speculative-config '{"method": "ngram", "num_speculative_tokens":
     * 4}'}: its keys give the options of the same meaning (method {@code ngram} or {@code draft_model}, model,
     * num_speculative_tokens, prompt_lookup_max / _min, disable_by_batch_size); any other key, or one also given as its
     * option, is refused by name. Read when the options are first used.
     */
    @Option(names = "--speculative-config", paramLabel = "JSON",
            description = "vLLM's JSON form of these options: method (ngram or draft_model), model (DIR or self:K), "
                    + "num_speculative_tokens, prompt_lookup_max, prompt_lookup_min, disable_by_batch_size")
    String config;

    /** The Hugging Face cache a draft named by its Hub id is found in; null for the default. */
    private Path hubCache;

    /**
     * Finds a draft named by its Hub id in {@code cache} (the target's {@code --download-dir}), at its main revision as
     * vLLM finds a draft; returns these options.
     */
    public SpeculativeOptions inHubCache(Path cache) {
        this.hubCache = cache;
        return this;
    }

    /** Takes {@link #config}'s settings into the options (once). */
    private void readConfig() {
        if (config == null) {
            return;
        }
        String text = config;
        config = null;
        JsonNode settings;
        try {
            settings = new ObjectMapper().readTree(text);
        } catch (JsonProcessingException e) {
            throw new EmberException("--speculative-config is not JSON: " + e.getOriginalMessage());
        }
        EmberException.require(settings != null && settings.isObject(), "--speculative-config must be a JSON object, got " + text);
        for (Map.Entry<String, JsonNode> entry : settings.properties()) {
            JsonNode value = entry.getValue();
            switch (entry.getKey()) {
                case "method" -> method = notGivenTwice(method, "--speculative-method", entry, switch (value.asText()) {
                    case "ngram" -> "ngram";
                    case "draft_model" -> "draft";
                    default -> throw new EmberException("--speculative-config: method \"" + value.asText()
                            + "\" is not supported (ngram or draft_model)");
                });
                case "model" -> model = notGivenTwice(model, "--speculative-model", entry, value.asText());
                case "num_speculative_tokens" -> gamma = notGivenTwice(gamma, "--num-speculative-tokens", entry, integer(entry));
                case "prompt_lookup_max" -> lookupMax = notGivenTwice(lookupMax, "--prompt-lookup-max", entry, integer(entry));
                case "prompt_lookup_min" -> lookupMin = notGivenTwice(lookupMin, "--prompt-lookup-min", entry, integer(entry));
                case "disable_by_batch_size" ->
                        disableAbove = notGivenTwice(disableAbove, "--speculative-disable-by-batch-size", entry, integer(entry));
                case "draft_tensor_parallel_size" -> EmberException.require(integer(entry) == 1,
                        "--speculative-config: draft_tensor_parallel_size must be 1 (the draft runs on one device)");
                default -> throw new EmberException("--speculative-config: \"" + entry.getKey() + "\" is not supported "
                        + "(method, model, num_speculative_tokens, prompt_lookup_max, prompt_lookup_min, disable_by_batch_size)");
            }
        }
    }

    private static <T> T notGivenTwice(T given, String option, Map.Entry<String, JsonNode> entry, T configured) {
        EmberException.require(given == null, "--speculative-config's " + entry.getKey() + " and " + option
                + " are the same setting: give one");
        return configured;
    }

    private static int integer(Map.Entry<String, JsonNode> entry) {
        EmberException.require(entry.getValue().isIntegralNumber() && entry.getValue().canConvertToInt(),
                "--speculative-config: " + entry.getKey() + " must be an integer, got " + entry.getValue());
        return entry.getValue().asInt();
    }

    /** Whether any speculation was asked for. */
    public boolean given() {
        readConfig();
        return model != null || method != null;
    }

    /**
     * The speculation asked for, its draft loaded on {@code backend} with a cache of {@code kv}'s tokens; empty when
     * none was asked for.
     *
     * @param target          the target as loaded (its host model is the self:K draft's source where there is one)
     * @param targetTokenizer the target's tokenizer, which a draft model's must equal; null for a tokenizer-less preset
     */
    public Optional<Speculation> open(Backend backend, LoadedModel target, Tokenizer targetTokenizer, Progress progress) {
        if (!given()) {
            EmberException.require(!placementGiven(), "--speculative-placement places a draft model: give --speculative-model too");
            return Optional.empty();
        }
        EmberException.require(gamma() >= 1, "--num-speculative-tokens must be at least 1, got " + gamma());
        EmberException.require(disableAbove == null || disableAbove >= 1,
                "--speculative-disable-by-batch-size must be at least 1, got " + disableAbove);
        Proposer proposer;
        if (ngram()) {
            EmberException.require(!placementGiven(), "n-gram prompt lookup has no draft model to place: leave out --speculative-placement");
            int shortest = lookupMin != null ? lookupMin : 1, longest = lookupMax != null ? lookupMax : 4;
            EmberException.require(shortest >= 1 && longest >= shortest,
                    "--prompt-lookup-min and --prompt-lookup-max must satisfy 1 <= min <= max, got " + shortest + " and " + longest);
            proposer = new NgramProposer(shortest, longest);
        } else {
            placement(backend);
            Draft draft = openDraft(backend, target, targetTokenizer, (int) target.runner().kvSpec().tokenCapacity(), progress);
            proposer = new DraftModelProposer(draft.runner(), draft.name(), target.config().vocabSize(), draft);
        }
        return Optional.of(new Speculation(proposer, gamma(), disableAbove == null ? defaultDisableAbove(backend, ngram()) : disableAbove));
    }

    /**
     * These options, or where no speculation was asked for, the same with {@code --speculative-model defaultModel} (a
     * directory or self:K): what a benchmark of speculative decoding runs when told nothing.
     */
    public SpeculativeOptions orDefault(String defaultModel) {
        if (given()) {
            return this;
        }
        SpeculativeOptions o = copy();
        o.model = defaultModel;
        return o;
    }

    /**
     * These options without a batch limit unless one was given: a benchmark that speculates at the batch size it is
     * told measures what the default limit was chosen from, so the default must not stop it.
     */
    public SpeculativeOptions unlimitedUnlessGiven() {
        SpeculativeOptions o = copy();
        if (o.disableAbove == null) {
            o.disableAbove = Integer.MAX_VALUE;
        }
        return o;
    }

    private SpeculativeOptions copy() {
        readConfig();
        SpeculativeOptions o = new SpeculativeOptions();
        o.model = model;
        o.method = method;
        o.gamma = gamma;
        o.disableAbove = disableAbove;
        o.lookupMin = lookupMin;
        o.lookupMax = lookupMax;
        o.placement = placement;
        o.targetGpus = targetGpus;
        o.draftGpus = draftGpus;
        o.hubCache = hubCache;
        return o;
    }

    /** Whether the drafts come from n-gram prompt lookup (no draft model); an error for an unknown method. */
    public boolean ngram() {
        readConfig();
        String kind = method != null ? method.toLowerCase(Locale.ROOT) : "draft";
        return switch (kind) {
            case "ngram" -> {
                EmberException.require(model == null, "--speculative-method ngram takes no --speculative-model");
                yield true;
            }
            case "draft" -> {
                EmberException.require(model != null, "--speculative-method draft needs --speculative-model DIR or self:K");
                yield false;
            }
            default -> throw new EmberException("unknown --speculative-method \"" + method + "\" (draft or ngram)");
        };
    }

    /** Whether any of the placement options was given (--speculative-placement, --target-gpus, --draft-gpus). */
    private boolean placementGiven() {
        return placement != null || targetGpus != null || draftGpus != null;
    }

    /**
     * Where the draft model runs on {@code backend} ({@code --speculative-placement} resolved there): same today; a
     * placement that takes more GPUs, or GPUs the backend does not drive together yet, is refused by name.
     */
    public DraftPlacement placement(Backend backend) {
        return DraftPlacement.parse(placement, targetGpus, draftGpus).resolve(backend);
    }

    /** {@code --num-speculative-tokens}. */
    public int gamma() {
        readConfig();
        return gamma != null ? gamma : 4;
    }

    /** A draft model's runner, its name, and what closing it closes (the runner, and the model it loaded). */
    public record Draft(ModelRunner runner, String name, AutoCloseable owned) implements AutoCloseable {
        @Override
        public void close() {
            try {
                owned.close();
            } catch (Exception e) {
                throw new EmberException("closing the draft model " + name + " failed: " + e.getMessage());
            }
        }
    }

    /**
     * The draft model of {@code --speculative-model} (a directory or self:K; not for n-gram lookup) loaded on
     * {@code backend} in the target's weight type with a cache of {@code kvTokens} tokens in the target's block size:
     * the draft a proposer drafts with, or one a benchmark times alone.
     */
    public Draft openDraft(Backend backend, LoadedModel target, Tokenizer targetTokenizer, int kvTokens, Progress progress) {
        EmberException.require(!ngram(), "n-gram prompt lookup has no draft model");
        int blockSize = target.runner().kvSpec().blockSize();
        if (model.startsWith("self:")) {
            int layers;
            try {
                layers = Integer.parseInt(model.substring(5));
            } catch (NumberFormatException e) {
                throw new EmberException("--speculative-model " + model + ": K in self:K must be a number of layers");
            }
            int total = target.config().numLayers();
            EmberException.require(layers >= 1 && layers < total, "--speculative-model " + model + ": the target has "
                    + total + " layers; a self draft takes 1 to " + (total - 1) + " of them");
            KvCacheSpec kv = KvCacheSpec.forTokens(target.config().withLayers(layers), kvTokens, blockSize);
            ModelRunner runner = target.firstLayers(backend, layers, kv, progress);
            return new Draft(runner, model, runner);
        }
        Path dir = HubCache.find(Path.of(model), hubCache != null ? hubCache : HubCache.defaultRoot(), null);
        // In the target's type, as vLLM gives its draft the target's dtype: a target converted by --dtype converts its draft.
        Model draft = ModelLoader.load(dir, target.dtype(), progress);
        try {
            if (targetTokenizer != null) {
                checkSameTokenizer(targetTokenizer, dir);
            }
            ModelRunner runner = backend.load(draft, KvCacheSpec.forTokens(draft.config(), kvTokens, blockSize), progress);
            return new Draft(runner, draft.name(), () -> {
                runner.close();
                draft.close();
            });
        } catch (RuntimeException e) {
            draft.close();
            throw e;
        }
    }

    /** Refuses a draft whose tokenizer is not the target's, saying what differs. */
    static void checkSameTokenizer(Tokenizer target, Path draftDir) {
        try (Tokenizer draft = Tokenizer.load(draftDir)) {
            if (draft.vocabSize() != target.vocabSize()) {
                throw new EmberException("the draft model's tokenizer (" + draftDir + ") has " + draft.vocabSize()
                        + " tokens and the target's " + target.vocabSize() + ": speculative decoding needs the same tokenizer");
            }
            int[] a = target.encode(PROBE), b = draft.encode(PROBE);
            if (!Arrays.equals(a, b)) {
                throw new EmberException("the draft model's tokenizer (" + draftDir + ") encodes text differently from the "
                        + "target's (\"" + PROBE.substring(0, 19) + "...\": " + Arrays.toString(Arrays.copyOf(a, 6)) + "... against "
                        + Arrays.toString(Arrays.copyOf(b, 6)) + "...): speculative decoding needs the same tokenizer");
            }
            if (!draft.stopTokenIds().equals(target.stopTokenIds())) {
                throw new EmberException("the draft model's end-of-sequence tokens " + draft.stopTokenIds() + " are not the target's "
                        + target.stopTokenIds());
            }
        }
    }
}
