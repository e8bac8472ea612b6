package dev.ember.server;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;
import dev.ember.engine.ServingEngine;
import dev.ember.grammar.Grammars;
import dev.ember.sampling.AllowedTokens;
import dev.ember.sampling.BadWords;
import dev.ember.sampling.OutputGrammar;
import dev.ember.sampling.ThinkingFirst;
import dev.ember.sampling.SamplingParams;
import dev.ember.tokenizer.ChatMessage;
import dev.ember.tokenizer.ChatOptions;
import dev.ember.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.LongSupplier;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Reads the body of a completion or chat request into a {@link CompletionRequest}: every field is either honoured or
 * refused with a 400 that names it (a client never gets something other than it asked for), prompts are tokenized
 * through the {@link PromptEncoder}, chat messages checked one by one. Also vLLM's {@code /tokenize} and
 * {@code /detokenize}, which read prompts the same way.
 */
final class RequestReader implements AutoCloseable {
    private static final int MAX_CHOICES = 128;
    /**
     * The fields both endpoints honour (or accept at a neutral value: OpenAI's {@code store}, {@code metadata},
     * {@code service_tier}, {@code safety_identifier} and {@code prompt_cache_key}, which clients send by habit and which
     * ask for nothing a local server could do otherwise: its prefix cache needs no key);
     * any other is refused by name.
     */
    private static final Set<String> COMMON_FIELDS = Stream.concat(Stream.of("model", "max_tokens", "temperature", "top_p",
            "top_k", "min_p", "repetition_penalty", "seed", "stop", "ignore_eos", "stream", "stream_options", "n",
            "presence_penalty", "frequency_penalty", "logprobs", "user", "logit_bias", "min_tokens", "stop_token_ids",
            "include_stop_str_in_output", "skip_special_tokens", "prompt_logprobs", "store", "metadata", "service_tier",
            "safety_identifier", "prompt_cache_key",
            "add_special_tokens", "truncate_prompt_tokens", "guided_decoding_backend", "allowed_token_ids", "request_id",
            "return_token_ids", "bad_words"),
            OutputConstraints.FIELDS.stream()).collect(Collectors.toUnmodifiableSet());
    private static final Set<String> TEXT_FIELDS = Set.of("prompt", "best_of", "echo");
    private static final Set<String> CHAT_FIELDS = Set.of("messages", "max_completion_tokens", "top_logprobs", "tools",
            "tool_choice", "parallel_tool_calls", "chat_template_kwargs", "add_generation_prompt", "continue_final_message",
            "modalities", "include_reasoning", "thinking_token_budget", "reasoning_effort");
    /** OpenAI's values of reasoning_effort. */
    private static final List<String> REASONING_EFFORTS = List.of("none", "minimal", "low", "medium", "high");
    /**
     * vLLM's fields that can only take their default here, taken at it (older clients, vLLM's own benchmarks among
     * them, send them by habit) and refused at any other value.
     */
    private static final Map<String, Object> DEFAULT_ONLY = Map.of("use_beam_search", false, "length_penalty", 1.0,
            "early_stopping", false, "spaces_between_special_tokens", true, "priority", 0, "return_tokens_as_token_ids", false);
    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool");
    private static final TypeReference<Map<String, Object>> MAP = new TypeReference<>() { };

    private final ServingEngine engine;
    private final Tokenizer tokenizer;
    private final PromptEncoder encoder;
    private final String modelName;
    private final List<String> modelNames;
    private final ObjectMapper json;
    private final OutputConstraints constraints;
    private final ToolCalls.Format toolCalls;
    private final Map<String, Double> samplingDefaults;
    private final LongSupplier seeds;
    private final int maxLogprobs;
    /** How a chat answer's thinking is told from it (null: it is not), and its tags' tokens (null where not tokens). */
    private final Reasoning reasoning;
    private final int[] thinkingTags;

