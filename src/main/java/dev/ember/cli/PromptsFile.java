package dev.ember.cli;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The prompts of {@code ember generate --prompts-file}: a {@code .jsonl} file holds one JSON object with a
 * {@code "prompt"} string per line; any other file, one prompt per line. Blank lines are skipped.
 */
public final class PromptsFile {
    private static final ObjectMapper JSON = new ObjectMapper();

    private PromptsFile() {
    }

    public static List<String> read(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file);
        } catch (NoSuchFileException e) {
            throw new EmberException(file + ": no such prompts file");
        } catch (CharacterCodingException e) {
            throw new EmberException(file + ": not UTF-8 text");
        } catch (IOException e) {
            throw new EmberException(file + ": cannot read (" + e.getMessage() + ")", e);
        }
        boolean jsonl = file.getFileName().toString().endsWith(".jsonl");
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (!line.isBlank()) {
                prompts.add(jsonl ? promptOf(line, file + ":" + (i + 1)) : line);
            }
        }
        if (prompts.isEmpty()) {
            throw new EmberException(file + ": holds no prompts");
        }
        return prompts;
    }

    private static String promptOf(String line, String where) {
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (JacksonException e) {
            throw new EmberException(where + ": not valid JSON (" + e.getOriginalMessage() + ")");
        }
        JsonNode prompt = node == null ? null : node.get("prompt");
        if (prompt == null || !prompt.isTextual()) {
            throw new EmberException(where + ": expected an object with a \"prompt\" string, got " + line);
        }
        return prompt.asText();
    }
}
