package dev.ember.tokenizer;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;
import java.util.OptionalInt;
import java.util.regex.Pattern;

/**
 * Every token of a {@code tokenizer.json}, by id: the model's vocabulary plus the added tokens, as
 * {@code convert_ids_to_tokens} sees them. The native tokenizer does the encoding and decoding; this side answers
 * what DJL does not expose (the vocabulary's size, a token's text, a special token's id).
 */
final class Vocabulary {

    /** The tokenizer model families of tokenizer.json; BPE matters because HF skips space clean-up for it. */
    enum ModelType { BPE, UNIGRAM, WORD_PIECE, WORD_LEVEL }

    /**
     * How the decoder turns a token's text into bytes: GPT-2's byte-level alphabet (Llama 3, Qwen), SentencePiece's
     * {@code ▁} for a space with {@code <0xAB>} byte pieces (Llama 2, Mistral), or a decoder this class cannot read.
     */
    enum ByteEncoding { BYTE_LEVEL, METASPACE, UNKNOWN }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern BYTE_PIECE = Pattern.compile("<0x[0-9A-Fa-f]{2}>");

    private final String[] tokenById;
    private final Map<String, Integer> addedTokens;
    private final BitSet specialIds;
    private final BitSet byteFallbackIds;
    private final ModelType modelType;
    private final ByteEncoding byteEncoding;

    private Vocabulary(String[] tokenById, Map<String, Integer> addedTokens, BitSet specialIds, BitSet byteFallbackIds,
                       ModelType modelType, ByteEncoding byteEncoding) {
        this.tokenById = tokenById;
        this.addedTokens = addedTokens;
        this.specialIds = specialIds;
        this.byteFallbackIds = byteFallbackIds;
        this.modelType = modelType;
        this.byteEncoding = byteEncoding;
    }

    /**
     * Reads the vocabulary of a tokenizer.json, streaming: the merges, most of the file (280,000 pairs for Llama 3),
     * matter only to the native tokenizer and are skipped, and the vocabulary goes straight into an array.
     */
    static Vocabulary read(Path file, byte[] json) {
        String type = "";
        boolean hasMerges = false;
        boolean vocabIsList = false;
        TokenTable tokens = null;
        JsonNode addedTokens = null;
        JsonNode decoder = null;
        try (JsonParser parser = JSON.createParser(json)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                throw new EmberException(file + ": not a JSON object");
            }
            while (parser.nextToken() == JsonToken.FIELD_NAME) {
                String field = parser.currentName();
                JsonToken value = parser.nextToken();
                switch (field) {
                    case "model" -> {
                        if (value != JsonToken.START_OBJECT) {
                            throw new EmberException(file + ": model is not an object");
                        }
                        while (parser.nextToken() == JsonToken.FIELD_NAME) {
                            String modelField = parser.currentName();
                            JsonToken modelValue = parser.nextToken();
                            switch (modelField) {
                                case "type" -> type = parser.getValueAsString("");
                                case "merges" -> {
                                    hasMerges = true;
                                    parser.skipChildren();
                                }
                                case "vocab" -> {
                                    vocabIsList = modelValue == JsonToken.START_ARRAY;
                                    tokens = readVocab(parser, modelValue, file);
                                }
                                default -> parser.skipChildren();
                            }
                        }
                    }
                    case "added_tokens" -> addedTokens = parser.readValueAsTree();
                    case "decoder" -> decoder = parser.readValueAsTree();
                    default -> parser.skipChildren();
                }
            }
            if (parser.nextToken() != null) {
                throw new EmberException(file + ": not valid JSON (content after the top-level object)");
            }
        } catch (JacksonException e) {
            throw new EmberException(file + ": not valid JSON (" + e.getOriginalMessage() + ")", e);
        } catch (IOException e) {
            throw new EmberException(file + ": cannot read (" + e.getMessage() + ")", e);
        }
        if (tokens == null) {
            throw new EmberException(file + ": model.vocab is missing");
        }
        ModelType modelType = modelType(type, hasMerges, vocabIsList, file);

