package dev.ember.tokenizer;

import dev.ember.EmberException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad model directories and bad ids: each error is an EmberException that names the file and the fault. */
class TokenizerErrorsTest {

    private static void assertFails(Path dir, String... expectedParts) {
        EmberException e = assertThrows(EmberException.class, () -> Tokenizer.load(dir).close());
        for (String part : expectedParts) {
            assertTrue(e.getMessage().contains(part), () -> "\"" + part + "\" missing from: " + e.getMessage());
        }
    }

    @Test
    void missingTokenizerJson(@TempDir Path dir) {
        assertFails(dir, dir.resolve("tokenizer.json").toString(), "not found");
        assertFails(dir.resolve("no-such-model"), "no-such-model", "tokenizer.json", "not found");
    }

    @Test
    void corruptTokenizerJson(@TempDir Path dir) throws IOException {
        byte[] real = Files.readAllBytes(TokenizerFixtures.directory("mistral").resolve("tokenizer.json"));
        Files.write(dir.resolve("tokenizer.json"), java.util.Arrays.copyOf(real, real.length / 2));
        assertFails(dir, dir.resolve("tokenizer.json").toString(), "not valid JSON");

        Files.writeString(dir.resolve("tokenizer.json"), "[1, 2]");
        assertFails(dir, "tokenizer.json", "not a JSON object");
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"type\": \"BPE\"}}");
        assertFails(dir, "tokenizer.json", "model.vocab is missing");
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"type\": \"Quantum\", \"vocab\": {}}}");
        assertFails(dir, "tokenizer.json", "Quantum");
    }

    /** Well-formed JSON that the Rust library itself refuses: a merge of tokens the vocabulary lacks. */
    @Test
    void tokenizerJsonTheNativeLibraryRejects(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), """
                {"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null, "post_processor": null,
                 "decoder": null, "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a zzz"]}}""");
        assertFails(dir, dir.resolve("tokenizer.json").toString(), "HF tokenizers library cannot load it");
    }

    /** Writes {@code content} as the model directory's {@code file}, then expects loading to fail naming it. */
    private static void assertFailsWith(Path dir, String file, String content, String... expectedParts) throws IOException {
        Files.writeString(dir.resolve(file), content);
        String[] parts = java.util.Arrays.copyOf(expectedParts, expectedParts.length + 1);
        parts[expectedParts.length] = dir.resolve(file).toString();
        assertFails(dir, parts);
    }

    @Test
    void badTokenizerConfig(@TempDir Path dir) throws IOException {
        TokenizerFixtures.copyOf("mistral", dir);
        String config = "tokenizer_config.json";
        assertFailsWith(dir, config, "{\"eos_token\": ", "not valid JSON");
        assertFailsWith(dir, config, "{\"eos_token\": \"<|no_such_token|>\"}", "eos_token", "<|no_such_token|>");
        assertFailsWith(dir, config, "{\"bos_token\": 7}", "bos_token");
        assertFailsWith(dir, config, "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}]}", "default");
    }

    @Test
    void badGenerationConfig(@TempDir Path dir) throws IOException {
        TokenizerFixtures.copyOf("mistral", dir);
        assertFailsWith(dir, "generation_config.json", "{\"eos_token_id\": [2, 32000]}", "32000");
        assertFailsWith(dir, "generation_config.json", "{\"eos_token_id\": \"two\"}", "two");
    }

    @Test
    void textThatIsNotUnicode() {
        Tokenizer qwen = TokenizerFixtures.tokenizer("qwen2_5");
        for (String bad : new String[]{"a\uD800b", "ends with \uDBFF", "\uDC00 starts"}) {
            EmberException e = assertThrows(EmberException.class, () -> qwen.encode(bad));
            assertTrue(e.getMessage().contains("unpaired UTF-16 surrogate"), e.getMessage());
        }
        assertTrue(qwen.decode(qwen.encode("a\u0000\uD83E\uDD99")).equals("a\u0000\uD83E\uDD99"), "NUL and a surrogate pair are fine");
    }

    @Test
    void idsOutsideTheVocabulary() {
        Tokenizer qwen = TokenizerFixtures.tokenizer("qwen2_5");
        for (int bad : new int[]{-1, qwen.vocabSize(), Integer.MAX_VALUE}) {
            EmberException decode = assertThrows(EmberException.class, () -> qwen.decode(new int[]{9707, bad}));
            assertTrue(decode.getMessage().contains(String.valueOf(bad)) && decode.getMessage().contains("tokenizer.json"), decode.getMessage());
            EmberException text = assertThrows(EmberException.class, () -> qwen.tokenText(bad));
            assertTrue(text.getMessage().contains(String.valueOf(bad)), text.getMessage());
        }
    }
}
