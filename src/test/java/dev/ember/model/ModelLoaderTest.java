package dev.ember.model;

import dev.ember.EmberException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.*;

/** Loading real files: single and sharded, and every kind of bad input, each with a message naming the fault. */
class ModelLoaderTest {
    private static final ModelConfig CONFIG = new ModelConfig(Architecture.QWEN2, 32, 64, 2, 4, 2, 8, 50, 128, 1e-6,
            10000, new RopeScaling.None(), false, Biases.QKV, 0, 1, List.of(2), DType.BF16);

    @TempDir
    Path dir;

    private static String configJson(ModelConfig c) {
        return String.format(Locale.ROOT, """
                {"architectures":["%s"],"hidden_size":%d,"intermediate_size":%d,"num_hidden_layers":%d,
                 "num_attention_heads":%d,"num_key_value_heads":%d,"head_dim":%d,"vocab_size":%d,
                 "max_position_embeddings":%d,"rms_norm_eps":1e-6,"tie_word_embeddings":%b,"torch_dtype":"bfloat16"}""",
                c.architecture().hfName(), c.hiddenSize(), c.intermediateSize(), c.numLayers(), c.numHeads(),
                c.numKvHeads(), c.headDim(), c.vocabSize(), c.maxPositions(), c.tieWordEmbeddings());
    }