        Map<String, Integer> added = new HashMap<>();
        BitSet special = new BitSet();
        for (JsonNode token : addedTokens == null ? JSON.createArrayNode() : addedTokens) {
            if (!token.path("id").canConvertToInt() || token.path("id").intValue() < 0 || !token.path("content").isTextual()) {
                throw new EmberException(file + ": added_tokens entry without a token id and content: " + token);
            }
            int id = token.get("id").intValue();
            tokens.put(id, token.get("content").asText());
            added.put(token.get("content").asText(), id);
            if (token.path("special").asBoolean(false)) {
                special.set(id);
            }
        }
        String[] byId = tokens.toArray();
        BitSet bytePieces = new BitSet();
        if (decoder != null && hasByteFallbackDecoder(decoder)) {
            for (int id = 0; id < byId.length; id++) {
                if (byId[id] != null && !added.containsKey(byId[id]) && BYTE_PIECE.matcher(byId[id]).matches()) {
                    bytePieces.set(id);
                }
            }
        }
        return new Vocabulary(byId, Map.copyOf(added), special, bytePieces, modelType, byteEncoding(decoder));
    }

    private static ByteEncoding byteEncoding(JsonNode decoder) {
        if (decoder == null) {
            return ByteEncoding.UNKNOWN;
        }
        String type = decoder.path("type").asText();
        if (type.equals("ByteLevel")) {
            return ByteEncoding.BYTE_LEVEL;
        }
        if (type.equals("Metaspace") || type.equals("Replace") && "\u2581".equals(decoder.at("/pattern/String").asText())
                && " ".equals(decoder.path("content").asText())) {
            return ByteEncoding.METASPACE;
        }
        ByteEncoding found = ByteEncoding.UNKNOWN;
        for (JsonNode part : decoder.path("decoders")) {
            ByteEncoding inner = byteEncoding(part);
            found = inner != ByteEncoding.UNKNOWN ? inner : found;
        }
        return found;
    }

    /** model.vocab: {"token": id, ...}, or for Unigram [["piece", score], ...] with the position as the id. */
    private static TokenTable readVocab(JsonParser parser, JsonToken start, Path file) throws IOException {
        TokenTable tokens = new TokenTable();
        if (start == JsonToken.START_OBJECT) {
            while (parser.nextToken() == JsonToken.FIELD_NAME) {
                String token = parser.currentName();
                if (parser.nextToken() != JsonToken.VALUE_NUMBER_INT || parser.getIntValue() < 0) {
                    throw new EmberException(file + ": model.vocab maps \"" + token + "\" to " + parser.getText() + ", not a token id");
                }
                tokens.put(parser.getIntValue(), token);
            }
        } else if (start == JsonToken.START_ARRAY) {
            int id = 0;
            while (parser.nextToken() == JsonToken.START_ARRAY) {
                if (parser.nextToken() != JsonToken.VALUE_STRING) {
                    throw new EmberException(file + ": model.vocab entry " + id + " is not [piece, score]");
                }
                tokens.put(id++, parser.getText());
                while (parser.nextToken() != JsonToken.END_ARRAY) {
                    parser.skipChildren();
                }
            }
        } else {
            throw new EmberException(file + ": model.vocab is neither an object nor a list");
        }
        return tokens;
    }

    /** Token texts by id, growing as ids come. */
    private static final class TokenTable {
        private String[] byId = new String[1024];
        private int size;

        void put(int id, String token) {
            if (id >= byId.length) {
                byId = Arrays.copyOf(byId, Math.max(id + 1, byId.length * 2));
            }
            byId[id] = token;
            size = Math.max(size, id + 1);
        }

        String[] toArray() {
            return Arrays.copyOf(byId, size);
        }
    }

    private static boolean hasByteFallbackDecoder(JsonNode decoder) {
        if ("ByteFallback".equals(decoder.path("type").asText())) {
            return true;
        }
        for (JsonNode part : decoder.path("decoders")) {
            if (hasByteFallbackDecoder(part)) {
                return true;
            }
        }
        return false;
    }

    private static ModelType modelType(String type, boolean hasMerges, boolean vocabIsList, Path file) {
        return switch (type) {
            case "BPE" -> ModelType.BPE;
            case "Unigram" -> ModelType.UNIGRAM;
            case "WordPiece" -> ModelType.WORD_PIECE;
            case "WordLevel" -> ModelType.WORD_LEVEL;
            // Early tokenizer.json files omit the type; their shape still tells.
            case "" -> hasMerges ? ModelType.BPE : vocabIsList ? ModelType.UNIGRAM : ModelType.WORD_LEVEL;
            default -> throw new EmberException(file + ": unknown tokenizer model type \"" + type + "\"");
        };
    }

    /** One past the largest token id: the range every id this tokenizer produces or accepts falls in. */
    int size() {
        return tokenById.length;
    }

    ModelType modelType() {
        return modelType;
    }

    boolean contains(int id) {
        return id >= 0 && id < tokenById.length && tokenById[id] != null;
    }

    /** Whether HF's skip_special_tokens leaves the token out: an added token marked special. */
    boolean isSpecial(int id) {
        return specialIds.get(id);
    }

    /**
     * Whether the decoder reads the token as one raw byte ({@code <0xE4>} under a ByteFallback decoder). A run of
     * them decodes as a whole: to its UTF-8 text if the run is valid, else to one U+FFFD per byte.
     */
    boolean isByteFallbackPiece(int id) {
        return byteFallbackIds.get(id);
    }

    /**
     * The bytes the decoder makes of the token where it stands after other tokens (SentencePiece's strip of a leading
     * space applies only at the start of a text): UTF-8 for an added token's literal text, one byte for a byte piece.
     * Null for a special token, which stands for no text, or for an id no token has.
     *
     * @throws EmberException if the decoder is not one whose byte mapping this class knows
     */
    byte[] tokenBytes(int id) {
        if (!contains(id) || isSpecial(id)) {
            return null;
        }
        String text = tokenById[id];
        if (addedTokens.containsKey(text)) {
            return text.getBytes(StandardCharsets.UTF_8);
        }
        return switch (byteEncoding) {
            case BYTE_LEVEL -> {
                byte[] bytes = new byte[text.length()];
                for (int i = 0; i < text.length(); i++) {
                    int b = ByteLevelAlphabet.byteOf(text.charAt(i));
                    if (b < 0) {
                        yield text.getBytes(StandardCharsets.UTF_8);  // not of the alphabet: the text as it is
                    }
                    bytes[i] = (byte) b;
                }
                yield bytes;
            }
            case METASPACE -> isByteFallbackPiece(id) ? new byte[] {(byte) Integer.parseInt(text.substring(3, 5), 16)}
                    : text.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
            case UNKNOWN -> throw new EmberException("the tokenizer's decoder does not say how its tokens map to bytes "
                    + "(neither byte-level nor SentencePiece's), so tokens cannot be matched against a grammar");
        };
    }

    /** The token's text, or null for an id no token has. */
    String token(int id) {
        return contains(id) ? tokenById[id] : null;
    }

    /** The id of a token by its exact text, added tokens taking precedence as they do in HF. */
    OptionalInt idOf(String token) {
        Integer added = addedTokens.get(token);
        if (added != null) {
            return OptionalInt.of(added);
        }
        for (int id = 0; id < tokenById.length; id++) {
            if (token.equals(tokenById[id])) {
                return OptionalInt.of(id);
            }
        }
        return OptionalInt.empty();
    }
}
