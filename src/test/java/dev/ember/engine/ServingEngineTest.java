package dev.ember.engine;

import dev.ember.scheduler.FinishReason;
import dev.ember.Progress;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.FinishReason;
import dev.ember.scheduler.PrefixCache;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The engine thread and the offline API on the trained default model: batched results equal one-at-a-time
 * {@link Generator} results, streamed events add up to the final output, a bad request fails alone, cancelled
 * requests free their blocks and a shutdown drains what is in flight.
 */
class ServingEngineTest {
    static final Path MODEL = Path.of("models", "ember-tiny");
    static final List<String> PROMPTS = List.of("And the LORD said unto Moses,", "A friend", "The king of Israel",
            "In the beginning", "Blessed is the man", "Who is wise?");

    static CpuBackend backend;
    static Model model;
    static Tokenizer tokenizer;
    static ModelRunner referenceRunner;

    @BeforeAll
    static void load() {
        backend = new CpuBackend(2);
        model = ModelLoader.load(MODEL);
        tokenizer = Tokenizer.load(MODEL);
        referenceRunner = backend.load(model, KvCacheSpec.forTokens(model.config(), 1024, 16), Progress.NONE);
    }

    @AfterAll
    static void close() {
        referenceRunner.close();
        tokenizer.close();
        model.close();
        backend.close();
    }

    static ModelRunner runner(int kvTokens) {
        return backend.load(model, KvCacheSpec.forTokens(model.config(), kvTokens, 16), Progress.NONE);
    }

    static SchedulerConfig config() {
        return new SchedulerConfig(16, 128, 32, dev.ember.scheduler.SchedulePolicy.DECODE_FIRST, true, true);
    }

    static GenerationResult alone(String prompt, SamplingParams params) {
        return new Generator(LlmEngine.of(referenceRunner, Generator.oneRequest(Generator.DEFAULT_CHUNK_TOKENS), tokenizer)).generate(prompt, params, piece -> { });
    }

    /** Blocks neither held by a request nor by the prefix cache, read on the engine thread after clearing the cache. */
    static int freeBlocksAfterClearingTheCache(ServingEngine engine) {
        return engine.inspect(e -> {
            PrefixCache cache = e.scheduler().prefixCache();
            if (cache != null) {
                cache.clear();
            }
            return e.runner().blockAllocator().freeBlocks();
        });
    }

    @Test
    void offlineBatchEqualsOneAtATimeGreedyAndABadPromptFailsAlone() {
        SamplingParams params = SamplingParams.greedy(24);
        List<String> prompts = new ArrayList<>(PROMPTS);
        prompts.add(2, "and the ".repeat(1200));
        try (ModelRunner runner = runner(4096); ServingEngine engine = ServingEngine.start(runner, tokenizer, config())) {
            List<RequestOutcome> outcomes = engine.generate(prompts, params);
            assertEquals(prompts.size(), outcomes.size());
            RequestError error = assertInstanceOf(RequestError.class, outcomes.get(2));
            assertTrue(error.message().contains("2048"), error.message());
            for (int i = 0; i < prompts.size(); i++) {
                if (i == 2) {
                    continue;
                }
                RequestOutput out = assertInstanceOf(RequestOutput.class, outcomes.get(i));
                GenerationResult expected = alone(prompts.get(i), params);
                assertArrayEquals(expected.tokens(), out.tokens(), prompts.get(i));
                assertEquals(expected.text(), out.text());
                assertEquals(expected.finishReason(), out.finishReason());
                assertArrayEquals(tokenizer.encode(prompts.get(i)), out.promptTokens());
                RequestTimings t = out.timings();
                assertTrue(t.queueNanos() >= 0 && t.queueNanos() <= t.ttftNanos() && t.ttftNanos() <= t.e2eNanos(), t.toString());
                assertEquals(out.generatedTokenCount() - 1, t.interTokenNanos().length);
            }
            assertEquals(runner.blockAllocator().capacity(), freeBlocksAfterClearingTheCache(engine), "KV blocks leaked");
        }
    }