    private void writeModel(ModelConfig c) throws IOException {
        try (Model m = RandomWeights.create(c, DType.BF16, 5)) {
            Files.writeString(dir.resolve("config.json"), configJson(c));
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), m.tensors().toList());
        }
    }

    @Test
    void loadsWhatWasWrittenBitForBit() throws IOException {
        try (Model original = RandomWeights.create(CONFIG, DType.BF16, 5)) {
            Files.writeString(dir.resolve("config.json"), configJson(CONFIG));
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), original.tensors().toList());
            try (Model loaded = ModelLoader.load(dir)) {
                assertEquals(CONFIG.numLayers(), loaded.layers().size());
                assertNotNull(loaded.layers().get(1).bq(), "Qwen2 q bias");
                assertNotSame(loaded.embedding(), loaded.lmHead());
                Tensor a = original.layers().get(1).wDown();
                Tensor b = loaded.layers().get(1).wDown();
                assertArrayEquals(a.shape(), b.shape());
                assertEquals(-1, a.data().mismatch(b.data()), "tensor bytes differ");
            }
        }
    }

    /** Llama's attention_bias and mlp_bias: a bias on each of q, k, v, o, gate, up and down, read as written. */
    @Test
    void readsEveryBiasLlamasFlagsEnable() throws IOException {
        ModelConfig biased = new ModelConfig(Architecture.LLAMA, 32, 64, 2, 4, 2, 8, 50, 128, 1e-6,
                10000, new RopeScaling.None(), false, new Biases(true, true, true), 0, 1, List.of(2), DType.BF16);
        try (Model original = RandomWeights.create(biased, DType.BF16, 5)) {
            SafeTensorsWriter.writeModel(dir, original);
            try (Model loaded = ModelLoader.load(dir)) {
                assertEquals(biased, loaded.config());
                LayerWeights a = original.layers().get(1), b = loaded.layers().get(1);
                for (Tensor[] pair : new Tensor[][] {{a.bv(), b.bv()}, {a.bo(), b.bo()}, {a.bGate(), b.bGate()},
                        {a.bUp(), b.bUp()}, {a.bDown(), b.bDown()}}) {
                    assertEquals(pair[0].name(), pair[1].name());
                    assertEquals(-1, pair[0].data().mismatch(pair[1].data()), pair[0].name() + " differs");
                }
            }
        }
    }

    @Test
    void loadsShardedModelsThroughTheIndex() throws IOException {
        try (Model original = RandomWeights.create(CONFIG, DType.BF16, 6)) {
            Files.writeString(dir.resolve("config.json"), configJson(CONFIG));
            List<Tensor> all = original.tensors().toList();
            List<Tensor> first = all.subList(0, all.size() / 2);
            List<Tensor> second = all.subList(all.size() / 2, all.size());
            SafeTensorsWriter.write(dir.resolve("model-00001-of-00002.safetensors"), first);
            SafeTensorsWriter.write(dir.resolve("model-00002-of-00002.safetensors"), second);
            StringBuilder map = new StringBuilder();
            for (Tensor t : all) {
                map.append(map.isEmpty() ? "" : ",").append('"').append(t.name()).append("\":\"model-0000")
                        .append(first.contains(t) ? 1 : 2).append("-of-00002.safetensors\"");
            }
            Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\":{" + map + "}}");
            try (Model loaded = ModelLoader.load(dir)) {
                assertEquals(original.weightBytes(), loaded.weightBytes());
            }
            Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
            assertMessage(() -> ModelLoader.load(dir), "model-00002-of-00002.safetensors");
        }
    }

    @Test
    void missingDirectoryAndConfig() throws IOException {
        assertMessage(() -> ModelLoader.load(dir.resolve("nope")), "does not exist");
        assertMessage(() -> ModelLoader.load(dir), "config.json");
        Files.writeString(dir.resolve("config.json"), configJson(CONFIG));
        assertMessage(() -> ModelLoader.load(dir), "no *.safetensors");
        Files.writeString(dir.resolve("pytorch_model.bin"), "not read");
        assertMessage(() -> ModelLoader.load(dir), "it holds pytorch_model.bin: PyTorch's pickled weights");
    }

    @Test
    void truncatedTensorFileNamesTheTensor() throws IOException {
        writeModel(CONFIG);
        Path file = dir.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, java.util.Arrays.copyOf(bytes, bytes.length - 100));
        assertMessage(() -> ModelLoader.load(dir), "truncated");
        Files.write(file, java.util.Arrays.copyOf(bytes, 5));
        assertMessage(() -> ModelLoader.load(dir), "truncated");
    }

    /**
     * A header whose byte ranges overlap (o_proj's pointing at q_proj's bytes) is refused, naming both tensors, as the
     * reference reader refuses it; it used to load, o_proj silently computing with q_proj's weights.
     */
    @Test
    void overlappingTensorBytesAreRefusedByName() throws IOException {
        writeModel(CONFIG);
        Path file = dir.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(file);
        int headerLength = (int) java.nio.ByteBuffer.wrap(bytes, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var header = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(new String(bytes, 8, headerLength,
                java.nio.charset.StandardCharsets.UTF_8));
        // q_proj and o_proj are both [32, 32] here: o_proj's range made q_proj's.
        ((com.fasterxml.jackson.databind.node.ObjectNode) header.get("model.layers.0.self_attn.o_proj.weight"))
                .set("data_offsets", header.get("model.layers.0.self_attn.q_proj.weight").get("data_offsets").deepCopy());
        byte[] newHeader = json.writeValueAsString(header).getBytes(java.nio.charset.StandardCharsets.UTF_8);
        try (var out = Files.newOutputStream(file)) {
            out.write(java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(newHeader.length).array());
            out.write(newHeader);
            out.write(bytes, 8 + headerLength, bytes.length - 8 - headerLength);
        }
        assertMessage(() -> ModelLoader.load(dir), "overlaps");
        EmberException e = assertThrows(EmberException.class, () -> ModelLoader.load(dir));
        assertTrue(e.getMessage().contains("model.layers.0.self_attn.o_proj.weight")
                && e.getMessage().contains("model.layers.0.self_attn.q_proj.weight"), e.getMessage());
    }

    @Test
    void shapeMismatchNamesTensorAndShapes() throws IOException {
        writeModel(CONFIG);
        // Claim a larger intermediate size than the weights have.
        Files.writeString(dir.resolve("config.json"), configJson(CONFIG).replace("\"intermediate_size\":64", "\"intermediate_size\":65"));
        assertMessage(() -> ModelLoader.load(dir), "mlp.gate_proj.weight has shape [64, 32] but config.json implies [65, 32]");
    }

    @Test
    void unknownArchitectureAndDtype() throws IOException {
        writeModel(CONFIG);
        String good = configJson(CONFIG);
        Files.writeString(dir.resolve("config.json"), good.replace("Qwen2ForCausalLM", "FalconForCausalLM"));
        assertMessage(() -> ModelLoader.load(dir), "FalconForCausalLM");
        Files.writeString(dir.resolve("config.json"), good);
        Path file = dir.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(file);
        String text = new String(bytes, java.nio.charset.StandardCharsets.ISO_8859_1).replaceFirst("\"BF16\"", "\"I8\"  ");
        Files.write(file, text.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        assertMessage(() -> ModelLoader.load(dir), "unsupported dtype I8");
    }

    @Test
    void missingTensorIsNamed() throws IOException {
        try (Model original = RandomWeights.create(CONFIG, DType.BF16, 5)) {
            Files.writeString(dir.resolve("config.json"), configJson(CONFIG));
            List<Tensor> some = new ArrayList<>(original.tensors().toList());
            some.removeIf(t -> t.name().equals("model.layers.1.self_attn.k_proj.bias"));
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), some);
            assertMessage(() -> ModelLoader.load(dir), "model.layers.1.self_attn.k_proj.bias is missing");
        }
    }

    /** Tied embeddings take the embedding even where the file also holds an lm_head, as transformers and vLLM do. */
    @Test
    void tiedEmbeddingsIgnoreTheCheckpointsOwnLmHead() throws IOException {
        ModelConfig tied = new ModelConfig(Architecture.QWEN2, 32, 64, 2, 4, 2, 8, 50, 128, 1e-6,
                10000, new RopeScaling.None(), true, Biases.QKV, 0, 1, List.of(2), DType.BF16);
        try (Model original = RandomWeights.create(tied, DType.BF16, 5);
             Model other = RandomWeights.create(CONFIG, DType.BF16, 6)) {
            List<Tensor> withHead = new ArrayList<>(original.tensors().toList());
            withHead.add(other.lmHead());
            Files.writeString(dir.resolve("config.json"), configJson(tied));
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), withHead);
            try (Model loaded = ModelLoader.load(dir)) {
                assertSame(loaded.embedding(), loaded.lmHead());
                assertEquals(-1, original.embedding().data().mismatch(loaded.lmHead().data()), "lm_head is not the embedding");
                assertEquals(original.weightBytes(), loaded.weightBytes(), "the tied matrix is counted once");
            }
        }
    }

    /**
     * A checkpoint with weights its config does not account for (a third layer under a two-layer config, an o_proj
     * bias) is refused, naming them; a rotary frequency table, which older checkpoints carry, is not a weight, and
     * Mistral's consolidated.safetensors beside HF's files is not read.
     */
    @Test
    void tensorsTheConfigDoesNotAccountForAreRefusedByName() throws IOException {
        ModelConfig threeLayers = new ModelConfig(Architecture.QWEN2, 32, 64, 3, 4, 2, 8, 50, 128, 1e-6,
                10000, new RopeScaling.None(), false, Biases.QKV, 0, 1, List.of(2), DType.BF16);
        try (Model deeper = RandomWeights.create(threeLayers, DType.BF16, 5)) {
            Files.writeString(dir.resolve("config.json"), configJson(CONFIG));
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), deeper.tensors().toList());
            assertMessage(() -> ModelLoader.load(dir), "tensors that this architecture's config.json does not account for, "
                    + "e.g. model.layers.2.input_layernorm.weight");
            Tensor norm = deeper.finalNorm();
            List<Tensor> withExtras = new ArrayList<>(deeper.tensors().filter(t -> !t.name().startsWith("model.layers.2.")).toList());
            withExtras.add(new Tensor("model.layers.0.self_attn.rotary_emb.inv_freq", norm.dtype(), norm.shape(), norm.data()));
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), withExtras);
            try (Model loaded = ModelLoader.load(dir)) {
                assertEquals(CONFIG.numLayers(), loaded.layers().size());
            }
            // Mistral's own copy of the weights beside HF's files is not read.
            Files.delete(dir.resolve("model.safetensors"));
            SafeTensorsWriter.write(dir.resolve("model-00001-of-00001.safetensors"), withExtras);
            SafeTensorsWriter.write(dir.resolve("consolidated.safetensors"),
                    List.of(new Tensor("layers.0.attention.wq.weight", norm.dtype(), norm.shape(), norm.data())));
            try (Model loaded = ModelLoader.load(dir)) {
                assertEquals(CONFIG.numLayers(), loaded.layers().size());
            }
            Files.delete(dir.resolve("model-00001-of-00001.safetensors"));
            Files.delete(dir.resolve("consolidated.safetensors"));
            withExtras.add(new Tensor("model.layers.1.self_attn.o_proj.bias", norm.dtype(), norm.shape(), norm.data()));
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), withExtras);
            assertMessage(() -> ModelLoader.load(dir), "1 tensor that this architecture's config.json does not account for, "
                    + "e.g. model.layers.1.self_attn.o_proj.bias");
        }
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable load, String expected) {
        EmberException e = assertThrows(EmberException.class, load);
        assertTrue(e.getMessage().contains(expected), "message \"" + e.getMessage() + "\" lacks \"" + expected + "\"");
    }
}