    /**
     * @param modelNames       the model's name, then the further names requests may give it
     * @param toolCalls        the format calls are read in; null for the one the model's chat template teaches
     * @param samplingDefaults sampling values for requests that leave them out (the model's generation config), by
     *                         their fields' names; OpenAI's and vLLM's defaults for the rest
     * @param reasoning        how a chat answer's thinking is told from it; null where it is not
     * @param seeds            the seed of a request that gives none (thread-safe)
     * @param maxLogprobs      the most logprobs (and prompt logprobs) a request may ask for (vLLM's --max-logprobs)
     */
    RequestReader(ServingEngine engine, List<String> modelNames, ObjectMapper json, ToolCalls.Format toolCalls,
                  Map<String, Double> samplingDefaults, Reasoning reasoning, LongSupplier seeds, int maxLogprobs) {
        this.seeds = seeds;
        this.maxLogprobs = maxLogprobs;
        this.reasoning = reasoning;
        this.thinkingTags = thinkingTags(reasoning, engine.tokenizer());
        this.samplingDefaults = Map.copyOf(samplingDefaults);
        this.engine = engine;
        this.tokenizer = engine.tokenizer();
        this.encoder = new PromptEncoder(engine.tokenizer(), engine.contextLength());
        this.modelName = modelNames.getFirst();
        this.modelNames = List.copyOf(modelNames);
        this.json = json;
        this.constraints = new OutputConstraints(new Grammars(engine.tokenizer(), engine.endOfSequenceIds()), json);
        this.toolCalls = toolCalls != null ? toolCalls : ToolCalls.Format.of(engine.tokenizer());
    }

