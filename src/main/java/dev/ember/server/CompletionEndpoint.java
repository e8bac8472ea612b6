package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ember.EmberException;
import dev.ember.engine.RequestError;
import dev.ember.engine.RequestEvent;
import dev.ember.engine.RequestHandle;
import dev.ember.engine.RequestOutcome;
import dev.ember.engine.RequestOutput;
import dev.ember.engine.ServingEngine;
import dev.ember.sampling.SamplingParams;
import dev.ember.sampling.ScoredToken;
import dev.ember.sampling.TokenLogprobs;
import dev.ember.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;

/**
 * {@code POST /v1/completions} and {@code POST /v1/chat/completions}: the request read ({@link RequestReader}), its
 * sequences (prompts x {@code best_of}) submitted to the engine, and its choices written back whole or as server-sent
 * events ({@code data: {chunk}} lines ending with {@code data: [DONE]}), logprobs in each endpoint's OpenAI format. A
 * streaming client that goes away is noticed at the next write, and its request is cancelled.
 */
final class CompletionEndpoint {
    enum Kind { TEXT, CHAT }


    private final ServingEngine engine;
    private final Tokenizer tokenizer;
    private final RequestReader reader;
    private final String modelName;
    private final ObjectMapper json;
    private final BooleanSupplier aborting;
    private final Reasoning reasoning;

    /**
     * @param modelNames the model's name in answers, then every name requests may give it
     * @param aborting  whether the server's drain has timed out, so that requests cut off now end as aborted
     * @param reasoning how a chat answer's thinking is split from it; null to leave it in the content
     * @param toolCalls the format calls are read in; null for the one the model's chat template teaches
     * @param samplingDefaults sampling values for requests that leave them out, by their fields' names
     * @param seeds     the seed of a request that gives none (thread-safe)
     * @param maxLogprobs the most logprobs a request may ask for
     */
    CompletionEndpoint(ServingEngine engine, List<String> modelNames, ObjectMapper json, BooleanSupplier aborting, Reasoning reasoning,
                       ToolCalls.Format toolCalls, Map<String, Double> samplingDefaults, LongSupplier seeds, int maxLogprobs) {
        this.engine = engine;
        this.tokenizer = engine.tokenizer();
        this.reader = new RequestReader(engine, modelNames, json, toolCalls, samplingDefaults, reasoning, seeds, maxLogprobs);
        this.modelName = modelNames.getFirst();
        this.json = json;
        this.aborting = aborting;
        this.reasoning = reasoning;
    }

    RequestReader reader() {
        return reader;
    }

    /** Stops the tokenizing threads. */
    void close() {
        reader.close();
    }

    /**
     * Where an answer goes: straight to the client in the completions' format ({@link #to}), or through another API's
     * shape ({@link ChatAdapter}: OpenAI's Responses, Anthropic's Messages). A stream's chunks come between its start and
     * end; an error in the middle of one is a chunk holding OpenAI's error body.
     */
    interface Answer {
        void whole(ObjectNode body) throws IOException;

        void startStream() throws IOException;

        void chunk(ObjectNode chunk) throws IOException;

        void endStream() throws IOException;

        /** Runs {@code action} if the client leaves before the answer starts ({@link Exchange#onClientGone}). */
        void onClientGone(Runnable action);

        /** An answer another API writes whole: the stream's methods are never called. */
        interface Whole extends Answer {
            @Override
            default void startStream() {
                throw new IllegalStateException("a whole answer does not stream");
            }

            @Override
            default void chunk(ObjectNode chunk) {
                throw new IllegalStateException("a whole answer does not stream");
            }

            @Override
            default void endStream() {
                throw new IllegalStateException("a whole answer does not stream");
            }
        }

        /** The completions' own: a JSON body, or server-sent events ending with {@code data: [DONE]}. */
        static Answer to(Exchange exchange, ObjectMapper json) {
            return new Answer() {
                @Override
                public void whole(ObjectNode body) throws IOException {
                    exchange.sendJson(200, json.writeValueAsBytes(body));
                }

                @Override
                public void startStream() {
                    exchange.startEventStream();
                }

                @Override
                public void onClientGone(Runnable action) {
                    exchange.onClientGone(action);
                }

                @Override
                public void chunk(ObjectNode chunk) throws IOException {
                    exchange.sendEvent(json.writeValueAsBytes(chunk));
                }

                @Override
                public void endStream() throws IOException {
                    exchange.endEventStream();
                }
            };
        }
    }

