package dev.ember.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.MissingNode;
import dev.ember.EmberException;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.OptionalInt;
import java.util.Set;

/**
 * What a model directory says about its tokenizer beyond tokenizer.json: the special tokens and chat template of
 * {@code tokenizer_config.json} (or {@code chat_template.jinja}), the end-of-sequence ids of
 * {@code generation_config.json}. Every file is optional; every error names the file.
 *
 * @param chatTemplate       the template's source, or null when the model has none
 * @param toolUseTemplate    the template named "tool_use" where tokenizer_config.json lists named templates (HF
 *                           renders a conversation given tools with it), or null
 * @param chatTemplateOrigin the file the template came from, or null
 */
record TokenizerSettings(
        ChatTemplate.TokenVariables tokenVariables,
        String chatTemplate,
        String toolUseTemplate,
        Path chatTemplateOrigin,
        Set<Integer> stopTokenIds,
        OptionalInt bosTokenId,
        boolean cleanUpTokenizationSpaces) {

    /** tokenizer_config.json, or a missing node when the model has none. */
    static JsonNode readConfig(Path modelDir) {
        return readOptional(modelDir.resolve("tokenizer_config.json"));
    }

    static TokenizerSettings read(Path modelDir, JsonNode config, Vocabulary vocabulary) {
        Path configFile = modelDir.resolve("tokenizer_config.json");

        ChatTemplate.TokenVariables tokens = new ChatTemplate.TokenVariables(
                tokenText(config, "bos_token", configFile), tokenText(config, "eos_token", configFile),
                tokenText(config, "unk_token", configFile), tokenText(config, "pad_token", configFile));

        LinkedHashSet<Integer> stopIds = new LinkedHashSet<>();
        if (tokens.eosToken() != null) {
            stopIds.add(idOf(tokens.eosToken(), "eos_token", configFile, vocabulary));
        }
        Path generationFile = modelDir.resolve("generation_config.json");
        JsonNode eosIds = readOptional(generationFile).path("eos_token_id");
        for (JsonNode id : eosIds.isArray() ? eosIds : List.of(eosIds)) {
            if (id.isMissingNode() || id.isNull()) {
                continue;
            }
            if (!id.canConvertToInt() || !vocabulary.contains(id.intValue())) {
                throw new EmberException(generationFile + ": eos_token_id " + id + " is not a token id of this tokenizer (0 to "
                        + (vocabulary.size() - 1) + ")");
            }
            stopIds.add(id.intValue());
        }

        OptionalInt bos = tokens.bosToken() == null ? OptionalInt.empty()
                : OptionalInt.of(idOf(tokens.bosToken(), "bos_token", configFile, vocabulary));

        Path templateFile = modelDir.resolve("chat_template.jinja");
        String template;
        Path templateOrigin;
        if (Files.isRegularFile(templateFile)) {
            template = new String(Tokenizer.read(templateFile), StandardCharsets.UTF_8);
            templateOrigin = templateFile;
        } else {
            template = chatTemplate(config.path("chat_template"), configFile);
            templateOrigin = template == null ? null : configFile;
        }
        String toolUse = config.path("chat_template").isArray() ? namedTemplate(config.path("chat_template"), "tool_use") : null;
        boolean cleanUp = config.path("clean_up_tokenization_spaces").asBoolean(false);
        return new TokenizerSettings(tokens, template, toolUse, templateOrigin, Collections.unmodifiableSet(stopIds), bos, cleanUp);
    }

    private static JsonNode readOptional(Path file) {
        return Files.isRegularFile(file) ? Tokenizer.parse(file, Tokenizer.read(file)) : MissingNode.getInstance();
    }

    /** A special token as tokenizer_config.json writes it: a string, an AddedToken object, or null. */
    private static String tokenText(JsonNode config, String field, Path file) {
        JsonNode token = config.path(field);
        if (token.isMissingNode() || token.isNull()) {
            return null;
        }
        if (token.isTextual()) {
            return token.asText();
        }
        if (token.path("content").isTextual()) {
            return token.get("content").asText();
        }
        throw new EmberException(file + ": " + field + " is neither a string nor a token object: " + token);
    }

    private static int idOf(String token, String field, Path file, Vocabulary vocabulary) {
        OptionalInt id = vocabulary.idOf(token);
        if (id.isEmpty()) {
            throw new EmberException(file + ": " + field + " \"" + token + "\" is not a token of tokenizer.json");
        }
        return id.getAsInt();
    }

    /** tokenizer_config.json's chat_template: a string, or a list of named templates of which HF takes "default". */
    private static String chatTemplate(JsonNode template, Path file) {
        if (template.isMissingNode() || template.isNull()) {
            return null;
        }
        if (template.isTextual()) {
            return template.asText();
        }
        if (template.isArray()) {
            String found = namedTemplate(template, "default");
            if (found == null) {
                throw new EmberException(file + ": chat_template lists named templates but none is called \"default\"");
            }
            return found;
        }
        throw new EmberException(file + ": chat_template is neither a string nor a list of named templates");
    }

    /** The template called {@code name} in a list of named templates, or null. */
    private static String namedTemplate(JsonNode templates, String name) {
        for (JsonNode named : templates) {
            if (name.equals(named.path("name").asText()) && named.path("template").isTextual()) {
                return named.get("template").asText();
            }
        }
        return null;
    }
}
