package dev.ember.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ember.EmberException;
import dev.ember.Progress;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * Loads an HF model directory ({@code config.json} plus one {@code model.safetensors} or shards listed in
 * {@code model.safetensors.index.json}), maps every file and checks each tensor's shape against the config.
 */
public final class ModelLoader {
    private ModelLoader() {
    }

    public static Model load(Path dir) {
        return load(dir, Progress.NONE);
    }

    /**
     * The model in {@code dir} with its matrices in {@code type} ({@link Model#withWeightType}; as stored where
     * {@code type} is null), closed again where the conversion fails.
     */
    public static Model load(Path dir, DType type, Progress progress) {
        Model model = load(dir, progress);
        if (type == null) {
            return model;
        }
        try {
            return model.withWeightType(type, progress);
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    public static Model load(Path dir, Progress progress) {
        if (!Files.isDirectory(dir)) {
            throw new EmberException(HubCache.notFound(dir, HubCache.defaultRoot()));
        }
        Path configFile = dir.resolve("config.json");
        if (!Files.isRegularFile(configFile)) {
            throw new EmberException(dir + ": no config.json (an HF model directory holds config.json and *.safetensors)");
        }
        ModelConfig config = ModelConfig.read(configFile);
        List<Path> files = tensorFiles(dir);
        Arena arena = Arena.ofShared();
        try {
            Map<String, Tensor> all = new HashMap<>();
            for (int i = 0; i < files.size(); i++) {
                progress.update("mapping " + files.get(i).getFileName(), i, files.size());
                all.putAll(SafeTensorsFile.map(files.get(i), arena).tensors());
            }
            progress.update("mapped", files.size(), files.size());
            return assemble(dir, config, new TensorSource(dir, all), arena);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** The safetensors files of the model in {@code dir}: the shards its index lists, or its one file. */
    public static List<Path> tensorFiles(Path dir) {
        Path index = dir.resolve("model.safetensors.index.json");
        if (Files.isRegularFile(index)) {
            JsonNode map = JsonFile.readObject(index).path("weight_map");
            if (!map.isObject()) {
                throw new EmberException(index + ": no \"weight_map\" object");
            }
            TreeSet<String> names = new TreeSet<>();
            map.properties().forEach(e -> names.add(e.getValue().asText()));
            List<Path> shards = new ArrayList<>();
            for (String name : names) {
                Path shard = dir.resolve(name);
                if (!Files.isRegularFile(shard)) {
                    throw new EmberException(index + " lists shard " + name + ", which is missing from " + dir);
                }
                shards.add(shard);
            }
            return shards;
        }
        Path single = dir.resolve("model.safetensors");
        if (Files.isRegularFile(single)) {
            return List.of(single);
        }
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> files = s.sorted().toList();
            List<Path> found = files.stream().filter(p -> p.getFileName().toString().endsWith(".safetensors")).toList();
            if (found.isEmpty()) {
                List<String> pickled = files.stream().map(p -> p.getFileName().toString())
                        .filter(n -> n.endsWith(".bin") || n.endsWith(".pt") || n.endsWith(".pth")).toList();
                throw new EmberException(dir + ": no *.safetensors files" + (pickled.isEmpty() ? "" : " (it holds "
                        + String.join(", ", pickled) + ": PyTorch's pickled weights, which Ember does not read; saving the "
                        + "model again with transformers' save_pretrained(dir) writes safetensors)"));
            }
            // Mistral's repositories carry the same weights twice: HF's files and consolidated.safetensors, in Mistral's
            // own names, which no architecture here reads.
            List<Path> hf = found.stream().filter(p -> !p.getFileName().toString().startsWith("consolidated")).toList();
            return hf.isEmpty() ? found : hf;
        } catch (IOException e) {
            throw new EmberException(dir + ": cannot list directory (" + e.getMessage() + ")", e);
        }
    }

    /** Looks tensors up by HF name, checks their shapes, and remembers which were asked for. */
    private record TensorSource(Path dir, Map<String, Tensor> tensors, Set<String> used) {
        TensorSource(Path dir, Map<String, Tensor> tensors) {
            this(dir, tensors, new HashSet<>());
        }

        Tensor required(String name, long... shape) {
            Tensor t = tensors.get(name);
            if (t == null) {
                throw new EmberException(dir + ": tensor " + name + " is missing from the safetensors files");
            }
            used.add(name);
            return checked(t, shape);
        }

        Tensor optional(String name, long... shape) {
            Tensor t = tensors.get(name);
            if (t != null) {
                used.add(name);
            }
            return t == null ? null : checked(t, shape);
        }

        /**
         * Refuses a checkpoint with tensors the model does not read (a bias its config.json does not enable, extra layers, another
         * variant's parts): computing without them would give wrong outputs with no error. Rotary frequency tables,
         * which older checkpoints carry and Ember computes itself, are not weights.
         */
        void requireAllUsed() {
            List<String> unused = tensors.keySet().stream()
                    .filter(name -> !used.contains(name) && !name.endsWith("rotary_emb.inv_freq"))
                    .sorted().toList();
            if (!unused.isEmpty()) {
                throw new EmberException(dir + ": " + unused.size() + " tensor" + (unused.size() == 1 ? "" : "s")
                        + " that this architecture's config.json does not account for, e.g. "
                        + String.join(", ", unused.subList(0, Math.min(3, unused.size())))
                        + ": a variant Ember does not run (it would compute without them)");
            }
        }

        private Tensor checked(Tensor t, long[] shape) {
            if (!Arrays.equals(t.shape(), shape)) {
                throw new EmberException(dir + ": tensor " + t.name() + " has shape " + Arrays.toString(t.shape())
                        + " but config.json implies " + Arrays.toString(shape));
            }
            return t;
        }
    }

    private static Model assemble(Path dir, ModelConfig c, TensorSource src, Arena arena) {
        long h = c.hiddenSize(), q = c.qDim(), kv = c.kvDim(), ff = c.intermediateSize(), v = c.vocabSize(), hd = c.headDim();
        Tensor embedding = src.required("model.embed_tokens.weight", v, h);
        List<LayerWeights> layers = new ArrayList<>(c.numLayers());
        for (int i = 0; i < c.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            Biases b = c.biases();
            layers.add(new LayerWeights(
                    src.required(p + "input_layernorm.weight", h),
                    src.required(p + "self_attn.q_proj.weight", q, h),
                    src.required(p + "self_attn.k_proj.weight", kv, h),
                    src.required(p + "self_attn.v_proj.weight", kv, h),
                    src.required(p + "self_attn.o_proj.weight", h, q),
                    b.qkv() ? src.required(p + "self_attn.q_proj.bias", q) : null,
                    b.qkv() ? src.required(p + "self_attn.k_proj.bias", kv) : null,
                    b.qkv() ? src.required(p + "self_attn.v_proj.bias", kv) : null,
                    b.output() ? src.required(p + "self_attn.o_proj.bias", h) : null,
                    c.qkNorm() ? src.required(p + "self_attn.q_norm.weight", hd) : null,
                    c.qkNorm() ? src.required(p + "self_attn.k_norm.weight", hd) : null,
                    src.required(p + "post_attention_layernorm.weight", h),
                    src.required(p + "mlp.gate_proj.weight", ff, h),
                    src.required(p + "mlp.up_proj.weight", ff, h),
                    src.required(p + "mlp.down_proj.weight", h, ff),
                    b.mlp() ? src.required(p + "mlp.gate_proj.bias", ff) : null,
                    b.mlp() ? src.required(p + "mlp.up_proj.bias", ff) : null,
                    b.mlp() ? src.required(p + "mlp.down_proj.bias", h) : null));
        }
        Tensor finalNorm = src.required("model.norm.weight", h);
        // Tied embeddings use the embedding even where the checkpoint also holds an lm_head, as transformers and vLLM
        // do: the file's copy is ignored (it is the same matrix when saved from a tied model) and not stored twice.
        Tensor lmHead = src.optional("lm_head.weight", v, h);
        if (c.tieWordEmbeddings()) {
            lmHead = embedding;
        } else if (lmHead == null) {
            throw new EmberException(dir + ": tensor lm_head.weight is missing and config.json does not tie word embeddings");
        }
        src.requireAllUsed();
        return new Model(dir, c, embedding, layers, finalNorm, lmHead, arena);
    }
}