    void handle(Exchange exchange, JsonNode body, Kind kind) throws IOException, InterruptedException {
        handle(Answer.to(exchange, json), reader.read(new RequestFields(body), kind), kind);
    }

    /** Runs a request read (by {@link #reader()}) and writes its answer to {@code answer}. */
    void handle(Answer answer, CompletionRequest request, Kind kind) throws IOException, InterruptedException {
        List<RequestHandle> handles = new ArrayList<>();
        try {
            for (int p = 0; p < request.prompts().size(); p++) {
                for (int j = 0; j < request.bestOf(); j++) {
                    SamplingParams params = request.params().get(p);
                    params = params.withSeed(params.seed() + handles.size());
                    handles.add(engine.submit(request.prompts().get(p), params, request.stream()));
                }
            }
        } catch (ServingEngine.ShutDownException e) {
            handles.forEach(RequestHandle::cancel);
            throw new ApiException(503, "service_unavailable", null, null, e.getMessage());
        } catch (EmberException e) {
            handles.forEach(RequestHandle::cancel);
            throw ApiException.invalid(kind == Kind.CHAT ? "messages" : "prompt", e.getMessage());
        }
        Response response = new Response(kind, request.id(), System.currentTimeMillis() / 1000, request);
        answer.onClientGone(() -> handles.forEach(RequestHandle::cancel));
        try {
            if (request.stream()) {
                stream(answer, handles, response);
            } else {
                respond(answer, handles, response);
            }
        } catch (IOException | InterruptedException | RuntimeException e) {
            // The client went away (or writing failed): stop generating for it.
            handles.forEach(RequestHandle::cancel);
            throw e;
        }
    }


    private void respond(Answer answer, List<RequestHandle> handles, Response response)
            throws IOException, InterruptedException {
        CompletionRequest request = response.request();
        List<RequestOutput> outputs = new ArrayList<>();
        for (RequestHandle handle : handles) {
            RequestOutcome outcome = handle.await();
            if (outcome instanceof RequestError(String message)) {
                throw engineError(message);
            }
            outputs.add((RequestOutput) outcome);
        }
        ObjectNode body = response.envelope(false);
        ArrayNode choices = body.putArray("choices");
        List<RequestOutput> chosen = new ArrayList<>();
        for (int p = 0; p < request.prompts().size(); p++) {
            List<RequestOutput> candidates = new ArrayList<>(outputs.subList(p * request.bestOf(), (p + 1) * request.bestOf()));
            if (request.bestOf() > request.n()) {
                candidates.sort(Comparator.comparingDouble(RequestOutput::cumulativeLogprob).reversed());
            }
            for (int j = 0; j < request.n(); j++) {
                RequestOutput out = candidates.get(j);
                chosen.add(out);
                ObjectNode choice = choices.addObject();
                choice.put("index", p * request.n() + j);
                int[] prompt = request.prompts().get(p);
                String text = (request.echo() ? tokenizer.decode(prompt, true) : "") + (request.generates() ? out.text() : "");
                String finish = request.generates() ? out.finishReason().apiName() : "length";
                if (response.kind() == Kind.CHAT) {
                    ObjectNode message = choice.putObject("message");
                    message.put("role", "assistant");
                    finish = response.message(message, text, finish);
                } else {
                    choice.put("text", text);
                }
                if (request.logprobs() >= 0) {
                    choice.set("logprobs", response.logprobs(request.echo() ? prompt : null, out.promptLogprobs(),
                            request.generates() ? out.logprobs() : List.of(), 0));
                } else {
                    choice.putNull("logprobs");
                }
                choice.put("finish_reason", finish);
                choice.set("stop_reason", request.generates() ? stopReason(out) : null);
                if (request.promptLogprobs() >= 0 && response.kind() == Kind.TEXT) {
                    choice.set("prompt_logprobs", response.promptLogprobs(out.promptLogprobs()));
                }
                if (request.returnTokenIds()) {
                    if (response.kind() == Kind.TEXT) {
                        choice.set("prompt_token_ids", json.valueToTree(prompt));
                    }
                    choice.set("token_ids", json.valueToTree(request.generates() ? out.tokens() : new int[0]));
                }
            }
        }
        if (request.promptLogprobs() >= 0 && response.kind() == Kind.CHAT) {
            body.set("prompt_logprobs", response.promptLogprobs(chosen.getFirst().promptLogprobs()));  // one prompt
        }
        if (request.returnTokenIds() && response.kind() == Kind.CHAT) {
            body.set("prompt_token_ids", json.valueToTree(request.prompts().getFirst()));
        }
        body.set("usage", usage(request, chosen));
        answer.whole(body);
    }

