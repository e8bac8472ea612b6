package dev.ember.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class ModelConfigTest {
    private static ModelConfig parse(String json) throws Exception {
        return ModelConfig.parse(new ObjectMapper().readTree(json));
    }

    @Test
    void readsLlama31WithRopeScaling() throws Exception {
        ModelConfig c = parse("""
                {"architectures":["LlamaForCausalLM"],"hidden_size":4096,"intermediate_size":14336,
                 "num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":128256,
                 "rms_norm_eps":1e-5,"rope_theta":500000.0,"torch_dtype":"bfloat16","eos_token_id":[128001,128008,128009],
                 "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
                 "original_max_position_embeddings":8192,"rope_type":"llama3"}}""");
        assertEquals(Architecture.LLAMA, c.architecture());
        assertEquals(128, c.headDim());
        assertEquals(1024, c.kvDim());
        assertEquals(new RopeScaling.Llama3(8, 1, 4, 8192), c.ropeScaling());
        assertEquals(3, c.eosTokenIds().size());
        assertEquals(Biases.NONE, c.biases());
    }

    @Test
    void qwen2HasBiasAndQwen3HasQkNorm() throws Exception {
        String body = "\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100";
        assertEquals(Biases.QKV, parse("{\"architectures\":[\"Qwen2ForCausalLM\"]," + body + "}").biases());
        assertTrue(parse("{\"architectures\":[\"Qwen3ForCausalLM\"]," + body + "}").qkNorm());
    }

    @Test
    void biasesFollowEachFamilysFlagsAsTransformersReadsThem() throws Exception {
        String body = "\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100,"
                + "\"attention_bias\":true,\"mlp_bias\":true";
        // Llama: q, k, v and o with attention_bias, gate, up and down with mlp_bias; Qwen3 reads only attention_bias;
        // Qwen2 always has q/k/v biases and Mistral none, whatever the flags say.
        ModelConfig llama = parse("{\"architectures\":[\"LlamaForCausalLM\"]," + body + "}");
        assertEquals(new Biases(true, true, true), llama.biases());
        assertEquals(Biases.ATTENTION, parse("{\"architectures\":[\"Qwen3ForCausalLM\"]," + body + "}").biases());
        assertEquals(Biases.QKV, parse("{\"architectures\":[\"Qwen2ForCausalLM\"]," + body + "}").biases());
        assertEquals(Biases.NONE, parse("{\"architectures\":[\"MistralForCausalLM\"]," + body + "}").biases());
        assertEquals(new Biases(false, false, true), parse("{\"architectures\":[\"LlamaForCausalLM\"],"
                + body.replace("\"attention_bias\":true", "\"attention_bias\":false") + "}").biases());
        assertEquals(llama, ModelConfig.parse(new ObjectMapper().readTree(llama.toJson())), "written and read back");
        // A combination no family's code builds is refused by name.
        EmberException e = assertThrows(EmberException.class, () -> new ModelConfig(Architecture.LLAMA, 64, 128, 2, 4, 4, 16, 100,
                512, 1e-6, 10000, new RopeScaling.None(), false, Biases.QKV, 0, 1, java.util.List.of(2), DType.F32));
        assertTrue(e.getMessage().contains("LlamaForCausalLM") && e.getMessage().contains("attention_bias"), e.getMessage());
    }

    /** Fields a hand-written config leaves out take the defaults of the family's transformers config class. */
    @Test
    void leftOutFieldsTakeEachFamilysTransformersDefaults() throws Exception {
        String body = "\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100";
        ModelConfig llama = parse("{\"architectures\":[\"LlamaForCausalLM\"]," + body + "}");
        assertEquals(2048, llama.maxPositions());
        assertEquals(16, llama.headDim(), "hidden / heads");
        ModelConfig qwen3 = parse("{\"architectures\":[\"Qwen3ForCausalLM\"]," + body + "}");
        assertEquals(128, qwen3.headDim(), "Qwen3Config's head_dim");
        assertEquals(32768, qwen3.maxPositions());
        ModelConfig mistral = parse("{\"architectures\":[\"MistralForCausalLM\"]," + body + "}");
        assertEquals(4096, mistral.slidingWindow(), "MistralConfig's window where the key is left out");
        assertEquals(131072, mistral.maxPositions());
        assertEquals(0, parse("{\"architectures\":[\"MistralForCausalLM\"],\"sliding_window\":null," + body + "}").slidingWindow(),
                "null is no window");
        assertEquals(4096, parse("{\"architectures\":[\"Qwen2ForCausalLM\"],\"use_sliding_window\":true,\"max_window_layers\":0,"
                + body + "}").slidingWindow());
        ModelConfig unwindowed = parse("{\"architectures\":[\"MistralForCausalLM\"],\"sliding_window\":null," + body + "}");
        assertEquals(unwindowed, ModelConfig.parse(new ObjectMapper().readTree(unwindowed.toJson())), "no window, written and read back");
    }

    /** A config without architectures names its family by model_type, as transformers' AutoConfig reads it. */
    @Test
    void aConfigWithoutArchitecturesIsReadByItsModelType() throws Exception {
        String body = "\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100";
        assertEquals(Architecture.QWEN3, parse("{\"model_type\":\"qwen3\"," + body + "}").architecture());
        assertEquals(Architecture.LLAMA, parse("{\"model_type\":\"llama\",\"hidden_act\":\"swish\"," + body + "}").architecture(),
                "swish is transformers' other name for silu");
        assertEquals(Architecture.LLAMA, parse("{\"architectures\":[],\"model_type\":\"llama\"," + body + "}").architecture());
        assertEquals(Architecture.LLAMA, parse("{\"architectures\":[\"LLaMAForCausalLM\"]," + body + "}").architecture(),
                "the first conversions' spelling");
        EmberException gpt2 = assertThrows(EmberException.class, () -> parse("{\"model_type\":\"gpt2\"," + body + "}"));
        assertTrue(gpt2.getMessage().contains("\"gpt2\"") && gpt2.getMessage().contains("qwen3"), gpt2.getMessage());
        EmberException neither = assertThrows(EmberException.class, () -> parse("{" + body + "}"));
        assertTrue(neither.getMessage().contains("architectures"), neither.getMessage());
        assertTrue(parse("{\"model_type\":\"mistral\"," + body + "}").toJson().contains("\"model_type\" : \"mistral\""),
                "written for transformers' AutoConfig");
    }

    @Test
    void unknownArchitectureNamesItself() {
        EmberException e = assertThrows(EmberException.class, () -> parse("""
                {"architectures":["GPT2LMHeadModel"],"hidden_size":64}"""));
        assertTrue(e.getMessage().contains("GPT2LMHeadModel"), e.getMessage());
    }

    @Test
    void readsQwen3WithYarnAsItsModelCardConfiguresIt() throws Exception {
        String body = """
                "architectures":["Qwen3ForCausalLM"],"hidden_size":1024,"intermediate_size":3072,"num_hidden_layers":28,
                "num_attention_heads":16,"num_key_value_heads":8,"head_dim":128,"vocab_size":151936,
                "max_position_embeddings":40960,"rope_theta":1000000.0,""";
        ModelConfig c = parse("{" + body + """
                "rope_scaling":{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":32768}}""");
        double attention = 0.1 * Math.log(4) + 1;
        assertEquals(new RopeScaling.Yarn(4, 32768, 32, 1, true, attention), c.ropeScaling());
        assertEquals(attention * attention / Math.sqrt(128), c.attentionScale(), 1e-7);
        assertEquals(131_072, c.maxPositions(), "the original context stretched by the factor, as vLLM reads it");
        // transformers 5's rope_parameters, an explicit attention factor, and a factor left to the ratio of the contexts.
        ModelConfig v5 = parse("{" + body + """
                "rope_parameters":{"rope_type":"yarn","rope_theta":1000000.0,"original_max_position_embeddings":10240,
                "attention_factor":1.5,"beta_fast":16,"truncate":false}}""");
        assertEquals(new RopeScaling.Yarn(4, 10240, 16, 1, false, 1.5), v5.ropeScaling());
        assertEquals(1e6, v5.ropeTheta());
        // DeepSeek's mscale and mscale_all_dim: equal, they cancel.
        ModelConfig deepSeek = parse("{" + body + """
                "rope_scaling":{"type":"yarn","factor":40,"original_max_position_embeddings":4096,"mscale":1.0,"mscale_all_dim":1.0}}""");
        assertEquals(1.0, deepSeek.ropeScaling().attentionFactor(), 1e-12);
        assertEquals(c, ModelConfig.parse(new ObjectMapper().readTree(c.toJson())), "written and read back");
    }

    @Test
    void yarnFrequenciesMatchReferenceValues() {
        // HF transformers' _compute_yarn_parameters (fp32) for Qwen3's settings: the ramp runs over pairs 23-40.
        double[] inv = new RopeScaling.Yarn(4, 32768, 32, 1, true, 1).inverseFrequencies(128, 1e6);
        double[][] expected = {{0, 1.0}, {10, 0.11547820270061493}, {20, 0.01333521492779255}, {25, 0.004131738096475601},
                {30, 0.001064361073076725}, {40, 4.4456985051510856e-05}, {50, 5.133812464919174e-06}, {63, 3.102344408034696e-07}};
        for (double[] e : expected) {
            assertEquals(e[1], inv[(int) e[0]], 1e-6 * e[1], "pair " + (int) e[0]);
        }
        // Without truncation the ramp's ends stay fractional (10.47 and 22.51 here).
        double[] untruncated = new RopeScaling.Yarn(8, 4096, 32, 1, false, 1).inverseFrequencies(64, 10000);
        double[][] expectedUntruncated = {{0, 1.0}, {5, 0.23713739216327667}, {10, 0.05623412877321243},
                {15, 0.008947668597102165}, {20, 0.0009728576405905187}, {31, 1.666901880525984e-05}};
        for (double[] e : expectedUntruncated) {
            assertEquals(e[1], untruncated[(int) e[0]], 1e-6 * e[1], "untruncated pair " + (int) e[0]);
        }
    }

    /**
     * Dynamic NTK scaling computes transformers' plain frequencies within the original context, which stays the model's
     * (its 4.x "type" and 5.x "rope_parameters" spellings alike).
     */
    @Test
    void dynamicScalingKeepsThePlainFrequenciesWithinTheOriginalContext() throws Exception {
        String body = "\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
                + "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100,\"max_position_embeddings\":2048";
        ModelConfig v4 = parse("{" + body + ",\"rope_theta\":10000,\"rope_scaling\":{\"type\":\"dynamic\",\"factor\":4.0}}");
        ModelConfig v5 = parse("{" + body + ",\"rope_parameters\":{\"rope_type\":\"dynamic\",\"factor\":4.0,\"rope_theta\":10000}}");
        assertEquals(new RopeScaling.Dynamic(4), v4.ropeScaling());
        assertEquals(v4, v5);
        assertEquals(2048, v4.maxPositions(), "the original context");
        assertArrayEquals(new RopeScaling.None().inverseFrequencies(16, 10000), v4.ropeScaling().inverseFrequencies(16, 10000));
        assertEquals(v4, ModelConfig.parse(new ObjectMapper().readTree(v4.toJson())), "written and read back");
    }

    @Test
    void partialRotaryUnknownScalingsAndQuantizedCheckpointsAreRefusedByName() {
        String body = "\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
                + "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100";
        EmberException partial = assertThrows(EmberException.class, () -> parse("{" + body + ",\"partial_rotary_factor\":0.5}"));
        assertTrue(partial.getMessage().contains("partial_rotary_factor"), partial.getMessage());
        EmberException longRope = assertThrows(EmberException.class,
                () -> parse("{" + body + ",\"rope_scaling\":{\"rope_type\":\"longrope\",\"factor\":2.0}}"));
        assertTrue(longRope.getMessage().contains("\"longrope\"") && longRope.getMessage().contains("yarn"), longRope.getMessage());
        EmberException quantized = assertThrows(EmberException.class,
                () -> parse("{" + body + ",\"quantization_config\":{\"quant_method\":\"fp8\",\"activation_scheme\":\"dynamic\"}}"));
        assertTrue(quantized.getMessage().contains("quantization_config (fp8) is not supported"), quantized.getMessage());
    }

    /**
     * A rope_scaling without the keys its type requires is refused by name, as transformers' rope validation refuses it
     * (KeyError): read as 0, a missing linear factor made every frequency infinite (NaN logits), and a llama3 scaling
     * without its low/high factors and original context silently ran unscaled.
     */
    @Test
    void ropeScalingsWithoutTheirRequiredKeysAreRefusedByName() {
        String body = "\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
                + "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100";
        EmberException linear = assertThrows(EmberException.class, () -> parse("{" + body + ",\"rope_scaling\":{\"rope_type\":\"linear\"}}"));
        assertTrue(linear.getMessage().contains("\"linear\"") && linear.getMessage().contains("\"factor\""), linear.getMessage());
        EmberException dynamic = assertThrows(EmberException.class,
                () -> parse("{" + body + ",\"rope_scaling\":{\"type\":\"dynamic\",\"factor\":null}}"));
        assertTrue(dynamic.getMessage().contains("\"factor\""), dynamic.getMessage());
        EmberException llama3 = assertThrows(EmberException.class,
                () -> parse("{" + body + ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0}}"));
        assertTrue(llama3.getMessage().contains("low_freq_factor"), llama3.getMessage());
        EmberException original = assertThrows(EmberException.class, () -> parse("{" + body + ",\"rope_parameters\":{\"rope_type\":"
                + "\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"rope_theta\":500000}}"));
        assertTrue(original.getMessage().contains("original_max_position_embeddings"), original.getMessage());
        EmberException negative = assertThrows(EmberException.class,
                () -> parse("{" + body + ",\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":-2}}"));
        assertTrue(negative.getMessage().contains("positive factor"), negative.getMessage());
    }

    @Test
    void slidingWindowsAreReadPerLayerAsTransformersLaysThemOut() throws Exception {
        String qwen2 = "\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
                + "\"num_hidden_layers\":4,\"num_attention_heads\":4,\"vocab_size\":100,\"sliding_window\":32";
        assertEquals(0, parse("{" + qwen2 + "}").slidingWindow(), "use_sliding_window unset");
        assertEquals(0, parse("{" + qwen2 + ",\"use_sliding_window\":true}").slidingWindow(), "the default 28 full layers");
        assertEquals(32, parse("{" + qwen2 + ",\"use_sliding_window\":true,\"max_window_layers\":0}").slidingWindow());
        assertEquals(0, parse("{" + qwen2 + ",\"use_sliding_window\":true,\"max_window_layers\":4}").slidingWindow());
        EmberException mixed = assertThrows(EmberException.class,
                () -> parse("{" + qwen2 + ",\"use_sliding_window\":true,\"max_window_layers\":2}"));
        assertTrue(mixed.getMessage().contains("2 of 4 layers"), mixed.getMessage());
        assertEquals(32, parse("{" + qwen2 + ",\"use_sliding_window\":true,\"layer_types\":[\"sliding_attention\","
                + "\"sliding_attention\",\"sliding_attention\",\"sliding_attention\"]}").slidingWindow());
        String mistral = qwen2.replace("Qwen2ForCausalLM", "MistralForCausalLM");
        assertEquals(32, parse("{" + mistral + "}").slidingWindow(), "Mistral slides in every layer");
    }

    @Test
    void llama3ScalingMatchesReferenceValues() {
        // Values from HF transformers' _compute_llama3_parameters for Llama 3.1 (head_dim 128, theta 500000).
        double[] inv = new RopeScaling.Llama3(8, 1, 4, 8192).inverseFrequencies(128, 500000);
        assertEquals(1.0, inv[0], 1e-12);
        double plain = 1.0 / Math.pow(500000, 126.0 / 128);
        assertEquals(plain / 8, inv[63], 1e-18);
    }
}
