package dev.ember.tokenizer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.opentest4j.AssertionFailedError;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The reader of hf_reference.json, on a small file written here by hand (never committed as a reference). */
class HfReferenceFormatTest {

    @Test
    void readsEveryKindOfEntryAndChecksIt(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("hf_reference.json");
        Files.writeString(file, """
                {"source": "hand-written for this test",
                 "encode": [{"text": "Hello world", "add_special_tokens": true, "ids": [1, 22557, 1526]},
                            {"text": "Hello world", "add_special_tokens": false, "ids": [22557, 1526]}],
                 "decode": [{"ids": [1, 22557, 1526], "skip_special_tokens": false, "text": "<s> Hello world"},
                            {"ids": [1, 22557, 1526], "skip_special_tokens": true, "text": "Hello world"}],
                 "chat": [{"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true,
                           "rendered": "<s>[INST] Hi [/INST]"}]}
                """);
        HfReference reference = HfReference.read(file);
        assertEquals("hand-written for this test", reference.source());
        assertEquals(5, reference.size());
        assertArrayEquals(new int[]{1, 22557, 1526}, reference.encode().getFirst().ids());
        assertEquals(List.of(new ChatMessage("user", "Hi")), reference.chat().getFirst().messages());

        Tokenizer mistral = TokenizerFixtures.tokenizer("mistral");
        reference.encode().forEach(e -> e.check(mistral));
        reference.decode().forEach(d -> d.check(mistral));
        reference.chat().forEach(c -> c.check(mistral));

        assertThrows(AssertionFailedError.class, () -> new HfReference.Encode("Hello world", false, new int[]{1, 22557, 1526}).check(mistral));
        assertThrows(AssertionFailedError.class, () -> new HfReference.Decode(new int[]{22557}, false, " Hello").check(mistral));
        assertThrows(AssertionFailedError.class, () -> new HfReference.Chat(List.of(new ChatMessage("user", "Hi")), false, "[INST] Hi [/INST]").check(mistral));
    }

    @Test
    void pinsTheClockToTheDayLlamaRenderedOn(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("hf_reference.json");
        Files.writeString(file, """
                {"chat": [{"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": false,
                           "rendered": "<|start_header_id|>system<|end_header_id|>\\n\\nToday Date: 26 Jul 2024\\n\\n"}]}
                """);
        HfReference reference = HfReference.read(file);
        assertEquals(LocalDate.of(2024, 7, 26), LocalDate.ofInstant(reference.clock().instant(), ZoneOffset.UTC));
    }

    @Test
    void anEntryMissingAFieldIsNamed(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("hf_reference.json");
        Files.writeString(file, "{\"encode\": [{\"text\": \"x\", \"ids\": [1]}]}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HfReference.read(file));
        assertEquals(true, e.getMessage().contains("add_special_tokens"), e.getMessage());
    }
}
