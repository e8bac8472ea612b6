package dev.ember.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.TokenizersLibrary;
import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.Set;

/**
 * A model's tokenizer: HF's Rust {@code tokenizers} (through DJL) for encoding and decoding, exactly as
 * {@code tokenizer(text, add_special_tokens=...)} and {@code tokenizer.decode(ids, skip_special_tokens=...)} of
 * transformers do, and the model's Jinja chat template (through Jinjava) as {@code apply_chat_template} renders it.
 *
 * <p>Read from a model directory: {@code tokenizer.json}, and when present {@code tokenizer_config.json} (special
 * tokens, chat template), {@code chat_template.jinja} (a template kept beside it, which wins, as in HF) and
 * {@code generation_config.json} (further end-of-sequence ids). Where transformers 5 runs a tokenizer class's own
 * pipeline rather than the file's (LlamaTokenizer: Llama 2, Mistral), so does this; see {@link Transformers5Pipeline}.
 *
 * <p>Thread safety: one instance serves any number of threads at once. Encoding and decoding call the native
 * tokenizer through shared, immutable state (the Rust {@code Tokenizer} is {@code Sync}; the only settings DJL
 * mutates, truncation and padding, are fixed here once, during {@link #load}); chat template renders take turns.
 * Only {@link #close} must wait until no thread uses the instance any more.
 */
public final class Tokenizer implements AutoCloseable {

