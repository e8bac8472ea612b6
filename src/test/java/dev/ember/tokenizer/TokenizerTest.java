package dev.ember.tokenizer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TokenizerTest {

    static final List<String> FAMILIES = TokenizerFixtures.FAMILIES;

    /**
     * Byte-level BPE loses nothing, and Qwen only normalizes to NFC first. Mistral, as transformers 5 runs it, loses
     * one leading space: " Hello" and "Hello" both become ▁Hello, whose decoding drops the ▁ of the first word.
     */
    @ParameterizedTest
    @FieldSource("FAMILIES")
    void randomMultilingualTextRoundTrips(String family) {
        Tokenizer tokenizer = TokenizerFixtures.tokenizer(family);
        SplittableRandom random = new SplittableRandom(family.hashCode());
        for (int i = 0; i < 300; i++) {
            String text = RandomText.next(random, 1 + random.nextInt(12));
            String expected = switch (family) {
                case "qwen3", "qwen2_5" -> Normalizer.normalize(text, Normalizer.Form.NFC);
                case "mistral" -> text.startsWith(" ") ? text.substring(1) : text;
                default -> text;
            };
            int[] ids = tokenizer.encode(text, false);
            assertEquals(expected, tokenizer.decode(ids), () -> "ids " + Arrays.toString(ids));
            assertEquals(expected, tokenizer.decode(tokenizer.encode(text), true), "with special tokens added, then skipped");
        }
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void specialTokensAreTheBeginningOfSequenceAlone(String family) {
        Tokenizer tokenizer = TokenizerFixtures.tokenizer(family);
        SplittableRandom random = new SplittableRandom(7 * family.hashCode());
        for (int i = 0; i < 50; i++) {
            String text = RandomText.next(random, 1 + random.nextInt(8));
            int[] plain = tokenizer.encode(text, false);
            OptionalInt bos = tokenizer.bosTokenId();
            int[] expected = bos.isPresent() ? LlamaCppVectorsTest.prepend(bos.getAsInt(), plain) : plain;
            assertArrayEquals(expected, tokenizer.encode(text), text);
        }
    }

    /** Facts about these vocabularies that every user of the models knows, checked against what was loaded. */
    @Test
    void knownTokensSizesAndStops() {
        Tokenizer qwen3 = TokenizerFixtures.tokenizer("qwen3");
        assertEquals(151669, qwen3.vocabSize());
        assertEquals("<|im_end|>", qwen3.tokenText(151645));
        assertEquals("<|endoftext|>", qwen3.tokenText(151643));
        assertEquals("<think>", qwen3.tokenText(151667));
        assertEquals(Set.of(151645), qwen3.stopTokenIds());
        assertEquals(OptionalInt.empty(), qwen3.bosTokenId());

        Tokenizer qwen25 = TokenizerFixtures.tokenizer("qwen2_5");
        assertEquals(151665, qwen25.vocabSize());
        assertEquals(Set.of(151645), qwen25.stopTokenIds());

        Tokenizer llama = TokenizerFixtures.tokenizer("llama3_2");
        assertEquals(128256, llama.vocabSize());
        assertEquals("<|begin_of_text|>", llama.tokenText(128000));
        assertEquals(OptionalInt.of(128000), llama.bosTokenId());
        assertEquals(Set.of(128009), llama.stopTokenIds());
        assertEquals("<|eot_id|>", llama.tokenText(128009));

        Tokenizer mistral = TokenizerFixtures.tokenizer("mistral");
        assertEquals(32000, mistral.vocabSize());
        assertEquals(OptionalInt.of(1), mistral.bosTokenId());
        assertEquals(Set.of(2), mistral.stopTokenIds());
        assertEquals("<0x0A>", mistral.tokenText(13));
        assertArrayEquals(new int[]{1, 22557, 1526}, mistral.encode("Hello world"));
        assertEquals("▁Hello", mistral.tokenText(22557));
    }

    /**
     * Mistral's tokenizer.json still says what SentencePiece did (▁ before the text, so " Hello" is ▁ ▁Hello);
     * transformers 5 runs a LlamaTokenizer with a Metaspace pre-tokenizer instead (" Hello" is ▁Hello), and so does
     * this tokenizer, unless tokenizer_config.json names no tokenizer class.
     */
    @Test
    void mistralTreatsLeadingSpacesAsTransformers5Does(@TempDir Path dir) throws IOException {
        Tokenizer mistral = TokenizerFixtures.tokenizer("mistral");
        assertArrayEquals(new int[]{22557}, mistral.encode(" Hello", false));
        assertArrayEquals(new int[]{28705, 22557}, mistral.encode("  Hello", false));
        assertEquals("<s> Hello world", mistral.decode(new int[]{1, 22557, 1526}));
        assertEquals("Hello world", mistral.decode(new int[]{1, 22557, 1526}, true));
        assertEquals(" two spaces", mistral.decode(mistral.encode("  two spaces", false)));

        Files.copy(TokenizerFixtures.directory("mistral").resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        try (Tokenizer asWritten = Tokenizer.load(dir)) {
            assertArrayEquals(new int[]{28705, 22557}, asWritten.encode(" Hello", false));
            assertEquals(" Hello", asWritten.decode(asWritten.encode(" Hello", false)));
        }
    }

    /** generation_config.json's eos_token_id, one id or a list (Llama 3 lists three), joins tokenizer_config's. */
    @Test
    void generationConfigAddsItsEndOfSequenceIds(@TempDir Path dir) throws IOException {
        TokenizerFixtures.copyOf("mistral", dir);
        Files.writeString(dir.resolve("generation_config.json"), "{\"bos_token_id\": 1, \"eos_token_id\": [31999, 17, 2]}");
        try (Tokenizer tokenizer = Tokenizer.load(dir)) {
            assertEquals(Set.of(2, 31999, 17), tokenizer.stopTokenIds());
        }
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": 5}");
        try (Tokenizer tokenizer = Tokenizer.load(dir)) {
            assertEquals(Set.of(2, 5), tokenizer.stopTokenIds());
        }
        Files.delete(dir.resolve("tokenizer_config.json"));
        try (Tokenizer tokenizer = Tokenizer.load(dir)) {
            assertEquals(Set.of(5), tokenizer.stopTokenIds());
            assertEquals(OptionalInt.empty(), tokenizer.bosTokenId());
        }
    }

    /** One instance encodes, decodes and renders from many threads at once, each getting what a lone thread gets. */
    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "mistral"})
    void oneInstanceServesManyThreads(String family) throws Exception {
        Tokenizer tokenizer = TokenizerFixtures.tokenizer(family);
        SplittableRandom random = new SplittableRandom(11);
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            texts.add(RandomText.next(random, 30));
        }
        List<int[]> expected = texts.stream().map(tokenizer::encode).toList();
        List<String> prompts = texts.stream().map(t -> tokenizer.applyChatTemplate(List.of(new ChatMessage("user", t)), true)).toList();
        try (ExecutorService pool = Executors.newFixedThreadPool(8)) {
            List<Future<Boolean>> results = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                int offset = t;
                results.add(pool.submit(() -> {
                    for (int round = 0; round < 4; round++) {
                        for (int i = 0; i < texts.size(); i++) {
                            int k = (i + offset) % texts.size();
                            int[] ids = tokenizer.encode(texts.get(k));
                            if (!Arrays.equals(expected.get(k), ids) || !tokenizer.decode(ids).equals(tokenizer.decode(expected.get(k)))
                                    || round == 0 && !prompts.get(k).equals(tokenizer.applyChatTemplate(List.of(new ChatMessage("user", texts.get(k))), true))) {
                                return false;
                            }
                        }
                    }
                    return true;
                }));
            }
            for (Future<Boolean> result : results) {
                assertTrue(result.get());
            }
        }
    }
}