    /** A grammar that breaks at its fourth mask: what a request whose rows cannot be drawn from looks like to the engine. */
    private static final dev.ember.sampling.OutputGrammar BREAKS = new dev.ember.sampling.OutputGrammar() {
        @Override
        public Matcher start() {
            return new Matcher() {
                int masks;

                @Override
                public void allowedTokens(java.util.BitSet allowed) {
                    if (++masks > 3) {
                        throw new IllegalStateException("no token can follow here");
                    }
                    allowed.set(0, tokenizer.vocabSize());
                }

                @Override
                public void accept(int token) {
                }
            };
        }

        @Override
        public String describe() {
            return "a grammar that breaks";
        }
    };

    /**
     * A row that cannot be drawn from (here a grammar that throws) ends its own request with the reason; the step's
     * other requests give their own tokens, the blocks come back, and the engine serves the next request.
     */
    @Test
    void aRowThatCannotBeDrawnFromEndsItsRequestAlone() throws Exception {
        SamplingParams params = SamplingParams.greedy(12).withIgnoreEos(true);
        try (ModelRunner runner = runner(4096); ServingEngine engine = ServingEngine.start(runner, tokenizer, config())) {
            List<RequestHandle> handles = new ArrayList<>();
            for (int i = 0; i < PROMPTS.size(); i++) {
                handles.add(engine.submit(PROMPTS.get(i), i == 1 ? params.withGrammar(BREAKS) : params, false));
            }
            for (int i = 0; i < PROMPTS.size(); i++) {
                RequestOutcome outcome = handles.get(i).await();
                if (i == 1) {
                    RequestError error = assertInstanceOf(RequestError.class, outcome);
                    assertTrue(error.message().contains("no token can follow here"), error.message());
                } else {
                    assertArrayEquals(alone(PROMPTS.get(i), params).tokens(), assertInstanceOf(RequestOutput.class, outcome).tokens());
                }
            }
            RequestOutput after = assertInstanceOf(RequestOutput.class, engine.submit(PROMPTS.getFirst(), params, false).await());
            assertArrayEquals(alone(PROMPTS.getFirst(), params).tokens(), after.tokens(), "the engine goes on");
            assertEquals(runner.blockAllocator().capacity(), freeBlocksAfterClearingTheCache(engine), "KV blocks leaked");
        }
    }

    @Test
    void concurrentStreamingSubmittersEachGetTheirOwnTokens() throws Exception {
        int clients = 24;
        try (ModelRunner runner = runner(4096); ServingEngine engine = ServingEngine.start(runner, tokenizer, config());
             ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<String>> results = new ArrayList<>();
            for (int c = 0; c < clients; c++) {
                String prompt = PROMPTS.get(c % PROMPTS.size());
                int maxTokens = 4 + c % 7;
                int[] expected = alone(prompt, SamplingParams.greedy(maxTokens).withIgnoreEos(true)).tokens();
                results.add(pool.submit(() -> {
                    RequestHandle handle = engine.submit(prompt, SamplingParams.greedy(maxTokens).withIgnoreEos(true), true);
                    StringBuilder streamed = new StringBuilder();
                    List<Integer> ids = new ArrayList<>();
                    while (true) {
                        switch (handle.nextEvent()) {
                            case RequestEvent.Token(int id, String text, var logprobs) -> {
                                ids.add(id);
                                streamed.append(text);
                            }
                            case RequestEvent.PromptScores scores -> fail("no prompt logprobs were asked for");
                            case RequestEvent.Done(RequestOutcome outcome) -> {
                                RequestOutput out = assertInstanceOf(RequestOutput.class, outcome);
                                assertEquals(maxTokens, out.generatedTokenCount());
                                assertArrayEquals(ids.stream().mapToInt(Integer::intValue).toArray(), out.tokens());
                                assertTrue(out.text().startsWith(streamed.toString()), "streamed text is a prefix of the output");
                                assertArrayEquals(expected, out.tokens());
                                return out.text();
                            }
                        }
                    }
                }));
            }
            for (Future<String> f : results) {
                assertFalse(f.get(60, TimeUnit.SECONDS).isEmpty());
            }
            int unfinished = engine.inspect(e -> e.scheduler().runningCount() + e.scheduler().waitingCount());
            assertEquals(0, unfinished);
            assertEquals(clients, engine.metrics().finishedRequests(FinishReason.LENGTH));
        }
    }

