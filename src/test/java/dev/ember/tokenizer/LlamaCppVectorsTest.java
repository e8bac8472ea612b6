package dev.ember.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * llama.cpp's tokenizer test vectors (texts and the ids HF's AutoTokenizer gave them, without special tokens),
 * for the families whose vocabulary they were made with: Qwen1.5's for Qwen2.5 and Qwen3, Llama 3's for Llama 3.2.
 * llama.cpp has none for Mistral's vocabulary (its SentencePiece vectors are Llama 2's).
 */
class LlamaCppVectorsTest {

    record Vector(String text, int[] ids) {
    }

    static List<Vector> vectors(String family) throws IOException {
        JsonNode root = new ObjectMapper().readTree(TokenizerFixtures.resources(family).resolve("llama.cpp-vectors.json").toFile());
        assertEquals(false, root.get("add_special_tokens").asBoolean(), "the vectors are made without special tokens");
        List<Vector> vectors = new ArrayList<>();
        for (JsonNode test : root.get("tests")) {
            int[] ids = new int[test.get("ids").size()];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = test.get("ids").get(i).intValue();
            }
            vectors.add(new Vector(test.get("text").asText(), ids));
        }
        return vectors;
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "qwen2_5", "llama3_2"})
    void everyTextEncodesToTheIdsHfGave(String family) throws IOException {
        Tokenizer tokenizer = TokenizerFixtures.tokenizer(family);
        List<Vector> vectors = vectors(family);
        List<String> mismatches = new ArrayList<>();
        for (Vector v : vectors) {
            int[] ids = tokenizer.encode(v.text(), false);
            if (!Arrays.equals(v.ids(), ids)) {
                mismatches.add(v.text() + ": expected " + Arrays.toString(v.ids()) + ", got " + Arrays.toString(ids));
            }
        }
        assertEquals(46, vectors.size());
        assertTrue(mismatches.isEmpty(), mismatches.size() + " of " + vectors.size() + " differ:\n" + String.join("\n", mismatches));
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "qwen2_5", "llama3_2"})
    void specialTokensAddOnlyTheBeginningOfSequence(String family) throws IOException {
        Tokenizer tokenizer = TokenizerFixtures.tokenizer(family);
        for (Vector v : vectors(family)) {
            int[] expected = tokenizer.bosTokenId().isPresent() ? prepend(tokenizer.bosTokenId().getAsInt(), v.ids()) : v.ids();
            assertArrayEquals(expected, tokenizer.encode(v.text()), v.text());
        }
    }

    /** Byte-level BPE loses nothing; Qwen's tokenizer NFC-normalizes first, so its round trip gives the NFC form. */
    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "qwen2_5", "llama3_2"})
    void theIdsDecodeBackToTheText(String family) throws IOException {
        Tokenizer tokenizer = TokenizerFixtures.tokenizer(family);
        for (Vector v : vectors(family)) {
            String expected = family.startsWith("qwen") ? Normalizer.normalize(v.text(), Normalizer.Form.NFC) : v.text();
            assertEquals(expected, tokenizer.decode(v.ids()), v.text());
        }
    }

    static int[] prepend(int first, int[] rest) {
        int[] all = new int[rest.length + 1];
        all[0] = first;
        System.arraycopy(rest, 0, all, 1, rest.length);
        return all;
    }
}
