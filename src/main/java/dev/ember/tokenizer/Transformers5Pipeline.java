package dev.ember.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Set;

/**
 * transformers 5 does not run every tokenizer.json as written: a tokenizer class with a constructor of its own
 * rebuilds the pipeline from the file's vocabulary and merges, keeping only its post-processor. For
 * {@code Qwen2Tokenizer} the rebuilt pipeline is the file's; for {@code LlamaTokenizer} (Llama 2, Mistral 7B and their
 * kin) it is not. Their files carry the SentencePiece-era normalizer, which puts {@code ▁} before the text and turns
 * every space into {@code ▁}, so {@code " Hello"} becomes {@code ▁▁Hello}; transformers 5 replaces it with a Metaspace
 * pre-tokenizer that adds the {@code ▁} only where the text does not already start with a space ({@code ▁Hello}).
 * This class makes the same substitution, so that {@link Tokenizer#encode} gives what {@code tokenizer(text)} of
 * transformers 5 gives (checked against transformers 5.17).
 */
final class Transformers5Pipeline {

    private static final Set<String> LLAMA_CLASSES = Set.of("LlamaTokenizer", "LlamaTokenizerFast");
    private static final ObjectMapper JSON = new ObjectMapper();

    private Transformers5Pipeline() {
    }

    /** The tokenizer.json transformers 5 effectively runs for the tokenizer class tokenizer_config.json names. */
    static byte[] adapt(byte[] tokenizerJson, JsonNode tokenizerConfig, Path file) {
        if (!LLAMA_CLASSES.contains(tokenizerConfig.path("tokenizer_class").asText())) {
            return tokenizerJson;
        }
        ObjectNode root = (ObjectNode) Tokenizer.parse(file, tokenizerJson);
        if (!"BPE".equals(root.path("model").path("type").asText())) {
            return tokenizerJson;   // transformers would convert other models first; run those as written
        }
        // LlamaTokenizer.__init__ of transformers 5: add_prefix_space defaults to true and legacy to false; a legacy
        // tokenizer prepends ▁ to every piece of text between special tokens, a current one only to the first.
        boolean addPrefixSpace = tokenizerConfig.path("add_prefix_space").asBoolean(true);
        boolean legacy = tokenizerConfig.path("legacy").asBoolean(false);
        String prependScheme = !addPrefixSpace ? "never" : legacy ? "always" : "first";

        ObjectNode model = (ObjectNode) root.get("model");
        model.put("fuse_unk", true);
        model.put("byte_fallback", true);
        root.putNull("normalizer");
        root.putObject("pre_tokenizer")
                .put("type", "Metaspace").put("replacement", "▁").put("prepend_scheme", prependScheme).put("split", false);
        ObjectNode decoder = JSON.createObjectNode().put("type", "Sequence");
        ArrayNode steps = decoder.putArray("decoders");
        steps.addObject().put("type", "Replace").put("content", " ").putObject("pattern").put("String", "▁");
        steps.addObject().put("type", "ByteFallback");
        steps.addObject().put("type", "Fuse");
        if (addPrefixSpace) {
            steps.addObject().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0);
        }
        root.set("decoder", decoder);
        try {
            return JSON.writeValueAsBytes(root);
        } catch (IOException e) {
            throw new AssertionError("a JSON tree always serializes", e);
        }
    }
}