    /** An event of one of a request's choices, as the stream's one writer takes them. */
    private record ChoiceEvent(int choice, RequestEvent event) {
    }

    /** Where the stream's one writer takes its events from, whichever choice they are of. */
    @FunctionalInterface
    private interface ChoiceEvents {
        ChoiceEvent next() throws InterruptedException;
    }

    /**
     * Streams every choice's tokens as they come. One choice is read straight from its handle; with several, one reader
     * per choice forwards its events to the one thread that writes (the response is not shared between threads).
     */
    private void stream(Answer answer, List<RequestHandle> handles, Response response)
            throws IOException, InterruptedException {
        if (handles.size() == 1) {
            RequestHandle handle = handles.getFirst();
            writeStream(answer, () -> new ChoiceEvent(0, handle.nextEvent()), 1, response);
            return;
        }
        BlockingQueue<ChoiceEvent> events = new LinkedBlockingQueue<>();
        List<Thread> readers = new ArrayList<>();
        for (int i = 0; i < handles.size(); i++) {
            RequestHandle handle = handles.get(i);
            int choice = i;
            readers.add(Thread.ofVirtual().name("ember-choice-" + i).start(() -> {
                try {
                    RequestEvent event;
                    do {
                        event = handle.nextEvent();
                        events.add(new ChoiceEvent(choice, event));
                    } while (!(event instanceof RequestEvent.Done));
                } catch (InterruptedException e) {
                    // the writer gave up on the stream
                }
            }));
        }
        try {
            writeStream(answer, events::take, handles.size(), response);
        } finally {
            readers.forEach(Thread::interrupt);
        }
    }

