package dev.ember.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * One {@code hf_reference.json}: what HF transformers (on the GPU host) answered for a family's tokenizer.
 * <pre>
 * {"source": ..., "checks": {"encode_disagreements": [{"text", "add_special_tokens", "transformers_ids"}]}, "encode": [{"text", "add_special_tokens", "ids"}], "decode": [{"ids", "skip_special_tokens", "text"}],
 *  "chat": [{"messages": [{"role", "content"}], "add_generation_prompt", "rendered"}]}
 * </pre>
 */
record HfReference(String source, List<Encode> encode, List<Decode> decode, List<Chat> chat) {

    record Encode(String text, boolean addSpecialTokens, int[] ids) {
        void check(Tokenizer tokenizer) {
            assertArrayEquals(ids, tokenizer.encode(text, addSpecialTokens), () -> "encode(" + quote(text) + ", " + addSpecialTokens + ")");
        }
    }

    record Decode(int[] ids, boolean skipSpecialTokens, String text) {
        void check(Tokenizer tokenizer) {
            assertEquals(text, tokenizer.decode(ids, skipSpecialTokens), "decode, skip_special_tokens=" + skipSpecialTokens);
        }
    }

    record Chat(List<ChatMessage> messages, boolean addGenerationPrompt, String rendered) {
        void check(Tokenizer tokenizer) {
            assertEquals(rendered, tokenizer.applyChatTemplate(messages, addGenerationPrompt),
                    "apply_chat_template(" + messages + ", add_generation_prompt=" + addGenerationPrompt + ")");
        }
    }

    private static final Pattern TODAY = Pattern.compile("Today Date: (\\d{1,2} [A-Z][a-z]{2} \\d{4})");

    static HfReference read(Path file) throws IOException {
        JsonNode root = new ObjectMapper().readTree(file.toFile());
        // Where transformers' own tokenizer class departs from tokenizer.json (Mistral's legacy=false handling of
        // spaces and literal special tokens), Ember follows transformers: it is what models are served with.
        Map<String, int[]> transformersIds = new HashMap<>();
        for (JsonNode d : root.path("checks").path("encode_disagreements")) {
            transformersIds.put(encodeKey(d.get("text").asText(), d.get("add_special_tokens").asBoolean()),
                    ids(required(d, "transformers_ids", file)));
        }
        List<Encode> encode = new ArrayList<>();
        for (JsonNode e : root.path("encode")) {
            String text = required(e, "text", file).asText();
            boolean addSpecialTokens = required(e, "add_special_tokens", file).asBoolean();
            int[] ids = transformersIds.getOrDefault(encodeKey(text, addSpecialTokens), ids(required(e, "ids", file)));
            encode.add(new Encode(text, addSpecialTokens, ids));
        }
        List<Decode> decode = new ArrayList<>();
        for (JsonNode d : root.path("decode")) {
            decode.add(new Decode(ids(required(d, "ids", file)), required(d, "skip_special_tokens", file).asBoolean(),
                    required(d, "text", file).asText()));
        }
        List<Chat> chat = new ArrayList<>();
        for (JsonNode c : root.path("chat")) {
            List<ChatMessage> messages = new ArrayList<>();
            for (JsonNode m : required(c, "messages", file)) {
                messages.add(new ChatMessage(required(m, "role", file).asText(), required(m, "content", file).asText()));
            }
            chat.add(new Chat(messages, required(c, "add_generation_prompt", file).asBoolean(), required(c, "rendered", file).asText()));
        }
        return new HfReference(root.path("source").asText("(no source given)"), encode, decode, chat);
    }

    private static String encodeKey(String text, boolean addSpecialTokens) {
        return addSpecialTokens + "\u0000" + text;
    }

    /**
     * Llama 3's template writes the day it is rendered ({@code strftime_now}); the reference was rendered on the day
     * it was made, so its rendering says which day to pin the clock to.
     */
    Clock clock() {
        for (Chat c : chat) {
            Matcher today = TODAY.matcher(c.rendered());
            if (today.find()) {
                LocalDate day = LocalDate.parse(today.group(1), DateTimeFormatter.ofPattern("d MMM yyyy", Locale.ENGLISH));
                return Clock.fixed(day.atTime(12, 0).toInstant(ZoneOffset.UTC), ZoneOffset.UTC);
            }
        }
        return Clock.systemDefaultZone();
    }

    int size() {
        return encode.size() + decode.size() + chat.size();
    }

    private static JsonNode required(JsonNode node, String field, Path file) {
        JsonNode value = node.get(field);
        if (value == null) {
            throw new IllegalArgumentException(file + ": an entry lacks \"" + field + "\": " + node);
        }
        return value;
    }

    private static int[] ids(JsonNode array) {
        int[] ids = new int[array.size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = array.get(i).intValue();
        }
        return ids;
    }

    static String quote(String s) {
        String shown = s.length() > 60 ? s.substring(0, 60) + "..." : s;
        return "\"" + shown.replace("\n", "\\n").replace("\t", "\\t") + "\"";
    }
}
