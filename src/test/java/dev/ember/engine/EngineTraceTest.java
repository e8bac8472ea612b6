package dev.ember.engine;

import dev.ember.Progress;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.tokenizer.Tokenizer;
import dev.ember.trace.Trace;
import dev.ember.trace.TraceRecorder;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.*;

/** The engine's steps as a trace sees them: one span per prefill chunk, decode step, sampling and engine step. */
class EngineTraceTest {
    private static final Path MODEL = Path.of("models", "ember-tiny");

    private static Map<String, Long> counts(TraceRecorder trace) {
        return trace.events().stream().collect(Collectors.groupingBy(TraceRecorder.Event::name, Collectors.counting()));
    }

    @Test
    void generatorRunsEachChunkAndDecodeAsAnEngineStep() {
        try (Model model = ModelLoader.load(MODEL);
             Tokenizer tokenizer = Tokenizer.load(MODEL);
             CpuBackend backend = new CpuBackend(2);
             ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(model.config(), 64, 16), Progress.NONE)) {
            LlmEngine engine = LlmEngine.of(runner, Generator.oneRequest(8), tokenizer);
            Generator generator = new Generator(engine);
            TraceRecorder trace = new TraceRecorder();
            engine.setTrace(trace);
            int[] prompt = new int[20];
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = 100 + 7 * i;
            }
            GenerationResult r = generator.generate(prompt, SamplingParams.greedy(6).withIgnoreEos(true), s -> { });
            assertEquals(6, r.tokens().length);
            Map<String, Long> n = counts(trace);
            // 20 prompt tokens in chunks of 8 are three steps; five decodes follow, none after the last token.
            assertEquals(8, n.get("submit"));
            assertEquals(8, n.get("await"));
            assertEquals(8, n.get("retire"));
            long computed = trace.events().stream().filter(e -> e.name().equals("engine_step"))
                    .mapToLong(TraceRecorder.Event::argValue).sum();
            assertEquals(20 + 5, computed, "every prompt token and each decode's token computed once");
            assertTrue(trace.events().stream().allMatch(e -> e.durationNanos() >= 0 && Trace.ENGINE.equals(e.category())));
        }
    }

    @Test
    void engineStepsHoldTheirSubmitsAndRetires() {
        try (Model model = ModelLoader.load(MODEL);
             CpuBackend backend = new CpuBackend(2);
             ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(model.config(), 256, 16), Progress.NONE)) {
            LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults(), Set.of(), null);
            TraceRecorder trace = new TraceRecorder();
            engine.setTrace(trace);
            engine.add(new int[] {5, 6, 7, 8}, SamplingParams.greedy(3).withIgnoreEos(true), new RequestListener() { });
            engine.add(new int[] {9, 10}, SamplingParams.greedy(3).withIgnoreEos(true), new RequestListener() { });
            while (engine.hasWork()) {
                engine.step();
            }
            Map<String, Long> n = counts(trace);
            assertEquals(engine.steps(), n.get("submit"));
            assertEquals(engine.steps(), n.get("await"));
            assertEquals(engine.steps(), n.get("retire"));
            assertEquals(engine.steps() + 1, n.get("engine_step"), "overlapped: the last call only retires the last step");
            assertEquals(n.get("engine_step"), n.get("schedule"), "every step asks the scheduler");
            List<TraceRecorder.Event> steps = trace.events().stream().filter(e -> e.name().equals("engine_step")).toList();
            Function<TraceRecorder.Event, Long> end = e -> e.startNanos() + e.durationNanos();
            for (TraceRecorder.Event submit : trace.events().stream().filter(e -> e.name().equals("submit")).toList()) {
                assertTrue(steps.stream().anyMatch(s -> s.startNanos() <= submit.startNanos() && end.apply(s) >= end.apply(submit)),
                        "each submit lies inside an engine step");
            }
        }
    }
}
