package dev.ember.model;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The JSON files of a model directory, read with errors of one line that name the file and the place. */
final class JsonFile {
    private static final ObjectMapper JSON = new ObjectMapper();

    private JsonFile() {
    }

    /** The object {@code file} holds; an error names the file, and for bad JSON the line and column at fault. */
    static JsonNode readObject(Path file) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (JacksonException e) {
            JsonLocation at = e.getLocation();
            String where = at == null || at.getLineNr() < 1 ? "" : " at line " + at.getLineNr() + ", column " + at.getColumnNr();
            throw new EmberException(file + ": not valid JSON" + where + " (" + e.getOriginalMessage() + ")", e);
        } catch (IOException e) {
            throw new EmberException(file + ": cannot read (" + e.getMessage() + ")", e);
        }
        if (root == null || !root.isObject()) {
            throw new EmberException(file + ": not a JSON object");
        }
        return root;
    }
}