    private void writeStream(Answer answer, ChoiceEvents events, int count, Response response)
            throws IOException, InterruptedException {
        CompletionRequest request = response.request();
        answer.startStream();
        int[] sentChars = new int[count];
        StreamedIds ids = request.returnTokenIds() ? new StreamedIds(response, count) : null;
        // A chat answer whose thinking is split off or whose calls are read is reshaped as it streams, a choice each.
        ShapedChoice[] shaped = new ShapedChoice[count];
        if (response.kind() == Kind.CHAT && (reasoning != null || request.tools() != null)) {
            java.util.Arrays.setAll(shaped, i -> new ShapedChoice(response, i));
        }
        // An echo with logprobs waits for the prompt's scores, which come ahead of the first token.
        boolean echoScored = request.echo() && request.logprobs() >= 0;
        for (int i = 0; i < count; i++) {
            String echoed = request.echo() && !echoScored ? tokenizer.decode(request.prompts().get(i / request.n()), true) : "";
            if (response.kind() == Kind.CHAT || !echoed.isEmpty()) {
                ObjectNode first = response.chunk();
                ObjectNode choice = response.choice(first, i, echoed, null);
                if (response.kind() == Kind.CHAT) {
                    ((ObjectNode) choice.get("delta")).put("role", "assistant");
                }
                send(answer, first, ids, i);
            }
        }
        List<RequestOutput> outputs = new ArrayList<>();
        for (int done = 0; done < count; ) {
            ChoiceEvent next = events.next();
            int i = next.choice();
            switch (next.event()) {
                case RequestEvent.PromptScores(List<ScoredToken> scores) -> {
                    if (echoScored) {
                        int[] prompt = request.prompts().get(i / request.n());
                        ObjectNode chunk = response.chunk();
                        ObjectNode choice = response.choice(chunk, i, tokenizer.decode(prompt, true), null);
                        choice.set("logprobs", response.logprobs(prompt, scores, List.of(), 0));
                        send(answer, chunk, ids, i);
                    }
                }
                case RequestEvent.Token(int token, String text, TokenLogprobs logprobs) -> {
                    response.generatedSoFar += request.generates() ? 1 : 0;
                    if (ids != null && request.generates()) {
                        ids.generated(i, token);
                    }
                    // An echo of the prompt alone leaves out the one token computed.
                    if (shaped[i] != null) {
                        for (ObjectNode chunk : shaped[i].take(text, logprobs == null ? null : response.logprobs(List.of(logprobs), sentChars[i]))) {
                            send(answer, chunk, ids, i);
                        }
                        sentChars[i] += text.length();
                    } else if (request.generates() && (!text.isEmpty() || logprobs != null)) {
                        ObjectNode chunk = response.chunk();
                        ObjectNode choice = response.choice(chunk, i, text, null);
                        if (logprobs != null) {
                            choice.set("logprobs", response.logprobs(List.of(logprobs), sentChars[i]));
                        }
                        send(answer, chunk, ids, i);
                        sentChars[i] += text.length();
                    }
                }
                case RequestEvent.Done(RequestOutput output) when shaped[i] != null -> {
                    List<ObjectNode> chunks = shaped[i].end(output.text().substring(sentChars[i]), output.finishReason().apiName());
                    ((ObjectNode) chunks.getLast().at("/choices/0")).set("stop_reason", stopReason(output));
                    for (ObjectNode chunk : chunks) {
                        send(answer, chunk, ids, i);
                    }
                    outputs.add(output);
                    done++;
                }
                case RequestEvent.Done(RequestOutput output) -> {
                    // Text held back until the end (an unfinished character, a partial stop string) comes last.
                    ObjectNode last = request.generates()
                            ? response.finalChunk(i, output.text().substring(sentChars[i]), output.finishReason().apiName())
                            : response.finalChunk(i, "", "length");
                    ((ObjectNode) last.at("/choices/0")).set("stop_reason", request.generates() ? stopReason(output) : null);
                    send(answer, last, ids, i);
                    outputs.add(output);
                    done++;
                }
                case RequestEvent.Done(RequestError(String message)) -> {
                    if (!aborting.getAsBoolean()) {
                        send(answer, OpenAiServer.errorBody(json, engineError(message)));
                        answer.endStream();
                        throw new ApiException(500, "internal_error", null, null, message);  // ends the other choices
                    }
                    // The drain timed out: the choice ends as a stream does, its finish reason saying why.
                    send(answer, response.finalChunk(i, "", "abort"), ids, i);
                    done++;
                }
            }
        }
        if (request.includeUsage()) {
            ObjectNode usage = response.envelope(true);
            usage.putArray("choices");
            usage.set("usage", usage(request, outputs));
            send(answer, usage);
        }
        answer.endStream();
    }

    /** vLLM's {@code stop_reason}: the request's stop string or stop token that ended the output, else null. */
    private JsonNode stopReason(RequestOutput output) {
        return output.stopString() != null ? json.getNodeFactory().textNode(output.stopString())
                : output.stopToken() >= 0 ? json.getNodeFactory().numberNode(output.stopToken()) : json.getNodeFactory().nullNode();
    }

    private ApiException engineError(String message) {
        return engine.isAdmitting() ? new ApiException(500, "internal_error", null, null, message)
                : new ApiException(503, "service_unavailable", null, null, message);
    }

    /** Prompt tokens once per prompt, completion tokens of every choice returned. */
    private ObjectNode usage(CompletionRequest request, List<RequestOutput> outputs) {
        int prompt = request.promptTokens();
        int completion = 0;
        int cached = 0;
        for (RequestOutput out : outputs) {
            completion += request.generates() ? out.generatedTokenCount() : 0;
            cached = Math.max(cached, out.cachedPromptTokens());
        }
        ObjectNode usage = json.createObjectNode();
        usage.put("prompt_tokens", prompt);
        usage.put("completion_tokens", completion);
        usage.put("total_tokens", prompt + completion);
        usage.putObject("prompt_tokens_details").put("cached_tokens", cached);
        return usage;
    }

    private void send(Answer answer, ObjectNode event) throws IOException {
        answer.chunk(event);
    }

    /** Sends a chunk of choice {@code choice}, with its token ids where the request asked for them ({@code ids} not null). */
    private void send(Answer answer, ObjectNode chunk, StreamedIds ids, int choice) throws IOException {
        if (ids != null) {
            ids.attach(chunk, choice);
        }
        send(answer, chunk);
    }

