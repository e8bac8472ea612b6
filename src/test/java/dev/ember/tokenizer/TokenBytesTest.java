package dev.ember.tokenizer;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@link Tokenizer#tokenBytes}: what a grammar matches each token against must be what the native decoder writes for
 * it within a text. Each token is decoded after a plain letter, so that no decoder strips a leading space, and the text
 * must be the letter and then the token's bytes, wherever those are whole UTF-8.
 */
class TokenBytesTest {

    @ParameterizedTest
    @ValueSource(strings = {"ember-tiny", "qwen3", "llama3_2", "mistral"})
    void everyTokensBytesAreWhatTheDecoderWritesForIt(String name) {
        Tokenizer tokenizer = name.equals("ember-tiny") ? Tokenizer.load(java.nio.file.Path.of("models", "ember-tiny"))
                : TokenizerFixtures.tokenizer(name);
        int letter = tokenizer.encode("a", false)[0];
        assertEquals("a", tokenizer.decode(new int[] {letter}, false));
        int checked = 0, special = 0;
        int step = Math.max(1, tokenizer.vocabSize() / 6000);  // a spread of the vocabulary: every id of the small ones
        for (int id = 0; id < tokenizer.vocabSize(); id += step) {
            byte[] bytes = tokenizer.tokenBytes(id);
            if (bytes == null) {
                special++;
                continue;
            }
            String text = wholeUtf8(bytes);
            if (text != null) {
                assertEquals("a" + text, tokenizer.decode(new int[] {letter, id}, false), name + " token " + id + " ("
                        + tokenizer.tokenText(id) + ")");
                checked++;
            }
        }
        assertTrue(checked > tokenizer.vocabSize() / step / 2, name + ": most tokens are whole UTF-8, " + checked + " checked");
        assertFalse(tokenizer.stopTokenIds().isEmpty() || tokenizer.tokenBytes(tokenizer.stopTokenIds().iterator().next()) != null,
                name + ": a stop token stands for no bytes (" + special + " special tokens met)");
    }

    private static String wholeUtf8(byte[] bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }
}
