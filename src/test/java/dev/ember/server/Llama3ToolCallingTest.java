package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.model.RopeScaling;
import dev.ember.tokenizer.TokenizerFixtures;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Tool calling with Llama 3.2's tokenizer and chat template, which teach calls as a bare JSON object with "parameters"
 * (vLLM's llama3_json): a required call on a random-weight model is well formed and read back in OpenAI's shape.
 */
class Llama3ToolCallingTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ModelConfig CONFIG = new ModelConfig(Architecture.LLAMA, 32, 64, 1, 2, 1, 16, 128256, 4096,
            1e-5, 500000, new RopeScaling.None(), true, Biases.NONE, 0, 128000, List.of(128001, 128008, 128009), DType.BF16);

    @Test
    void aRequiredCallIsWrittenAsLlama3sJsonAndReadBack() throws Exception {
        try (RandomModelServer served = RandomModelServer.start(CONFIG, 8, TokenizerFixtures.tokenizer("llama3_2"), "llama-random")) {
            for (int seed = 0; seed < 2; seed++) {
                ObjectNode body = JSON.createObjectNode().put("max_tokens", 120).put("temperature", 1.0).put("seed", seed)
                        .put("tool_choice", "required");
                body.putArray("messages").addObject().put("role", "user").put("content", "Weather in Oslo?");
                body.set("tools", JSON.readTree(ToolCallingTest.TOOLS));
                HttpResponse<String> response = OpenAiServerTest.postTo(served.url("/v1/chat/completions"), body.toString());
                assertEquals(200, response.statusCode(), response.body());
                JsonNode choice = JSON.readTree(response.body()).at("/choices/0");
                assertEquals("tool_calls", choice.get("finish_reason").asText(), choice.toString());
                ToolCallingTest.assertWellFormedCall(choice.at("/message/tool_calls/0"), Set.of("weather", "time"));
            }
        }
    }
}
