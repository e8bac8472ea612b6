package dev.ember.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.MissingNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ember.EmberException;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The shape of a model, read once from its HF {@code config.json}.
 *
 * @param biases        which projections add a bias: one of the combinations the architecture's HF code can give
 * @param slidingWindow attention window in tokens (Mistral), or 0 for full causal attention
 * @param eosTokenIds   every id that ends a generation (Llama 3 lists several)
 */
public record ModelConfig(
        Architecture architecture,
        int hiddenSize,
        int intermediateSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        int vocabSize,
        int maxPositions,
        double rmsNormEps,
        double ropeTheta,
        RopeScaling ropeScaling,
        boolean tieWordEmbeddings,
        Biases biases,
        int slidingWindow,
        int bosTokenId,
        List<Integer> eosTokenIds,
        DType dtype) {

    public ModelConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
        require(hiddenSize > 0 && numLayers > 0 && numHeads > 0 && numKvHeads > 0 && headDim > 0 && vocabSize > 0
                && intermediateSize > 0, "sizes must be positive");
        require(numHeads % numKvHeads == 0, "num_attention_heads (" + numHeads + ") must be a multiple of num_key_value_heads (" + numKvHeads + ")");
        require(headDim % 2 == 0, "head_dim (" + headDim + ") must be even for rotary embeddings");
        require(architecture.biases(biases.output(), biases.mlp()).equals(biases), architecture.hfName() + " has no variant with "
                + biases + ": its biases follow attention_bias and mlp_bias (Architecture.biases)");
    }

    private static void require(boolean ok, String what) {
        if (!ok) {
            throw new EmberException("config.json: " + what);
        }
    }

    /** This config with only its first {@code layers} decoder layers (a self-speculative draft). */
    public ModelConfig withLayers(int layers) {
        require(layers > 0 && layers <= numLayers, "a model of " + numLayers + " layers has no first " + layers);
        return new ModelConfig(architecture, hiddenSize, intermediateSize, layers, numHeads, numKvHeads, headDim, vocabSize,
                maxPositions, rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings, biases, slidingWindow, bosTokenId,
                eosTokenIds, dtype);
    }

    /** This config with its weights' type ({@code torch_dtype}) {@code type}: what {@link Model#withWeightType} gives. */
    public ModelConfig withDtype(DType type) {
        return new ModelConfig(architecture, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, vocabSize,
                maxPositions, rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings, biases, slidingWindow, bosTokenId, eosTokenIds, type);
    }

    /**
     * This config with a context of {@code tokens} (vLLM's {@code --max-model-len}): shorter than the model's own, so
     * that a sequence needs less cache; the rotary tables are the model's, as far as they go.
     *
     * @throws EmberException if {@code tokens} is not in [1, {@link #maxPositions}]
     */
    public ModelConfig withMaxPositions(int tokens) {
        EmberException.require(tokens >= 1 && tokens <= maxPositions, "--max-model-len " + tokens + " must be between 1 and the "
                + "model's context of " + maxPositions + " tokens");
        return new ModelConfig(architecture, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, vocabSize,
                tokens, rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings, biases, slidingWindow, bosTokenId, eosTokenIds, dtype);
    }

    /**
     * The shape one of {@code size} tensor-parallel ranks computes: its share of the query and KV heads and of the
     * intermediate features (the hidden size, head size and vocabulary stay whole: every rank embeds every token and
     * samples from the whole vocabulary once the ranks' logits are gathered). Refused, saying what does not divide,
     * where the heads or the intermediate features do not split evenly.
     */
    public ModelConfig tensorShard(int size) {
        EmberException.require(size >= 1, "a tensor-parallel size is at least 1, not " + size);
        EmberException.require(numKvHeads % size == 0 && intermediateSize % size == 0, "a tensor-parallel size of " + size
                + " must divide the model's " + numKvHeads + " KV heads and its intermediate size of " + intermediateSize);
        return new ModelConfig(architecture, hiddenSize, intermediateSize / size, numLayers, numHeads / size, numKvHeads / size,
                headDim, vocabSize, maxPositions, rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings, biases, slidingWindow,
                bosTokenId, eosTokenIds, dtype);
    }

    public int qDim() {
        return numHeads * headDim;
    }

    public int kvDim() {
        return numKvHeads * headDim;
    }

    /** Parameters of one layer's weight matrices: q/k/v, o, gate, up and down (norm vectors and biases left out). */
    public long layerMatrixParameters() {
        long h = hiddenSize;
        return h * (qDim() + 2L * kvDim()) + (long) qDim() * h + 3L * h * intermediateSize;
    }

    /** Parameters of the weight matrices and embeddings (norm vectors and biases, under 0.01%, left out). */
    public long matrixParameters() {
        return numLayers * layerMatrixParameters() + (tieWordEmbeddings ? 1 : 2) * (long) vocabSize * hiddenSize;
    }

    public boolean qkNorm() {
        return architecture.qkNorm();
    }

    /**
     * The factor of q·k in attention: 1/sqrt(headDim), times the square of the rotary scaling's attention factor (YaRN
     * scales q and k by it; scaling their product instead is the same arithmetic, and leaves the cache's keys as the
     * plain rotation writes them).
     */
    public float attentionScale() {
        double factor = ropeScaling.attentionFactor();
        return (float) (factor * factor / Math.sqrt(headDim));
    }

    /** This config as an HF {@code config.json} that {@link #read} reads back equal: for models written to disk. */
    public String toJson() {
        ObjectNode c = JsonNodeFactory.instance.objectNode();
        c.putArray("architectures").add(architecture.hfName());
        c.put("model_type", architecture.modelType());
        c.put("hidden_size", hiddenSize).put("intermediate_size", intermediateSize).put("num_hidden_layers", numLayers)
                .put("num_attention_heads", numHeads).put("num_key_value_heads", numKvHeads).put("head_dim", headDim)
                .put("vocab_size", vocabSize).put("max_position_embeddings", maxPositions).put("rms_norm_eps", rmsNormEps)
                .put("rope_theta", ropeTheta).put("tie_word_embeddings", tieWordEmbeddings).put("attention_bias", biases.output())
                .put("mlp_bias", biases.mlp())
                .put("bos_token_id", bosTokenId).put("hidden_act", "silu");
        switch (ropeScaling) {
            case RopeScaling.None none -> { }
            case RopeScaling.Linear l -> c.putObject("rope_scaling").put("rope_type", "linear").put("factor", l.factor());
            case RopeScaling.Dynamic d -> c.putObject("rope_scaling").put("rope_type", "dynamic").put("factor", d.factor());
            case RopeScaling.Llama3 l -> c.putObject("rope_scaling").put("rope_type", "llama3").put("factor", l.factor())
                    .put("low_freq_factor", l.lowFreqFactor()).put("high_freq_factor", l.highFreqFactor())
                    .put("original_max_position_embeddings", l.originalMaxPositions());
            case RopeScaling.Yarn y -> c.putObject("rope_scaling").put("rope_type", "yarn").put("factor", y.factor())
                    .put("original_max_position_embeddings", y.originalMaxPositions()).put("beta_fast", y.betaFast())
                    .put("beta_slow", y.betaSlow()).put("truncate", y.truncate()).put("attention_factor", y.attentionFactor());
        }
        if (slidingWindow > 0) {
            c.put("sliding_window", slidingWindow).put("use_sliding_window", true);
        } else {
            c.putNull("sliding_window");  // left out, it would read as transformers' default window of 4096
        }
        eosTokenIds.forEach(c.putArray("eos_token_id")::add);
        c.put("torch_dtype", switch (dtype) {
            case BF16 -> "bfloat16";
            case F16 -> "float16";
            case F32 -> "float32";
        });
        return c.toPrettyString();
    }

    /** Reads and checks {@code dir/config.json}; every error names the file and the field. */
    public static ModelConfig read(Path configFile) {
        JsonNode root = JsonFile.readObject(configFile);
        try {
            return parse(root);
        } catch (EmberException e) {
            throw new EmberException(configFile + ": " + e.getMessage().replaceFirst("^config\\.json: ", ""), e);
        }
    }

    static ModelConfig parse(JsonNode c) {
        JsonNode archs = c.path("architectures");
        Architecture arch;
        if (archs.isArray() && !archs.isEmpty()) {
            arch = Architecture.fromHf(archs.get(0).asText());
        } else if (c.path("model_type").isTextual()) {
            arch = Architecture.fromModelType(c.get("model_type").asText());  // as transformers' AutoConfig reads it
        } else {
            throw new EmberException("config.json: missing \"architectures\" (and \"model_type\")");
        }
        JsonNode quantization = c.path("quantization_config");
        require(!quantization.isObject(), "quantization_config (" + quantization.path("quant_method").asText("a quantized checkpoint")
                + ") is not supported: Ember runs unquantized bfloat16, float16 or float32 weights");
        String act = c.path("hidden_act").asText("silu");
        // transformers' ACT2FN maps "swish" to the same SiLU.
        require(act.equals("silu") || act.equals("swish"), "hidden_act \"" + act + "\" is not supported (Ember runs SwiGLU with silu)");
        int hidden = requiredInt(c, "hidden_size");
        int heads = requiredInt(c, "num_attention_heads");
        int kvHeads = c.path("num_key_value_heads").isNumber() ? c.get("num_key_value_heads").asInt() : heads;
        int headDim = c.path("head_dim").isNumber() ? c.get("head_dim").asInt() : arch.defaultHeadDim(hidden, heads);
        // transformers 5 writes rope settings under "rope_parameters"; 4.x used "rope_theta" and "rope_scaling".
        JsonNode rope = c.path("rope_parameters");
        double theta = rope.path("rope_theta").asDouble(c.path("rope_theta").asDouble(10000.0));
        int maxPositions = c.path("max_position_embeddings").asInt(arch.defaultMaxPositions());
        JsonNode ropeSettings = rope.isObject() ? rope : c.path("rope_scaling");
        double rotaryFraction = ropeSettings.path("partial_rotary_factor").asDouble(c.path("partial_rotary_factor").asDouble(1.0));
        require(rotaryFraction == 1.0, "partial_rotary_factor " + rotaryFraction + " is not supported (Ember rotates whole heads)");
        RopeScaling scaling = parseRopeScaling(ropeSettings, maxPositions);
        if (scaling instanceof RopeScaling.Yarn y) {
            // YaRN stretches the original context by its factor (Qwen3: 32,768 x 4), as vLLM takes the model's length.
            maxPositions = Math.max(maxPositions, (int) Math.round(y.originalMaxPositions() * y.factor()));
        }
        boolean defaultTie = false;
        boolean tie = c.path("tie_word_embeddings").asBoolean(defaultTie);
        Biases biases = arch.biases(c.path("attention_bias").asBoolean(false), c.path("mlp_bias").asBoolean(false));
        int window = slidingWindow(c, arch, requiredInt(c, "num_hidden_layers"));
        List<Integer> eos = new ArrayList<>();
        JsonNode eosNode = c.path("eos_token_id");
        if (eosNode.isArray()) {
            eosNode.forEach(n -> eos.add(n.asInt()));
        } else if (eosNode.isNumber()) {
            eos.add(eosNode.asInt());
        }
        String dtypeName = c.path("torch_dtype").asText(c.path("dtype").asText("bfloat16"));
        return new ModelConfig(arch, hidden, requiredInt(c, "intermediate_size"), requiredInt(c, "num_hidden_layers"),
                heads, kvHeads, headDim, requiredInt(c, "vocab_size"), maxPositions,
                c.path("rms_norm_eps").asDouble(1e-6), theta, scaling, tie, biases, window,
                c.path("bos_token_id").asInt(-1), eos, DType.fromTorch(dtypeName));
    }

    /**
     * The sliding window every layer attends within, 0 for none, as transformers lays the layers out: Mistral slides in
     * every layer; Qwen2 and Qwen3, where use_sliding_window is set, only in the layers from max_window_layers (28 by
     * default) on, or as layer_types lists them. A model that slides in some layers and not others is refused: Ember
     * gives every layer the same attention.
     */
    private static int slidingWindow(JsonNode c, Architecture arch, int layers) {
        boolean mistral = arch == Architecture.MISTRAL;
        JsonNode types = mistral ? MissingNode.getInstance() : c.path("layer_types");
        // Where the key is left out, transformers' Mistral, Qwen2 and Qwen3 configs slide over 4096 tokens; null is none.
        JsonNode windowNode = c.path("sliding_window");
        int window = windowNode.isMissingNode() ? 4096 : windowNode.isNumber() ? windowNode.asInt() : 0;
        if (window == 0 || !types.isArray() && !c.path("use_sliding_window").asBoolean(mistral)) {
            return 0;
        }
        int sliding = mistral ? layers : layers - Math.clamp(c.path("max_window_layers").asInt(28), 0, layers);
        if (types.isArray()) {  // transformers 5 writes Qwen's layout itself, and reads it over use_sliding_window
            sliding = 0;
            for (JsonNode type : types) {
                sliding += type.asText().equals("sliding_attention") ? 1 : 0;
            }
        }
        require(sliding == 0 || sliding == layers, "a sliding window in " + sliding + " of " + layers
                + " layers (max_window_layers, layer_types) is not supported: Ember gives every layer the same attention");
        return sliding == layers ? window : 0;
    }

    private static RopeScaling parseRopeScaling(JsonNode s, int maxPositions) {
        if (s == null || !s.isObject()) {
            return new RopeScaling.None();
        }
        String type = s.path("rope_type").asText(s.path("type").asText("default"));
        return switch (type) {
            case "default" -> new RopeScaling.None();
            case "linear" -> new RopeScaling.Linear(ropeFactor(s, type));
            case "dynamic" -> new RopeScaling.Dynamic(ropeFactor(s, type));
            case "llama3" -> {
                // transformers' rope validation requires every one of these keys (a KeyError names the missing ones).
                double low = ropeNumber(s, type, "low_freq_factor"), high = ropeNumber(s, type, "high_freq_factor");
                require(low > 0 && high > low, "rope scaling \"llama3\" needs 0 < low_freq_factor < high_freq_factor, not "
                        + low + " and " + high);
                JsonNode original = s.path("original_max_position_embeddings");
                require(original.isIntegralNumber() && original.asInt() > 0, "rope scaling \"llama3\" needs a positive "
                        + "integer \"original_max_position_embeddings\", not " + original);
                yield new RopeScaling.Llama3(ropeFactor(s, type), low, high, original.asInt());
            }
            case "yarn" -> parseYarn(s, maxPositions);
            default -> throw new EmberException("config.json: rope scaling type \"" + type
                    + "\" is not supported (default, linear, dynamic, llama3, yarn)");
        };
    }

    /** The positive {@code factor} that rope scaling {@code type} requires. */
    private static double ropeFactor(JsonNode s, String type) {
        double factor = ropeNumber(s, type, "factor");
        require(factor > 0, "rope scaling \"" + type + "\" needs a positive factor, not " + factor);
        return factor;
    }

    /** The number {@code field} of rope scaling {@code type}, which it requires. */
    private static double ropeNumber(JsonNode s, String type, String field) {
        require(s.path(field).isNumber(), "rope scaling \"" + type + "\" needs a number \"" + field + "\", got "
                + (s.has(field) ? s.get(field).toString() : "none"));
        return s.get(field).asDouble();
    }

    /**
     * YaRN as transformers 5 and vLLM read it: the original context from {@code original_max_position_embeddings}
     * (else the model's), the factor given or else the ratio of the two contexts, beta_fast / beta_slow 32 / 1, and the
     * attention factor given, or else from the factor (and DeepSeek's mscale / mscale_all_dim where both are set).
     */
    private static RopeScaling.Yarn parseYarn(JsonNode s, int maxPositions) {
        int original = s.path("original_max_position_embeddings").asInt(maxPositions);
        double factor = s.path("factor").isNumber() ? s.get("factor").asDouble() : (double) maxPositions / original;
        require(factor > 0, "rope scaling \"yarn\" needs a positive factor, not " + factor);
        double mscale = s.path("mscale").asDouble(0), mscaleAllDim = s.path("mscale_all_dim").asDouble(0);
        double attentionFactor = s.path("attention_factor").isNumber() ? s.get("attention_factor").asDouble()
                : mscale != 0 && mscaleAllDim != 0
                ? RopeScaling.Yarn.magnitudeScale(factor, mscale) / RopeScaling.Yarn.magnitudeScale(factor, mscaleAllDim)
                : RopeScaling.Yarn.magnitudeScale(factor, 1);
        double betaFast = s.path("beta_fast").asDouble(0), betaSlow = s.path("beta_slow").asDouble(0);
        return new RopeScaling.Yarn(factor, original, betaFast != 0 ? betaFast : 32, betaSlow != 0 ? betaSlow : 1,
                s.path("truncate").asBoolean(true), attentionFactor);
    }

    private static int requiredInt(JsonNode c, String field) {
        JsonNode n = c.path(field);
        if (!n.isIntegralNumber()) {
            throw new EmberException("config.json: missing or non-integer \"" + field + "\"");
        }
        return n.asInt();
    }
}
