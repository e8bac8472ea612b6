package dev.ember.tokenizer;

import dev.ember.EmberException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StreamingDecoderTest {

    static final List<String> FAMILIES = TokenizerFixtures.FAMILIES;

    /** What each push returned, then what flush returned. */
    static List<String> stream(StreamingDecoder decoder, int[] ids) {
        List<String> pieces = new ArrayList<>();
        for (int id : ids) {
            pieces.add(decoder.push(id));
        }
        pieces.add(decoder.flush());
        return pieces;
    }

    /** Text a model might write: every piece is whole characters, and together they are the text. */
    @ParameterizedTest
    @FieldSource("FAMILIES")
    void piecesOfValidTextAreCompleteCharactersThatAddUpToTheText(String family) {
        Tokenizer tokenizer = TokenizerFixtures.tokenizer(family);
        SplittableRandom random = new SplittableRandom(3 * family.hashCode());
        for (int i = 0; i < 200; i++) {
            int[] ids = tokenizer.encode(RandomText.next(random, 1 + random.nextInt(15)), random.nextBoolean());
            String expected = tokenizer.decode(ids);
            List<String> pieces = stream(tokenizer.streamingDecoder(), ids);
            assertEquals(expected, String.join("", pieces), () -> "ids " + Arrays.toString(ids));
            for (String piece : pieces) {
                assertFalse(piece.contains("\uFFFD"), () -> "a piece with half a character: " + pieces);
            }
            List<String> skipping = stream(tokenizer.streamingDecoder(true), ids);
            assertEquals(tokenizer.decode(ids, true), String.join("", skipping));
        }
    }

    /** Any ids at all, special and byte tokens and broken byte sequences included: the pieces still add up. */
    @ParameterizedTest
    @FieldSource("FAMILIES")
    void piecesOfArbitraryIdsAddUpToDecode(String family) {
        Tokenizer tokenizer = TokenizerFixtures.tokenizer(family);
        SplittableRandom random = new SplittableRandom(5 * family.hashCode());
        int[] byteTokens = byteTokens(tokenizer);
        for (int i = 0; i < 300; i++) {
            int[] ids = new int[1 + random.nextInt(40)];
            for (int k = 0; k < ids.length; k++) {
                ids[k] = switch (random.nextInt(3)) {
                    case 0 -> byteTokens[random.nextInt(byteTokens.length)];
                    case 1 -> tokenizer.vocabSize() - 1 - random.nextInt(300);   // the added and special tokens
                    default -> random.nextInt(tokenizer.vocabSize());
                };
            }
            assertEquals(tokenizer.decode(ids), String.join("", stream(tokenizer.streamingDecoder(), ids)), () -> Arrays.toString(ids));
            assertEquals(tokenizer.decode(ids, true), String.join("", stream(tokenizer.streamingDecoder(true), ids)), () -> Arrays.toString(ids));
        }
    }

    /** Mistral spells a character missing from its vocabulary as byte-fallback tokens, one per UTF-8 byte. */
    @Test
    void mistralHoldsByteFallbackTokensUntilTheCharacterIsWhole() {
        Tokenizer mistral = TokenizerFixtures.tokenizer("mistral");
        int[] ids = mistral.encode("🦙", false);   // ▁ then the emoji's four bytes: <0xF0><0x9F><0xA6><0x99>
        assertEquals(5, ids.length, Arrays.toString(ids));
        for (int k = 1; k < 5; k++) {
            assertTrue(mistral.tokenText(ids[k]).matches("<0x[0-9A-F]{2}>"), mistral.tokenText(ids[k]));
        }
        assertEquals(List.of("", "", "", "", "", "🦙"), stream(mistral.streamingDecoder(), ids), "the run ends at flush");
        int[] more = mistral.encode("🦙 ok", false);
        List<String> pieces = stream(mistral.streamingDecoder(), more);
        assertEquals(List.of("", "", "", "", "", "🦙 ok", ""), pieces, "or at the next ordinary token");
    }

    /** Where a run of bytes turns out invalid, everything in it is U+FFFD, as decode writes it. */
    @Test
    void mistralWritesABrokenByteRunAsDecodeDoes() {
        Tokenizer mistral = TokenizerFixtures.tokenizer("mistral");
        int ok = mistral.encode("ok", false)[0];   // ▁ok
        int[] ids = {byteToken(mistral, 0xCF), byteToken(mistral, 0xBF), byteToken(mistral, 0xBA), ok};   // "Ͽ" then a stray byte
        assertEquals("\uFFFD\uFFFD\uFFFD ok", mistral.decode(ids));
        assertEquals(mistral.decode(ids), String.join("", stream(mistral.streamingDecoder(), ids)));
    }

    private static int byteToken(Tokenizer tokenizer, int value) {
        for (int id = 0; id < 300; id++) {
            if (tokenizer.tokenText(id).equals(String.format("<0x%02X>", value))) {
                return id;
            }
        }
        throw new IllegalArgumentException("no byte token for " + value);
    }

    /** Qwen and Llama 3 are byte-level: " 🦙" takes three tokens in both, the first two halves of the emoji's bytes. */
    @Test
    void byteLevelModelsHoldSplitCharacters() {
        for (String family : List.of("qwen3", "llama3_2")) {
            Tokenizer tokenizer = TokenizerFixtures.tokenizer(family);
            int[] ids = tokenizer.encode("a 🦙", false);
            assertEquals(4, ids.length, () -> family + ": " + Arrays.toString(ids));
            assertEquals(List.of("a", "", "", " 🦙", ""), stream(tokenizer.streamingDecoder(), ids), family);
        }
    }

    /** The first word gets no space; every later word keeps its own, as tokenizer.decode writes them. */
    @Test
    void sentencePieceSpacesBetweenWordsSurviveStreaming() {
        Tokenizer mistral = TokenizerFixtures.tokenizer("mistral");
        int[] ids = mistral.encode("Hello world, how are you", false);
        List<String> pieces = stream(mistral.streamingDecoder(), ids);
        assertEquals("Hello", pieces.getFirst());
        assertEquals(" world", pieces.get(1));
        assertEquals("Hello world, how are you", String.join("", pieces));

        int[] withBos = mistral.encode("Hello world");
        assertEquals(List.of("<s>", " Hello", " world", ""), stream(mistral.streamingDecoder(), withBos));
        assertEquals(List.of("", "Hello", " world", ""), stream(mistral.streamingDecoder(true), withBos));
    }

    @Test
    void anIdOutsideTheVocabularyIsRefusedAndTheStreamGoesOn() {
        Tokenizer qwen = TokenizerFixtures.tokenizer("qwen3");
        StreamingDecoder decoder = qwen.streamingDecoder();
        int[] ids = qwen.encode("Hello there", false);
        assertEquals("Hello", decoder.push(ids[0]));
        EmberException e = assertThrows(EmberException.class, () -> decoder.push(qwen.vocabSize()));
        assertTrue(e.getMessage().contains(String.valueOf(qwen.vocabSize())) && e.getMessage().contains("tokenizer.json"), e.getMessage());
        assertEquals(" there", decoder.push(ids[1]));
    }

    private static int[] byteTokens(Tokenizer tokenizer) {
        List<Integer> bytes = new ArrayList<>();
        for (int b = 0x80; b <= 0xFF; b++) {
            String text = String.format("<0x%02X>", b);
            for (int id = 0; id < Math.min(tokenizer.vocabSize(), 300); id++) {
                if (tokenizer.tokenText(id).equals(text)) {
                    bytes.add(id);
                }
            }
        }
        if (bytes.isEmpty()) {
            // Byte-level vocabularies map bytes 0x80-0xFF to single characters among their first 256 tokens.
            for (int id = 0; id < 256; id++) {
                bytes.add(id);
            }
        }
        return bytes.stream().mapToInt(Integer::intValue).toArray();
    }
}