    static {
        // DJL would otherwise, on a host with CUDA, look for a CUDA build of the native library and download it,
        // and on EC2 it reports home; offline mode makes it load the CPU library its jar carries, with no network.
        if (System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path directory;
    private final HuggingFaceTokenizer nativeTokenizer;
    private final Vocabulary vocabulary;
    private final ChatTemplate chatTemplate;          // null: the model has none, the plain format is used
    private final ChatTemplate toolUseTemplate;       // null: the chat template serves conversations with tools too
    private final Set<Integer> stopTokenIds;
    private final OptionalInt bosTokenId;
    private final boolean cleanUpTokenizationSpaces;

    private Tokenizer(Path directory, HuggingFaceTokenizer nativeTokenizer, Vocabulary vocabulary, ChatTemplate chatTemplate,
                      ChatTemplate toolUseTemplate,
                      Set<Integer> stopTokenIds, OptionalInt bosTokenId, boolean cleanUpTokenizationSpaces) {
        this.directory = directory;
        this.nativeTokenizer = nativeTokenizer;
        this.vocabulary = vocabulary;
        this.chatTemplate = chatTemplate;
        this.toolUseTemplate = toolUseTemplate;
        this.stopTokenIds = stopTokenIds;
        this.bosTokenId = bosTokenId;
        this.cleanUpTokenizationSpaces = cleanUpTokenizationSpaces;
    }

    /** Loads the tokenizer of the model in {@code modelDir}; every error names the file at fault. */
    public static Tokenizer load(Path modelDir) {
        return load(modelDir, Clock.systemDefaultZone());
    }

    /**
     * As {@link #load(Path)}, with {@code chatTemplate} in place of the model's own (vLLM's {@code --chat-template}: for a
     * model that ships none, or to change it); {@code origin} names it in errors.
     */
    public static Tokenizer load(Path modelDir, String chatTemplate, String origin) {
        return load(modelDir, Clock.systemDefaultZone(), chatTemplate, origin);
    }

    /** As {@link #load(Path)}, with the clock the chat template's {@code strftime_now} reads. */
    static Tokenizer load(Path modelDir, Clock clock) {
        return load(modelDir, clock, null, null);
    }

    private static Tokenizer load(Path modelDir, Clock clock, String chatTemplate, String origin) {
        Path tokenizerFile = modelDir.resolve("tokenizer.json");
        if (!Files.isRegularFile(tokenizerFile)) {
            throw new EmberException(tokenizerFile + ": not found (the model directory must hold the HF tokenizer.json)");
        }
        JsonNode tokenizerConfig = TokenizerSettings.readConfig(modelDir);
        byte[] tokenizerBytes = Transformers5Pipeline.adapt(read(tokenizerFile), tokenizerConfig, tokenizerFile);
        Vocabulary vocabulary = Vocabulary.read(tokenizerFile, tokenizerBytes);
        TokenizerSettings config = TokenizerSettings.read(modelDir, tokenizerConfig, vocabulary);

        ChatTemplate template = chatTemplate != null ? new ChatTemplate(chatTemplate, origin, config.tokenVariables(), clock)
                : config.chatTemplate() == null ? null
                : new ChatTemplate(config.chatTemplate(), config.chatTemplateOrigin().toString(), config.tokenVariables(), clock);
        ChatTemplate toolUse = chatTemplate != null || config.toolUseTemplate() == null ? null
                : new ChatTemplate(config.toolUseTemplate(), config.chatTemplateOrigin() + " (tool_use)", config.tokenVariables(), clock);
        HuggingFaceTokenizer nativeTokenizer = openNative(tokenizerFile, tokenizerBytes);
        boolean cleanUp = config.cleanUpTokenizationSpaces() && vocabulary.modelType() != Vocabulary.ModelType.BPE;
        return new Tokenizer(modelDir, nativeTokenizer, vocabulary, template, toolUse, config.stopTokenIds(), config.bosTokenId(),
                cleanUp);
    }

    private static HuggingFaceTokenizer openNative(Path file, byte[] json) {
        // DJL's defaults are not HF's: it truncates to 512 tokens and pads unless told otherwise.
        Map<String, String> options = Map.of("truncation", "false", "padding", "false", "addSpecialTokens", "true");
        try {
            return HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(json), options);
        } catch (IOException | RuntimeException e) {
            throw new EmberException(file + ": the HF tokenizers library cannot load it: " + e.getMessage(), e);
        }
    }

    /** The ids HF's {@code tokenizer(text)} gives: special tokens (a BOS, for Llama and Mistral) included. */
    public int[] encode(String text) {
        return encode(text, true);
    }

    /**
     * The ids HF's {@code tokenizer(text, add_special_tokens=addSpecialTokens)} gives. Special-token text inside
     * {@code text} (a rendered chat template's {@code <|im_start|>}) becomes those tokens either way, as in HF;
     * encode a rendered template with {@code addSpecialTokens=false}, since the template already wrote any BOS.
     */
    public int[] encode(String text, boolean addSpecialTokens) {
        requireValidUnicode(text);
        // Straight to the JNI layer: DJL's Encoding would also build offsets, masks and a Java object per token.
        long encoding = TokenizersLibrary.LIB.encode(nativeTokenizer.getHandle(), text, addSpecialTokens);
        try {
            long[] ids = TokenizersLibrary.LIB.getTokenIds(encoding);
            int[] result = new int[ids.length];
            for (int i = 0; i < ids.length; i++) {
                result[i] = Math.toIntExact(ids[i]);
            }
            return result;
        } finally {
            TokenizersLibrary.LIB.deleteEncoding(encoding);
        }
    }

    /**
     * Text with a lone UTF-16 surrogate has no UTF-8 form; the JNI string conversion would replace the whole text's
     * bytes with U+FFFDs (a NUL in it too), where Python refuses it: so refuse it here, saying where.
     */
    private static void requireValidUnicode(String text) {
        Objects.requireNonNull(text, "text");
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw new EmberException("text to encode has an unpaired UTF-16 surrogate (U+" + Integer.toHexString(c).toUpperCase()
                        + ") at index " + i + ": it is not valid Unicode");
            }
        }
    }

    /** HF's {@code tokenizer.decode(ids)}: special tokens are written out. */
    public String decode(int[] ids) {
        return decode(ids, false);
    }

    /** HF's {@code tokenizer.decode(ids, skip_special_tokens=skipSpecialTokens)}. */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        return decode(ids, 0, ids.length, skipSpecialTokens);
    }

    String decode(int[] ids, int from, int to, boolean skipSpecialTokens) {
        long[] wide = new long[to - from];
        for (int i = from; i < to; i++) {
            requireKnown(ids[i]);
            wide[i - from] = ids[i];
        }
        String text = TokenizersLibrary.LIB.decode(nativeTokenizer.getHandle(), wide, skipSpecialTokens);
        return cleanUpTokenizationSpaces ? TokenizationSpaces.cleanUp(text) : text;
    }

    /** A decoder for one generation, writing out special tokens; see {@link StreamingDecoder}. */
    public StreamingDecoder streamingDecoder() {
        return new StreamingDecoder(this, false);
    }

    /** A decoder for one generation that leaves special tokens out where {@code skipSpecialTokens}, as {@code decode} does. */
    public StreamingDecoder streamingDecoder(boolean skipSpecialTokens) {
        return new StreamingDecoder(this, skipSpecialTokens);
    }

    public boolean hasChatTemplate() {
        return chatTemplate != null;
    }

    /**
     * The conversation as the model's chat template writes it (HF's {@code apply_chat_template(messages,
     * add_generation_prompt=..., tokenize=False)}), or, for a model without one, {@code role: content} lines followed
     * by {@code assistant:} when a generation prompt is asked for. Encode the result with
     * {@code encode(prompt, false)}.
     *
     * @throws EmberException naming the template's file when the template rejects the conversation or fails
     */
    public String applyChatTemplate(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return applyChatTemplate(messages, new ChatOptions(addGenerationPrompt, false, List.of(), Map.of()));
    }

    /**
     * The same with {@code options}: the tools and further variables the template is given, as HF's
     * {@code apply_chat_template(..., tools=..., **kwargs)} gives them, and where the prompt ends (HF's
     * {@code continue_final_message}: right after the last message's text, which must then be in the rendering).
     *
     * @throws EmberException if tools are given and the model has no chat template to write them, or the last message's
     *                        text cannot be found in the rendering to continue it
     */
    public String applyChatTemplate(List<ChatMessage> messages, ChatOptions options) {
        String rendered;
        if (chatTemplate != null) {
            // As HF does: a conversation given tools is rendered with the template named "tool_use", where there is one.
            ChatTemplate template = !options.tools().isEmpty() && toolUseTemplate != null ? toolUseTemplate : chatTemplate;
            rendered = template.render(messages, options.addGenerationPrompt(), options.tools(), options.variables());
        } else {
            if (!options.tools().isEmpty()) {
                throw new EmberException("the model has no chat template, so nothing tells it of the tools");
            }
            StringBuilder prompt = new StringBuilder();
            for (ChatMessage message : messages) {
                prompt.append(message.role()).append(": ").append(message.content()).append('\n');
            }
            if (options.addGenerationPrompt()) {
                prompt.append("assistant:");
            }
            rendered = prompt.toString();
        }
        if (!options.continueFinalMessage()) {
            return rendered;
        }
        String last = PythonMethods.strip(messages.getLast().content(), null, true, true);  // Python's str.strip(), as HF
        int at = last.isEmpty() ? -1 : rendered.lastIndexOf(last);
        if (at < 0) {
            throw new EmberException("continue_final_message: the last message's text is not in the rendered prompt "
                    + "(empty, or changed by the chat template), so there is nowhere to continue it");
        }
        return rendered.substring(0, at + last.length());
    }

    /**
     * Whether the model's chat template (or its "tool_use" template) holds {@code text}: what tool-call format it
     * teaches the model, say.
     */
    public boolean chatTemplateContains(String text) {
        return chatTemplate != null && chatTemplate.source().contains(text)
                || toolUseTemplate != null && toolUseTemplate.source().contains(text);
    }

    /** The ids that end a generation: tokenizer_config.json's eos_token and generation_config.json's eos_token_id(s). */
    public Set<Integer> stopTokenIds() {
        return stopTokenIds;
    }

    /** The tokenizer's beginning-of-sequence token (HF's {@code tokenizer.bos_token_id}); Qwen has none. */
    public OptionalInt bosTokenId() {
        return bosTokenId;
    }

    /** The number of token ids, added tokens included: every id this tokenizer produces or accepts is below it. */
    public int vocabSize() {
        return vocabulary.size();
    }

    /** The token's text as the vocabulary writes it ({@code ▁Hello}, {@code Ġworld}, {@code <0x0A>}, {@code <|im_end|>}). */
    public String tokenText(int id) {
        requireKnown(id);
        return vocabulary.token(id);
    }

    /**
     * The bytes the token stands for within a text (a byte-level token's bytes, SentencePiece's {@code ▁} as a space,
     * a {@code <0xAB>} piece as its byte), what a grammar matches a token against; null for a special token.
     *
     * @throws EmberException if the id is not in the vocabulary, or the tokenizer's decoder maps tokens to bytes in a
     *                        way Ember does not read
     */
    public byte[] tokenBytes(int id) {
        requireKnown(id);
        return vocabulary.tokenBytes(id);
    }

    Vocabulary vocabulary() {
        return vocabulary;
    }

    void requireKnown(int id) {
        if (!vocabulary.contains(id)) {
            throw new EmberException("token id " + id + " is not in the vocabulary of " + directory.resolve("tokenizer.json")
                    + " (ids run from 0 to " + (vocabulary.size() - 1) + ")");
        }
    }

    @Override
    public void close() {
        nativeTokenizer.close();
    }

    @Override
    public String toString() {
        return "Tokenizer[" + directory + ", " + vocabulary.size() + " tokens]";
    }

    static byte[] read(Path file) {
        try {
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw new EmberException(file + ": cannot read (" + e.getMessage() + ")", e);
        }
    }

    static JsonNode parse(Path file, byte[] json) {
        try {
            JsonNode root = JSON.readTree(json);
            if (root == null || !root.isObject()) {
                throw new EmberException(file + ": not a JSON object");
            }
            return root;
        } catch (JacksonException e) {
            throw new EmberException(file + ": not valid JSON (" + e.getOriginalMessage() + ")", e);
        } catch (IOException e) {
            throw new EmberException(file + ": cannot read (" + e.getMessage() + ")", e);
        }
    }
}