    /**
     * vLLM's {@code return_token_ids} while streaming: the first chunk of each choice gives its prompt's ids (a chat
     * chunk's at its top, a completion's in its choice), and every chunk the ids of the tokens generated since the choice's
     * chunk before (text held back holds its tokens' ids back with it).
     */
    private final class StreamedIds {
        private final Response response;
        private final List<List<Integer>> pending = new ArrayList<>();
        private final boolean[] promptGiven;

        StreamedIds(Response response, int choices) {
            this.response = response;
            this.promptGiven = new boolean[choices];
            for (int i = 0; i < choices; i++) {
                pending.add(new ArrayList<>());
            }
        }

        void generated(int choice, int token) {
            pending.get(choice).add(token);
        }

        void attach(ObjectNode chunk, int choice) {
            ObjectNode c = (ObjectNode) chunk.at("/choices/0");
            if (!promptGiven[choice]) {
                promptGiven[choice] = true;
                int[] prompt = response.request().prompts().get(choice / response.request().n());
                (response.kind() == Kind.CHAT ? chunk : c).set("prompt_token_ids", json.valueToTree(prompt));
            }
            c.set("token_ids", json.valueToTree(pending.get(choice)));
            pending.get(choice).clear();
        }
    }

    /** How one request's answer is written: its envelope, its chunks, and its logprobs in its endpoint's format. */
    private final class Response {
        private final Kind kind;
        private final String id;
        private final long created;
        private final CompletionRequest request;
        /** Tokens the stream's choices have generated so far, for continuous usage. */
        private int generatedSoFar;

        Response(Kind kind, String id, long created, CompletionRequest request) {
            this.kind = kind;
            this.id = id;
            this.created = created;
            this.request = request;
        }

        Kind kind() {
            return kind;
        }

        CompletionRequest request() {
            return request;
        }

        ObjectNode envelope(boolean chunk) {
            ObjectNode body = json.createObjectNode();
            body.put("id", id);
            body.put("object", kind == Kind.CHAT ? chunk ? "chat.completion.chunk" : "chat.completion" : "text_completion");
            body.put("created", created);
            body.put("model", modelName);
            return body;
        }

        ObjectNode chunk() {
            ObjectNode chunk = envelope(true);
            chunk.putArray("choices");
            if (request.continuousUsage()) {
                int prompt = request.promptTokens();
                chunk.putObject("usage").put("prompt_tokens", prompt).put("completion_tokens", generatedSoFar)
                        .put("total_tokens", prompt + generatedSoFar);
            } else if (request.includeUsage()) {
                chunk.putNull("usage");
            }
            return chunk;
        }

        /** Adds a choice with {@code text} to {@code chunk} and returns it. */
        ObjectNode choice(ObjectNode chunk, int index, String text, String finishReason) {
            ObjectNode choice = chunk.withArray("choices").addObject();
            choice.put("index", index);
            if (kind == Kind.CHAT) {
                ObjectNode delta = choice.putObject("delta");
                if (!text.isEmpty() || finishReason == null) {
                    delta.put("content", text);
                }
            } else {
                choice.put("text", text);
            }
            choice.putNull("logprobs");
            choice.put("finish_reason", finishReason);
            return choice;
        }

        /**
         * A chat answer's message: its content, and where the request has tools, the calls read out
         * of {@code text} as OpenAI lists them, the content then being the text outside them (null if none). Returns the
         * finish reason: "tool_calls" where the model stopped after calling.
         */
        String message(ObjectNode message, String text, String finishReason) {
            if (reasoning != null) {
                Reasoning.Split split = reasoning.split(text);
                if (split.reasoning() != null && request.includeReasoning()) {
                    message.put("reasoning_content", split.reasoning());
                }
                text = split.content();
            }
            if (request.tools() == null || text == null) {
                message.put("content", text);
                return finishReason;
            }
            ToolCalls.Parsed parsed = request.tools().read(text);
            message.put("content", parsed.content());
            if (parsed.calls().isEmpty()) {
                return finishReason;
            }
            ArrayNode calls = message.putArray("tool_calls");
            for (ToolCalls.Call call : parsed.calls()) {
                ObjectNode entry = calls.addObject();
                entry.put("id", call.id());
                entry.put("type", "function");
                entry.putObject("function").put("name", call.name()).put("arguments", call.arguments());
            }
            return finishReason.equals("stop") ? "tool_calls" : finishReason;
        }

