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
        assertFalse(c.qkvBias());
    }

    @Test
    void qwen2HasBiasAndQwen3HasQkNorm() throws Exception {
        String body = "\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100";
        assertTrue(parse("{\"architectures\":[\"Qwen2ForCausalLM\"]," + body + "}").qkvBias());
        assertTrue(parse("{\"architectures\":[\"Qwen3ForCausalLM\"]," + body + "}").qkNorm());
    }

    @Test
    void unknownArchitectureNamesItself() {
        EmberException e = assertThrows(EmberException.class, () -> parse("""
                {"architectures":["GPT2LMHeadModel"],"hidden_size":64}"""));
        assertTrue(e.getMessage().contains("GPT2LMHeadModel"), e.getMessage());
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