    CompletionRequest read(RequestFields fields, CompletionEndpoint.Kind kind) throws InterruptedException {
        refuseUnknown(fields, kind);
        String model = fields.string("model", modelName);
        if (!modelNames.contains(model)) {
            throw new ApiException(404, "not_found_error", "model", "model_not_found",
                    "the model \"" + model + "\" does not exist; this server serves \"" + modelName + "\"");
        }
        boolean stream = fields.bool("stream", false);
        int n = (int) fields.integer("n", 1, 1, MAX_CHOICES);
        int bestOf = kind == CompletionEndpoint.Kind.CHAT ? n : (int) fields.integer("best_of", n, 1, MAX_CHOICES);
        if (bestOf < n) {
            throw ApiException.invalid("best_of", "best_of = " + bestOf + " must be at least n = " + n);
        }
        if (stream && bestOf > n) {
            throw ApiException.invalid("best_of", "best_of > n cannot be streamed: the best are known only at the end");
        }
        int logprobs = logprobs(fields, kind);
        boolean echo = kind == CompletionEndpoint.Kind.TEXT && fields.bool("echo", false);
        int promptLogprobs = fields.has("prompt_logprobs")
                ? (int) fields.integer("prompt_logprobs", 0, 0, maxLogprobs) : -1;
        if (promptLogprobs >= 0 && stream) {
            throw ApiException.invalid("prompt_logprobs", "prompt_logprobs cannot be streamed (as in vLLM); echo with "
                    + "logprobs streams the prompt's log-probabilities in the completions format");
        }
        if (fields.has("modalities") && !"[\"text\"]".equals(fields.node("modalities").toString())) {
            throw ApiException.invalid("modalities", "modalities " + fields.node("modalities") + ": this server writes text only");
        }
        ToolCalls.Request tools = kind == CompletionEndpoint.Kind.CHAT ? ToolCalls.read(fields, tokenizer, toolCalls) : null;
        List<int[]> prompts = truncated(fields, kind == CompletionEndpoint.Kind.CHAT
                ? List.of(chatPrompt(fields, tools == null ? List.of() : tools.templateTools())) : textPrompts(fields));
        if ((long) prompts.size() * bestOf > CompletionRequest.MAX_SEQUENCES) {
            throw ApiException.invalid(bestOf > 1 ? "best_of" : "prompt", prompts.size() + " prompts x " + bestOf
                    + " choices is more than the " + CompletionRequest.MAX_SEQUENCES + " sequences one request may ask for");
        }
        String promptParam = kind == CompletionEndpoint.Kind.CHAT ? "messages" : "prompt";
        for (int i = 0; i < prompts.size(); i++) {
            try {
                engine.validate(prompts.get(i));
            } catch (EmberException e) {
                throw ApiException.invalid(promptParam, (prompts.size() > 1 ? "prompt " + i + ": " : "") + e.getMessage());
            }
        }
        boolean includeUsage = false, continuousUsage = false;
        if (fields.has("stream_options")) {
            if (!stream) {
                throw ApiException.invalid("stream_options", "stream_options is only allowed with \"stream\": true");
            }
            JsonNode options = fields.node("stream_options");
            if (!options.isObject()) {
                throw RequestFields.wrongType("stream_options", "an object", options);
            }
            RequestFields o = new RequestFields(options);
            includeUsage = o.bool("include_usage", false);
            continuousUsage = o.bool("continuous_usage_stats", false);
            if (continuousUsage && !includeUsage) {
                throw ApiException.invalid("stream_options.continuous_usage_stats",
                        "stream_options.continuous_usage_stats needs \"include_usage\": true");
            }
            for (Iterator<String> names = o.names(); names.hasNext(); ) {
                String name = names.next();
                if (!name.equals("include_usage") && !name.equals("continuous_usage_stats") && o.has(name)) {
                    throw ApiException.invalid("stream_options." + name, "stream_options." + name + " is not supported");
                }
            }
        }
        OutputGrammar grammar = constraints.read(fields);
        if (tools != null && (tools.choice() == ToolCalls.Choice.REQUIRED || tools.choice() == ToolCalls.Choice.NAMED)) {
            if (grammar != null) {
                throw ApiException.invalid("tool_choice", "tool_choice " + tools.choice().name().toLowerCase(java.util.Locale.ROOT)
                        + " makes the output a call; it cannot also follow response_format or a guided grammar");
            }
            grammar = constraints.toolCall(tools);
        }
        boolean structured = grammar != null;
        if (fields.has("allowed_token_ids")) {
            if (structured) {
                throw ApiException.invalid("allowed_token_ids", "allowed_token_ids with structured output or a forced tool call: "
                        + "the grammar decides which tokens may come");
            }
            BitSet allowed = new BitSet(tokenizer.vocabSize());
            tokenIds(fields, "allowed_token_ids").forEach(allowed::set);
            if (allowed.isEmpty()) {
                throw ApiException.invalid("allowed_token_ids", "allowed_token_ids must hold at least one token id");
            }
            grammar = new AllowedTokens(allowed);
        }
        if (fields.has("bad_words")) {
            if (grammar != null) {
                throw ApiException.invalid("bad_words", "bad_words with structured output, a forced tool call or "
                        + "allowed_token_ids: those decide which tokens may come");
            }
            grammar = badWords(fields.strings("bad_words"));
        }
        if (kind == CompletionEndpoint.Kind.CHAT) {
            grammar = thinkingFirst(fields, grammar, structured, prompts.getFirst());
        }
        // Mistral writes its calls after a special token, [TOOL_CALLS], which the text must keep to be read (as in vLLM).
        boolean skipSpecialTokens = fields.bool("skip_special_tokens", true)
                && !(tools != null && tools.parsed() && tools.format() == ToolCalls.Format.MISTRAL);
        // The prompt's scores are computed once for what both ask: echo's logprobs and vLLM's prompt_logprobs.
        SamplingParams base = samplingParams(fields, logprobs, bestOf > n)
                .withPromptLogprobs(Math.max(promptLogprobs, echo ? logprobs : -1)).withGrammar(grammar)
                .withSkipSpecialTokens(skipSpecialTokens);
        if (structured && base.minTokens() > 0) {
            throw ApiException.invalid("min_tokens", "min_tokens with structured output: the grammar decides where the output may end");
        }
        if (structured && base.ignoreEos()) {
            throw ApiException.invalid("ignore_eos", "ignore_eos with structured output: the grammar ends the output with an "
                    + "end-of-sequence token");
        }
        boolean generates = !(echo && fields.has("max_tokens") && fields.node("max_tokens").isIntegralNumber()
                && fields.node("max_tokens").asLong() == 0);
        List<SamplingParams> params = new ArrayList<>();
        for (int[] prompt : prompts) {
            params.add(generates ? base.withMaxTokens(maxTokens(fields, kind, prompt.length, base.minTokens()))
                    : base.withMinTokens(0).withMaxTokens(1));
        }
        // vLLM's request_id names the answer; its include_reasoning false leaves the thinking out of it.
        String requestId = fields.string("request_id", HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong()));
        String id = (kind == CompletionEndpoint.Kind.CHAT ? "chatcmpl-" : "cmpl-") + requestId;
        return new CompletionRequest(prompts, params, n, bestOf, stream, includeUsage, echo, generates, logprobs, promptLogprobs,
                tools != null && tools.parsed() ? tools : null, continuousUsage, id,
                kind != CompletionEndpoint.Kind.CHAT || fields.bool("include_reasoning", true), fields.bool("return_token_ids", false));
    }

    /**
     * The grammar of a chat answer that may think first: with a reasoning parser whose tags are tokens of their own, an
     * answer held to a grammar (structured output, a forced call) is held to it only after the thinking, as vLLM holds
     * it, and vLLM's {@code thinking_token_budget} closes the thinking after that many tokens. Otherwise the grammar
     * as it is, which holds the output from its first token.
     */
    private OutputGrammar thinkingFirst(RequestFields fields, OutputGrammar grammar, boolean structured, int[] prompt) {
        boolean budgeted = fields.has("thinking_token_budget");
        int budget = budgeted ? (int) fields.integer("thinking_token_budget", 0, 0, Integer.MAX_VALUE - 1) : ThinkingFirst.UNLIMITED;
        if (budgeted && thinkingTags == null) {
            throw ApiException.invalid("thinking_token_budget", reasoning == null
                    ? "a thinking budget needs the server's reasoning parser (--reasoning-parser qwen3 or deepseek_r1) to "
                    + "know where the thinking ends"
                    : "a thinking budget needs the thinking tags " + Reasoning.OPEN + " and " + Reasoning.CLOSE
                    + " to be tokens of their own, and this tokenizer splits them");
        }
        if (budgeted && grammar != null && !structured) {
            throw ApiException.invalid("thinking_token_budget", "thinking_token_budget with allowed_token_ids or bad_words: "
                    + "those hold the thinking too");
        }
        if (thinkingTags == null || !budgeted && !structured) {
            return grammar;
        }
        return new ThinkingFirst(grammar, thinkingTags[0], thinkingTags[1], budget, thinkingStart(prompt), engine.vocabSize(),
                engine.endOfSequenceIds());
    }

    /**
     * Where an answer begins, as the reasoning parser reads it: DeepSeek-R1's templates open the thinking in the prompt;
     * Qwen3 opens it itself, unless the prompt closed it already (its template's {@code enable_thinking: false}).
     */
    private ThinkingFirst.Start thinkingStart(int[] prompt) {
        if (reasoning == Reasoning.DEEPSEEK_R1) {
            return ThinkingFirst.Start.THINKING;
        }
        int last = prompt.length - 1;
        while (last >= 0 && tokenizer.decode(new int[] {prompt[last]}, false).isBlank()) {
            last--;
        }
        return last >= 0 && prompt[last] == thinkingTags[1] ? ThinkingFirst.Start.ANSWERING : ThinkingFirst.Start.MAY_THINK;
    }

    /** The thinking tags' tokens, opening then closing, where the reasoning parser has tags that are tokens of their own. */
    private static int[] thinkingTags(Reasoning reasoning, Tokenizer tokenizer) {
        if (reasoning == null) {
            return null;
        }
        int[] open = tokenizer.encode(Reasoning.OPEN, false), close = tokenizer.encode(Reasoning.CLOSE, false);
        return open.length == 1 && close.length == 1 ? new int[] {open[0], close[0]} : null;
    }

    /**
     * vLLM's {@code bad_words}: each word's tokens, as written and after a space (the word inside a text), unless the
     * space makes no token of its own difference; an empty list bans nothing.
     */
    private OutputGrammar badWords(List<String> words) throws InterruptedException {
        List<int[]> sequences = new ArrayList<>();
        for (String word : words) {
            if (word.isBlank()) {
                throw ApiException.invalid("bad_words", "bad_words holds an empty word");
            }
            int[] alone = encoder.encode(word.strip(), false, "bad_words");
            int[] inside = encoder.encode(" " + word.strip(), false, "bad_words");
            sequences.add(alone);
            if (!Arrays.equals(alone, inside) && inside.length > 0) {
                sequences.add(inside);
            }
        }
        return sequences.isEmpty() ? null : new BadWords(sequences, engine.vocabSize());
    }

    /** The logprobs asked for: -1 for none, else how many of the most likely tokens to list beside each token. */
    private int logprobs(RequestFields fields, CompletionEndpoint.Kind kind) {
        int max = maxLogprobs;
        if (kind == CompletionEndpoint.Kind.TEXT) {
            return fields.has("logprobs") ? (int) fields.integer("logprobs", 0, 0, max) : -1;
        }
        boolean on = fields.bool("logprobs", false);
        if (fields.has("top_logprobs") && !on) {
            throw ApiException.invalid("top_logprobs", "top_logprobs needs \"logprobs\": true");
        }
        return on ? (int) fields.integer("top_logprobs", 0, 0, max) : -1;
    }

    private int maxTokens(RequestFields fields, CompletionEndpoint.Kind kind, int promptLength, int minTokens) {
        int context = engine.contextLength();
        int room = context - promptLength;
        String maxName = kind == CompletionEndpoint.Kind.CHAT && fields.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        long maxTokens = fields.integer(maxName, room, Long.MIN_VALUE, Long.MAX_VALUE);
        if (maxTokens < 1) {
            throw ApiException.invalid(maxName, maxName + " = " + maxTokens + " must be at least 1"
                    + (kind == CompletionEndpoint.Kind.TEXT ? " (0 only with echo, which returns the prompt alone)" : ""));
        }
        if (maxTokens > room) {
            throw ApiException.invalid(maxName, maxName + " = " + maxTokens + " is too large: the context holds " + context
                    + " tokens and the prompt takes " + promptLength + ", so at most " + room + " can be generated");
        }
        if (minTokens > maxTokens) {
            throw ApiException.invalid("min_tokens", "min_tokens = " + minTokens + " is more than " + maxName + " = " + maxTokens);
        }
        return (int) maxTokens;
    }

    /** The sampling fields; max_tokens is set per prompt afterwards. */
    private SamplingParams samplingParams(RequestFields fields, int logprobs, boolean ranked) {
        int topK = (int) fields.integer("top_k", samplingDefaults.getOrDefault("top_k", 0.0).longValue(), -1, Integer.MAX_VALUE);
        int minTokens = (int) fields.integer("min_tokens", 0, 0, Integer.MAX_VALUE);
        boolean ignoreEos = fields.bool("ignore_eos", false);
        Set<Integer> stopIds = new HashSet<>(tokenIds(fields, "stop_token_ids"));
        Set<Integer> masked = new HashSet<>(stopIds);
        if (minTokens > 0 && !ignoreEos) {
            masked.addAll(engine.endOfSequenceIds());  // until min_tokens the sampler must not draw them either
        }
        try {
            return new SamplingParams((float) fields.number("temperature", samplingDefaults.getOrDefault("temperature", 1.0)),
                    Math.max(0, topK), (float) fields.number("top_p", samplingDefaults.getOrDefault("top_p", 1.0)),
                    (float) fields.number("min_p", samplingDefaults.getOrDefault("min_p", 0.0)),
                    (float) fields.number("repetition_penalty", samplingDefaults.getOrDefault("repetition_penalty", 1.0)),
                    fields.has("seed") ? fields.integer("seed", 0, Long.MIN_VALUE, Long.MAX_VALUE) : seeds.getAsLong(),
                    Math.max(1, minTokens), fields.strings("stop"), ignoreEos,
                    (float) fields.number("presence_penalty", 0), (float) fields.number("frequency_penalty", 0),
                    logitBias(fields), minTokens, minTokens > 0 ? masked : stopIds,
                    fields.bool("include_stop_str_in_output", false), ranked ? Math.max(0, logprobs) : logprobs);
        } catch (EmberException e) {
            String message = e.getMessage();
            String param = message.startsWith("invalid sampling parameter ") ? message.substring(27).split(" ")[0] : null;
            throw ApiException.invalid(param, message);
        }
    }

    /** OpenAI's {@code logit_bias}: an object from token ids (as strings) to a bias in [-100, 100]. */
    private Map<Integer, Float> logitBias(RequestFields fields) {
        if (!fields.has("logit_bias")) {
            return Map.of();
        }
        JsonNode node = fields.node("logit_bias");
        if (!node.isObject()) {
            throw RequestFields.wrongType("logit_bias", "an object from token ids to biases", node);
        }
        Map<Integer, Float> bias = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            int id;
            try {
                id = Integer.parseInt(e.getKey().strip());
            } catch (NumberFormatException x) {
                throw ApiException.invalid("logit_bias", "logit_bias key \"" + e.getKey() + "\" is not a token id");
            }
            if (id < 0 || id >= tokenizer.vocabSize()) {
                throw ApiException.invalid("logit_bias", "logit_bias: token id " + id + " is outside the vocabulary of "
                        + tokenizer.vocabSize() + " tokens");
            }
            if (!e.getValue().isNumber()) {
                throw RequestFields.wrongType("logit_bias", "an object of numbers", e.getValue());
            }
            bias.put(id, (float) e.getValue().asDouble());
        }
        return bias;
    }

    private List<Integer> tokenIds(RequestFields fields, String name) {
        if (!fields.has(name)) {
            return List.of();
        }
        JsonNode node = fields.node(name);
        if (!node.isArray()) {
            throw RequestFields.wrongType(name, "an array of token ids", node);
        }
        List<Integer> ids = new ArrayList<>();
        for (JsonNode id : node) {
            if (!id.isIntegralNumber() || !id.canConvertToInt() || id.asInt() < 0 || id.asInt() >= tokenizer.vocabSize()) {
                throw ApiException.invalid(name, name + " must hold token ids of the vocabulary (0 to "
                        + (tokenizer.vocabSize() - 1) + "), got " + id);
            }
            ids.add(id.asInt());
        }
        return ids;
    }

    /**
     * vLLM's {@code truncate_prompt_tokens}: each prompt cut to its last k tokens (-1: to as many as the context holds);
     * as given where the field is absent.
     */
    private List<int[]> truncated(RequestFields fields, List<int[]> prompts) {
        if (!fields.has("truncate_prompt_tokens")) {
            return prompts;
        }
        long k = fields.integer("truncate_prompt_tokens", -1, -1, Integer.MAX_VALUE);
        if (k == 0) {
            throw ApiException.invalid("truncate_prompt_tokens", "truncate_prompt_tokens must be at least 1 (the tokens kept "
                    + "from the prompt's end), or -1 for as many as the context holds");
        }
        int keep = k == -1 ? engine.contextLength() : (int) k;
        return prompts.stream().map(p -> p.length > keep ? Arrays.copyOfRange(p, p.length - keep, p.length) : p).toList();
    }

    /** Any field outside those honoured is refused by name; a few with the reason. */
    private static void refuseUnknown(RequestFields fields, CompletionEndpoint.Kind kind) {
        for (Iterator<String> names = fields.names(); names.hasNext(); ) {
            String name = names.next();
            if (COMMON_FIELDS.contains(name) || (kind == CompletionEndpoint.Kind.CHAT ? CHAT_FIELDS : TEXT_FIELDS).contains(name)) {
                continue;
            }
            if (!fields.has(name)) {
                continue;  // an explicit null is the same as leaving the field out
            }
            if (DEFAULT_ONLY.containsKey(name)) {
                Object only = DEFAULT_ONLY.get(name);
                JsonNode value = fields.node(name);
                boolean isDefault = only instanceof Boolean b ? value.isBoolean() && value.asBoolean() == b
                        : value.isNumber() && value.asDouble() == ((Number) only).doubleValue();
                if (isDefault) {
                    continue;
                }
                throw ApiException.invalid(name, name + " = " + value + " is not supported: this server takes only " + only
                        + ", its default" + (name.equals("use_beam_search") || name.equals("length_penalty")
                        || name.equals("early_stopping") ? " (beam search is not supported)" : ""));
            }
            String reason = switch (name) {
                case "suffix" -> "suffix (insertion) is not supported";
                case "functions", "function_call" -> name + " (OpenAI's older function calling) is not supported: send tools and tool_choice";
                case "guided_whitespace_pattern" -> name + " is not supported: JSON outputs take the whitespace JSON allows";
                case "best_of", "echo", "prompt" -> name + " is a field of /v1/completions, not of /v1/chat/completions";
                case "messages", "top_logprobs", "max_completion_tokens", "tools", "tool_choice", "chat_template_kwargs" ->
                        name + " is a field of /v1/chat/completions, not of /v1/completions";
                default -> name + " is not supported by this server";
            };
            if (reason != null) {
                throw ApiException.invalid(name, reason);
            }
        }
    }

    /**
     * The prompts of {@code /v1/completions}: a string, token ids (an array of integers), or a list of either, each its
     * own prompt.
     */
    private List<int[]> textPrompts(RequestFields fields) throws InterruptedException {
        if (!fields.has("prompt")) {
            throw ApiException.invalid("prompt", "prompt is required");
        }
        JsonNode prompt = fields.node("prompt");
        boolean addSpecialTokens = fields.bool("add_special_tokens", true);
        if (prompt.isTextual() || prompt.isArray() && !prompt.isEmpty() && prompt.get(0).isNumber()) {
            return List.of(textPrompt(prompt, addSpecialTokens));
        }
        if (!prompt.isArray() || prompt.isEmpty()) {
            throw RequestFields.wrongType("prompt", "a string, an array of token ids, or a non-empty list of either", prompt);
        }
        if (prompt.size() > CompletionRequest.MAX_SEQUENCES) {
            throw ApiException.invalid("prompt", prompt.size() + " prompts are more than the " + CompletionRequest.MAX_SEQUENCES + " one request may hold");
        }
        long chars = 0;
        for (JsonNode p : prompt) {
            chars += p.isTextual() ? p.asText().length() : 0;
        }
        encoder.checkLength(chars / prompt.size(), "prompt");
        List<int[]> prompts = new ArrayList<>();
        for (JsonNode p : prompt) {
            prompts.add(textPrompt(p, addSpecialTokens));
        }
        return prompts;
    }

    private int[] textPrompt(JsonNode prompt, boolean addSpecialTokens) throws InterruptedException {
        if (prompt.isTextual()) {
            return encoder.encode(prompt.asText(), addSpecialTokens, "prompt");
        }
        if (prompt.isArray() && !prompt.isEmpty()) {
            int[] ids = new int[prompt.size()];
            for (int i = 0; i < ids.length; i++) {
                JsonNode id = prompt.get(i);
                if (!id.isIntegralNumber() || !id.canConvertToInt()) {
                    throw RequestFields.wrongType("prompt", "a string or an array of token ids", prompt);
                }
                ids[i] = id.asInt();
            }
            return ids;
        }
        throw RequestFields.wrongType("prompt", "a string or an array of token ids", prompt);
    }

    /**
     * A chat request's prompt: its messages through the chat template with the request's tools, vLLM's
     * {@code chat_template_kwargs} and where the prompt ends ({@code add_generation_prompt}, default true, or
     * {@code continue_final_message}).
     */
    private int[] chatPrompt(RequestFields fields, List<Map<String, Object>> templateTools) throws InterruptedException {
        List<ChatMessage> given = toolCalls == null ? messages(fields) : toolCalls.history(messages(fields));
        // OpenAI's developer messages are the system's instructions under a newer name; a template that does not know
        // the role would drop them (or refuse the conversation), so they reach it as the system's.
        List<ChatMessage> turns = tokenizer.chatTemplateContains("developer") ? given : given.stream().map(t -> t.role().equals("developer")
                ? new ChatMessage("system", t.content(), t.toolCalls(), t.toolCallId(), t.reasoning()) : t).toList();
        long chars = 0;
        for (ChatMessage turn : turns) {
            chars += turn.content().length();
        }
        encoder.checkLength(chars, "messages");
        boolean continueFinal = fields.bool("continue_final_message", false);
        boolean generationPrompt = fields.bool("add_generation_prompt", !continueFinal);
        if (continueFinal && generationPrompt) {
            throw ApiException.invalid("continue_final_message", "continue_final_message and add_generation_prompt both "
                    + "say where the prompt ends: give one");
        }
        Map<String, Object> variables = new HashMap<>();
        if (fields.has("reasoning_effort")) {
            // As vLLM: the template's to read (gpt-oss's do; one that does not, as Qwen3's, thinks as it would).
            String effort = fields.string("reasoning_effort", "");
            if (!REASONING_EFFORTS.contains(effort)) {
                throw ApiException.invalid("reasoning_effort", "reasoning_effort must be one of " + REASONING_EFFORTS
                        + ", got " + RequestFields.describe(fields.node("reasoning_effort")));
            }
            variables.put("reasoning_effort", effort);
        }
        if (fields.has("chat_template_kwargs")) {
            JsonNode kwargs = fields.node("chat_template_kwargs");
            if (!kwargs.isObject()) {
                throw RequestFields.wrongType("chat_template_kwargs", "an object of template variables", kwargs);
            }
            variables.putAll(json.convertValue(kwargs, MAP));
        }
        ChatOptions options = new ChatOptions(generationPrompt, continueFinal, templateTools, variables);
        // A template writes its own special tokens; the plain fallback does not, so the tokenizer adds them (vLLM's
        // add_special_tokens may ask for them on top of a template's).
        boolean addSpecialTokens = fields.bool("add_special_tokens", !tokenizer.hasChatTemplate());
        return encoder.run(() -> tokenizer.encode(tokenizer.applyChatTemplate(turns, options), addSpecialTokens), "messages");
    }

    /** The chat messages, each with a known role and text content; a bad one is a 400 naming it ({@code messages[2].content}). */
    private static List<ChatMessage> messages(RequestFields fields) {
        JsonNode messages = fields.node("messages");
        if (messages == null || messages.isNull()) {
            throw ApiException.invalid("messages", "messages is required");
        }
        if (!messages.isArray() || messages.isEmpty()) {
            throw RequestFields.wrongType("messages", "a non-empty array of messages", messages);
        }
        List<ChatMessage> turns = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            String at = "messages[" + i + "]";
            JsonNode message = messages.get(i);
            if (!message.isObject()) {
                throw RequestFields.wrongType(at, "an object with \"role\" and \"content\"", message);
            }
            RequestFields m = new RequestFields(message);
            if (!m.has("role")) {
                throw ApiException.invalid(at + ".role", at + " has no \"role\"");
            }
            String role = m.string("role", null);
            if (!ROLES.contains(role)) {
                throw ApiException.invalid(at + ".role", at + ".role \"" + role + "\" is not one of " + String.join(", ", ROLES.stream().sorted().toList()));
            }
            // An assistant turn may carry back the thinking a reasoning parser split off (vLLM's reasoning_content,
            // or reasoning), which templates such as Qwen3's write for the turns after the last question.
            Set<String> allowed = role.equals("assistant") ? Set.of("role", "content", "name", "tool_calls", "reasoning_content", "reasoning")
                    : role.equals("tool") ? Set.of("role", "content", "tool_call_id") : Set.of("role", "content", "name");
            for (Iterator<String> names = m.names(); names.hasNext(); ) {
                String name = names.next();
                if (!allowed.contains(name) && m.has(name)) {
                    throw ApiException.invalid(at + "." + name, at + "." + name + " is not supported"
                            + (name.startsWith("tool_") ? " in a message of role " + role : ""));
                }
            }
            List<Map<String, Object>> calls = ToolCalls.historyCalls(m, at + ".tool_calls");
            String content = calls.isEmpty() || m.has("content") ? content(m, at + ".content") : "";
            String callId = role.equals("tool") ? m.string("tool_call_id", null) : null;
            String reasoning = m.string("reasoning_content", m.string("reasoning", null));
            turns.add(new ChatMessage(role, content, calls, callId, reasoning));
        }
        return turns;
    }

    /** A message's content: a string, or an array of text parts. */
    private static String content(RequestFields message, String param) {
        if (!message.has("content")) {
            throw ApiException.invalid(param, param + " is missing (or null): every message needs its text");
        }
        JsonNode content = message.node("content");
        if (content.isTextual()) {
            return content.asText();
        }
        if (content.isArray()) {
            StringBuilder text = new StringBuilder();
            for (JsonNode part : content) {
                // input_text as the Responses API writes text parts, which clients of both send
                if (!part.isObject() || !Set.of("text", "input_text").contains(part.path("type").asText()) || !part.path("text").isTextual()) {
                    throw ApiException.invalid(param, param + ": only content parts {\"type\": \"text\", \"text\": \"...\"} are supported, got "
                            + RequestFields.describe(part));
                }
                text.append(part.get("text").asText());
            }
            return text.toString();
        }
        throw RequestFields.wrongType(param, "a string or an array of content parts", content);
    }

    /**
     * vLLM's {@code POST /tokenize}: {@code {"prompt": text}} (with {@code add_special_tokens}, default true) or
     * {@code {"messages": [...]}} (rendered with the chat template, as a chat request would be), answered with the ids.
     */
    ObjectNode tokenize(RequestFields fields) throws InterruptedException {
        for (Iterator<String> names = fields.names(); names.hasNext(); ) {
            String name = names.next();
            if (!Set.of("model", "prompt", "messages", "add_special_tokens", "add_generation_prompt", "continue_final_message",
                    "chat_template_kwargs", "tools").contains(name) && fields.has(name)) {
                throw ApiException.invalid(name, name + " is not supported by /tokenize");
            }
        }
        int[] ids;
        if (fields.has("messages")) {
            ids = chatPrompt(fields, ToolCalls.forTemplate(fields));
        } else if (fields.has("prompt")) {
            String prompt = fields.string("prompt", "");
            ids = encoder.encode(prompt, fields.bool("add_special_tokens", true), "prompt");
        } else {
            throw ApiException.invalid("prompt", "send \"prompt\" (a string) or \"messages\"");
        }
        ObjectNode out = json.createObjectNode();
        out.put("count", ids.length);
        out.put("max_model_len", engine.contextLength());
        ArrayNode tokens = out.putArray("tokens");
        for (int id : ids) {
            tokens.add(id);
        }
        return out;
    }

    /** vLLM's {@code POST /detokenize}: {@code {"tokens": [ids]}} answered with {@code {"prompt": text}}. */
    ObjectNode detokenize(RequestFields fields) {
        for (Iterator<String> names = fields.names(); names.hasNext(); ) {
            String name = names.next();
            if (!name.equals("model") && !name.equals("tokens") && fields.has(name)) {
                throw ApiException.invalid(name, name + " is not supported by /detokenize");
            }
        }
        if (!fields.has("tokens")) {
            throw ApiException.invalid("tokens", "tokens is required");
        }
        List<Integer> ids = tokenIds(fields, "tokens");
        int[] array = ids.stream().mapToInt(Integer::intValue).toArray();
        ObjectNode out = json.createObjectNode();
        out.put("prompt", tokenizer.decode(array, true));
        return out;
    }

    @Override
    public void close() {
        encoder.close();
    }
}
