package dev.ember.bench.client;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;
import dev.ember.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * The request sets of a client benchmark: random token ids, ShareGPT conversations, or a file of prompts.
 * Lengths here only choose each request's {@code max_tokens}; the figures use the server's token counts.
 */
public final class Datasets {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<String> USER_ROLES = Set.of("human", "user");
    private static final Set<String> ASSISTANT_ROLES = Set.of("gpt", "assistant", "chatgpt", "bard", "bing", "model");
    /** vLLM's ShareGPT filter: both sides at least this many tokens... */
    private static final int MIN_SHAREGPT_TOKENS = 4;
    /** ...the prompt at most this many... */
    private static final int MAX_SHAREGPT_PROMPT_TOKENS = 1024;
    /** ...and both together at most this many. */
    private static final int MAX_SHAREGPT_TOTAL_TOKENS = 2048;
    /** Token ids drawn without a tokenizer stay below this, inside every real vocabulary. */
    public static final int DEFAULT_RANDOM_VOCABULARY = 1000;

    private Datasets() {
    }

    /**
     * {@code count} requests of random token ids, as vLLM's random dataset: input lengths uniform in
     * [in (1 - r), in (1 + r)], output lengths likewise. With a tokenizer the ids are decoded to text (the server
     * counts the tokens it sees); without one they are sent as ids, below {@code vocabulary}.
     */
    public static List<ClientRequest> random(int count, int inputLen, int outputLen, double rangeRatio, Tokenizer tokenizer,
                                             int vocabulary, long seed) {
        if (!(rangeRatio >= 0 && rangeRatio < 1)) {
            throw new EmberException("--random-range-ratio must be in [0, 1), not " + rangeRatio);
        }
        if (inputLen < 1 || outputLen < 1) {
            throw new EmberException("--random-input-len and --random-output-len must be at least 1");
        }
        SplittableRandom random = new SplittableRandom(seed);
        int ids = tokenizer != null ? tokenizer.vocabSize() : vocabulary;
        List<ClientRequest> requests = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            int in = lengthAround(random, inputLen, rangeRatio);
            int out = lengthAround(random, outputLen, rangeRatio);
            int[] tokens = random.ints(in, 0, ids).toArray();
            ClientRequest.Prompt prompt = tokenizer != null ? new ClientRequest.Text(tokenizer.decode(tokens))
                    : new ClientRequest.TokenIds(tokens);
            requests.add(new ClientRequest(prompt, out));
        }
        return requests;
    }

    private static int lengthAround(SplittableRandom random, int length, double ratio) {
        int low = Math.max(1, (int) (length * (1 - ratio)));
        int high = Math.max(low, (int) (length * (1 + ratio)));
        return random.nextInt(low, high + 1);
    }

    /**
     * {@code count} requests from a ShareGPT file: a JSON array or JSON lines (sharegpt_gpt4.jsonl,
     * sharegpt_V3_format.jsonl, sharegpt_zh_38K_format.jsonl, ShareGPT_V3_unfiltered_cleaned_split.json), each
     * conversation under "conversations" (or "conversation", "messages") as turns of from/value or role/content,
     * or as exchanges of human/assistant.
     * The first user turn that an assistant turn answers is the prompt. Conversations are shuffled with
     * {@code seed}. {@code max_tokens} is {@code outputLen} when given, else the reply's length in tokens, which
     * needs the tokenizer; with a tokenizer, vLLM's length filter applies (both sides at least 4 tokens, the
     * prompt at most 1024, both at most 2048).
     */
    public static List<ClientRequest> shareGpt(Path file, int count, Tokenizer tokenizer, Integer outputLen, long seed) {
        List<ClientRequest> requests = shareGptUpTo(file, count, tokenizer, outputLen, seed);
        if (requests.size() < count) {
            throw new EmberException(file + " has " + requests.size() + " usable conversations, fewer than the "
                    + count + " requests asked for (--num-prompts)");
        }
        return requests;
    }

    /** As {@link #shareGpt}, but as many requests as the file has usable conversations when that is fewer than {@code count}. */
    public static List<ClientRequest> shareGptUpTo(Path file, int count, Tokenizer tokenizer, Integer outputLen, long seed) {
        if (tokenizer == null && outputLen == null) {
            throw new EmberException("the sharegpt dataset needs --tokenizer DIR (each request asks for its reference reply's length)"
                    + " or --output-len N");
        }
        List<JsonNode> conversations = readJsonRecords(file);
        Collections.shuffle(conversations, new Random(seed));
        List<ClientRequest> requests = new ArrayList<>(count);
        for (JsonNode conversation : conversations) {
            if (requests.size() == count) {
                break;
            }
            String[] turn = firstExchange(conversation);
            if (turn == null) {
                continue;
            }
            int maxTokens;
            if (tokenizer != null) {
                int promptTokens = tokenizer.encode(turn[0]).length;
                int replyTokens = tokenizer.encode(turn[1]).length;
                if (promptTokens < MIN_SHAREGPT_TOKENS || replyTokens < MIN_SHAREGPT_TOKENS
                        || promptTokens > MAX_SHAREGPT_PROMPT_TOKENS || promptTokens + replyTokens > MAX_SHAREGPT_TOTAL_TOKENS) {
                    continue;
                }
                maxTokens = outputLen != null ? outputLen : replyTokens;
            } else {
                maxTokens = outputLen;
            }
            requests.add(new ClientRequest(new ClientRequest.Text(turn[0]), maxTokens));
        }
        return requests;
    }

    /**
     * The prompt and reply of the first user turn an assistant turn follows, or null. Turns are objects of
     * from/value or role/content, or (Firefly's format) one object per exchange with "human" and "assistant".
     */
    static String[] firstExchange(JsonNode conversation) {
        JsonNode turns = conversation.path("conversations");
        if (!turns.isArray()) {
            turns = conversation.path("conversation");
        }
        if (!turns.isArray()) {
            turns = conversation.path("messages");
        }
        for (JsonNode exchange : turns) {
            if (exchange.has("human") && exchange.has("assistant")) {
                String prompt = exchange.path("human").asText("");
                String reply = exchange.path("assistant").asText("");
                if (!prompt.isBlank() && !reply.isBlank()) {
                    return new String[] {prompt, reply};
                }
            }
        }
        for (int i = 0; i + 1 < turns.size(); i++) {
            String role = speaker(turns.get(i));
            if (USER_ROLES.contains(role) && ASSISTANT_ROLES.contains(speaker(turns.get(i + 1)))) {
                String prompt = text(turns.get(i));
                String reply = text(turns.get(i + 1));
                if (!prompt.isBlank() && !reply.isBlank()) {
                    return new String[] {prompt, reply};
                }
            }
        }
        return null;
    }

    private static String speaker(JsonNode turn) {
        return turn.path("from").asText(turn.path("role").asText("")).toLowerCase(Locale.ROOT);
    }

    private static String text(JsonNode turn) {
        return turn.path("value").asText(turn.path("content").asText(""));
    }

    /** The files seed 001 reads from its SHAREGPT_DIR, in its order. */
    static final List<String> SHAREGPT_DIR_FILES = List.of("sharegpt_gpt4.jsonl", "sharegpt_V3_format.jsonl",
            "sharegpt_zh_38K_format.jsonl");

    /** The records of a file, or of a directory's {@link #SHAREGPT_DIR_FILES} that are there (seed 001's SHAREGPT_DIR). */
    private static List<JsonNode> readJsonRecords(Path file) {
        if (Files.isDirectory(file)) {
            List<JsonNode> records = new ArrayList<>();
            boolean any = false;
            for (String name : SHAREGPT_DIR_FILES) {
                Path part = file.resolve(name);
                if (Files.isRegularFile(part)) {
                    any = true;
                    records.addAll(readJsonFile(part));
                }
            }
            if (!any) {
                throw new EmberException("the dataset directory " + file + " has none of " + String.join(", ", SHAREGPT_DIR_FILES));
            }
            return records;
        }
        return readJsonFile(file);
    }

    /** The records of a JSON array file or a JSON-lines file. */
    private static List<JsonNode> readJsonFile(Path file) {
        String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw new EmberException("cannot read the dataset " + file + ": " + e.getMessage());
        }
        List<JsonNode> records = new ArrayList<>();
        try {
            if (text.stripLeading().startsWith("[")) {
                JSON.readTree(text).forEach(records::add);
                return records;
            }
            int lineNumber = 0;
            for (String line : text.split("\n")) {
                lineNumber++;
                if (!line.isBlank()) {
                    try {
                        records.add(JSON.readTree(line));
                    } catch (JsonProcessingException e) {
                        throw new EmberException(file + " line " + lineNumber + " is not JSON: " + e.getOriginalMessage());
                    }
                }
            }
        } catch (IOException e) {
            throw new EmberException(file + " is not a JSON array: " + e.getMessage());
        }
        return records;
    }

    /** {@code count} requests from a file of prompts, one per non-blank line, taken in order and repeated as needed. */
    public static List<ClientRequest> prompts(Path file, int count, int outputLen) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file).stream().filter(l -> !l.isBlank()).toList();
        } catch (IOException e) {
            throw new EmberException("cannot read the prompts file " + file + ": " + e.getMessage());
        }
        if (lines.isEmpty()) {
            throw new EmberException("the prompts file " + file + " has no prompts");
        }
        List<ClientRequest> requests = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            requests.add(new ClientRequest(new ClientRequest.Text(lines.get(i % lines.size())), outputLen));
        }
        return requests;
    }
}