        ObjectNode finalChunk(int index, String text, String finishReason) {
            ObjectNode chunk = chunk();
            choice(chunk, index, text, finishReason);
            return chunk;
        }

        /**
         * Logprobs as each endpoint writes them: for chat, {@code {"content": [{"token", "logprob", "bytes",
         * "top_logprobs": [...]}]}}; for completions, {@code {"tokens", "token_logprobs", "top_logprobs", "text_offset"}},
         * the offsets counted from {@code offset}.
         */
        ObjectNode logprobs(List<TokenLogprobs> tokens, int offset) {
            return logprobs(null, List.of(), tokens, offset);
        }

        /**
         * The same, for a completion whose text starts with the echoed {@code prompt} (null for none): its first token
         * with no log-probability, as OpenAI writes it, then each later one's from {@code promptScores}, then the
         * {@code generated} tokens'. Each lists the request's {@code logprobs} most likely tokens.
         */
        ObjectNode logprobs(int[] prompt, List<ScoredToken> promptScores, List<TokenLogprobs> generated, int offset) {
            ObjectNode out = json.createObjectNode();
            if (kind == Kind.CHAT) {
                ArrayNode content = out.putArray("content");
                for (TokenLogprobs t : generated) {
                    ObjectNode entry = tokenEntry(content.addObject(), t.token(), t.logprob());
                    ArrayNode top = entry.putArray("top_logprobs");
                    for (int k = 0; k < t.topTokens().length; k++) {
                        tokenEntry(top.addObject(), t.topTokens()[k], t.topLogprobs()[k]);
                    }
                }
                return out;
            }
            ArrayNode texts = out.putArray("tokens");
            ArrayNode logprobs = out.putArray("token_logprobs");
            ArrayNode tops = out.putArray("top_logprobs");
            ArrayNode offsets = out.putArray("text_offset");
            List<TokenLogprobs> scored = new ArrayList<>();
            if (prompt != null) {
                String first = tokenString(prompt[0]);
                texts.add(first);
                logprobs.addNull();
                tops.addNull();
                offsets.add(offset);
                offset += first.length();
                promptScores.forEach(score -> scored.add(score.logprobs()));
            }
            scored.addAll(generated);
            for (TokenLogprobs t : scored) {
                String text = tokenString(t.token());
                texts.add(text);
                logprobs.add(t.logprob());
                ObjectNode top = tops.addObject();
                for (int k = 0; k < Math.min(t.topTokens().length, request.logprobs()); k++) {
                    top.put(tokenString(t.topTokens()[k]), t.topLogprobs()[k]);
                }
                offsets.add(offset);
                offset += text.length();
            }
            return out;
        }

        /**
         * vLLM's {@code prompt_logprobs}: null for the first prompt token, then for each later one an object from token
         * ids to {@code {"logprob", "rank", "decoded_token"}}, the prompt's own token first, then the request's
         * {@code prompt_logprobs} most likely.
         */
        ArrayNode promptLogprobs(List<ScoredToken> scores) {
            ArrayNode out = json.createArrayNode();
            out.addNull();
            for (ScoredToken score : scores) {
                TokenLogprobs t = score.logprobs();
                ObjectNode position = out.addObject();
                promptEntry(position, t.token(), t.logprob(), score.rank());
                for (int k = 0; k < Math.min(t.topTokens().length, request.promptLogprobs()); k++) {
                    if (!position.has(Integer.toString(t.topTokens()[k]))) {
                        promptEntry(position, t.topTokens()[k], t.topLogprobs()[k], k + 1);
                    }
                }
            }
            return out;
        }

        private void promptEntry(ObjectNode position, int token, float logprob, int rank) {
            position.putObject(Integer.toString(token)).put("logprob", logprob).put("rank", rank)
                    .put("decoded_token", tokenString(token));
        }