    @Test
    void aStopStringEndsTheRequestAsInTheSingleRequestGenerator() {
        SamplingParams greedy = SamplingParams.greedy(32).withIgnoreEos(true);
        String full = alone(PROMPTS.getFirst(), greedy).text();
        String stop = full.substring(12, 16);
        SamplingParams params = greedy.withStopStrings(List.of(stop));
        GenerationResult expected = alone(PROMPTS.getFirst(), params);
        try (ModelRunner runner = runner(2048); ServingEngine engine = ServingEngine.start(runner, tokenizer, config())) {
            RequestOutput out = assertInstanceOf(RequestOutput.class, engine.generate(List.of(PROMPTS.getFirst()), params).getFirst());
            assertEquals(FinishReason.STOP, out.finishReason());
            assertEquals(expected.text(), out.text());
            assertFalse(out.text().contains(stop));
            assertArrayEquals(expected.tokens(), out.tokens());
        }
    }

    @Test
    void aCancelledRequestEndsWithAnErrorAndFreesItsBlocks() throws Exception {
        try (ModelRunner runner = runner(2048); ServingEngine engine = ServingEngine.start(runner, tokenizer, config())) {
            RequestHandle handle = engine.submit(PROMPTS.getFirst(), SamplingParams.greedy(900).withIgnoreEos(true), true);
            assertInstanceOf(RequestEvent.Token.class, handle.nextEvent(60, TimeUnit.SECONDS));
            handle.cancel();
            RequestError error = assertInstanceOf(RequestError.class, handle.await());
            assertTrue(error.message().contains("cancelled"), error.message());
            assertEquals(runner.blockAllocator().capacity(), freeBlocksAfterClearingTheCache(engine), "KV blocks leaked");
            assertEquals(1, engine.metrics().failedRequests());
            // The engine still serves.
            assertInstanceOf(RequestOutput.class, engine.generate(List.of("A friend"), SamplingParams.greedy(2)).getFirst());
        }
    }

    /**
     * {@link ServingEngine#inspect} called while the engine thread ends (after a shutdown) returns: the task is run on
     * the engine thread, or on the caller's once that thread has ended, never left in a queue nobody reads.
     */
    @Test
    void inspectWhileTheEngineThreadEndsReturns() throws Exception {
        ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
        try (ModelRunner runner = runner(256)) {
            for (int i = 0; i < 1000; i++) {
                ServingEngine engine = ServingEngine.start(runner, tokenizer, config());
                engine.shutdown();
                Future<Integer> inspected = pool.submit(() -> {
                    int answered = 0;
                    for (int k = 0; k < 50; k++) {
                        answered += engine.inspect(e -> 1);
                    }
                    return answered;
                });
                assertEquals(50, inspected.get(10, TimeUnit.SECONDS), "engine " + i);
            }
        } finally {
            pool.shutdownNow();  // a caller left waiting is interrupted, not waited for
        }
    }

    @Test
    void shutdownDrainsRequestsInFlightAndRefusesNewOnes() throws Exception {
        try (ModelRunner runner = runner(2048)) {
            ServingEngine engine = ServingEngine.start(runner, tokenizer, config());
            List<RequestHandle> handles = new ArrayList<>();
            for (String prompt : PROMPTS) {
                handles.add(engine.submit(prompt, SamplingParams.greedy(12).withIgnoreEos(true), false));
            }
            engine.shutdown();
            assertThrows(ServingEngine.ShutDownException.class, () -> engine.submit("A friend", SamplingParams.greedy(2), false));
            for (RequestHandle h : handles) {
                RequestOutput out = assertInstanceOf(RequestOutput.class, h.await());
                assertEquals(12, out.generatedTokenCount());
            }
            assertTrue(engine.awaitTermination(java.time.Duration.ofSeconds(30)));
            assertFalse(engine.isHealthy());
        }
    }
}