        private ObjectNode tokenEntry(ObjectNode entry, int token, float logprob) {
            String text = tokenString(token);
            entry.put("token", text);
            entry.put("logprob", logprob);
            ArrayNode bytes = entry.putArray("bytes");
            for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
                bytes.add(b & 0xff);
            }
            return entry;
        }
    }

    /**
     * One streamed chat choice whose text is reshaped as it comes: its thinking split off into
     * {@code reasoning_content} (the server's reasoning parser), and its calls read out into {@code tool_calls} as they
     * are written (the request's tools: a call's id and name, then its arguments piece by piece), the rest streamed as
     * {@code content}.
     */
    private final class ShapedChoice {
        private final Response response;
        private final int index;
        private final Reasoning.Splitter thinking;
        private final ToolCalls.Streamer calling;
        private int calls;

        ShapedChoice(Response response, int index) {
            this.response = response;
            this.index = index;
            this.thinking = reasoning == null ? null : new Reasoning.Splitter(reasoning);
            this.calling = response.request().tools() == null ? null : new ToolCalls.Streamer(response.request().tools());
        }

        /** The chunks a piece of the choice's text makes (none while it is held back), the first with its logprobs. */
        List<ObjectNode> take(String text, ObjectNode logprobs) {
            Reasoning.Split split = thinking == null ? new Reasoning.Split(null, text) : thinking.push(text);
            List<ObjectNode> chunks = chunks(split, calling == null || split.content() == null ? null : calling.push(split.content()));
            if (logprobs != null) {
                if (chunks.isEmpty()) {
                    chunks.add(delta());
                }
                ((ObjectNode) chunks.getFirst().at("/choices/0")).set("logprobs", logprobs);
            }
            return chunks;
        }

        /** The chunks of the text held back until the end, then the one with the finish reason ("tool_calls" after calls). */
        List<ObjectNode> end(String rest, String finishReason) {
            Reasoning.Split split = thinking == null ? new Reasoning.Split(null, rest) : thinking.push(rest).followedBy(thinking.finish());
            List<ToolCalls.Piece> pieces = null;
            if (calling != null) {
                pieces = new ArrayList<>(split.content() == null ? List.of() : calling.push(split.content()));
                pieces.addAll(calling.finish());
            }
            List<ObjectNode> chunks = chunks(split, pieces);
            boolean called = calling != null && calling.called();
            chunks.add(response.finalChunk(index, "", called && finishReason.equals("stop") ? "tool_calls" : finishReason));
            return chunks;
        }

        /** A chunk for the thinking, then one per piece of the answer (its content, or its calls one by one). */
        private List<ObjectNode> chunks(Reasoning.Split split, List<ToolCalls.Piece> pieces) {
            List<ObjectNode> chunks = new ArrayList<>();
            if (split.reasoning() != null && response.request().includeReasoning()) {
                ObjectNode chunk = delta();
                ((ObjectNode) chunk.at("/choices/0/delta")).put("reasoning_content", split.reasoning());
                chunks.add(chunk);
            }
            if (pieces == null) {
                if (split.content() != null) {
                    ObjectNode chunk = delta();
                    ((ObjectNode) chunk.at("/choices/0/delta")).put("content", split.content());
                    chunks.add(chunk);
                }
                return chunks;
            }
            for (ToolCalls.Piece piece : pieces) {
                ObjectNode chunk = delta();
                ObjectNode delta = (ObjectNode) chunk.at("/choices/0/delta");
                if (piece.content() != null) {
                    delta.put("content", piece.content());
                } else if (piece.call() != null) {
                    ObjectNode call = delta.putArray("tool_calls").addObject();
                    call.put("index", calls++);
                    call.put("id", piece.call().id());
                    call.put("type", "function");
                    call.putObject("function").put("name", piece.call().name()).put("arguments", piece.call().arguments());
                } else {  // the next piece of the arguments of the call last opened
                    delta.putArray("tool_calls").addObject().put("index", calls - 1).putObject("function")
                            .put("arguments", piece.arguments());
                }
                chunks.add(chunk);
            }
            return chunks;
        }

        /** A chunk of this choice with an empty delta. */
        private ObjectNode delta() {
            ObjectNode chunk = response.chunk();
            ((ObjectNode) response.choice(chunk, index, "", null).get("delta")).remove("content");
            return chunk;
        }
    }

    /** A token's own text (special tokens written out, as OpenAI shows them). */
    private String tokenString(int token) {
        return token < tokenizer.vocabSize() ? tokenizer.decode(new int[] {token}, false) : "";
    }
}
