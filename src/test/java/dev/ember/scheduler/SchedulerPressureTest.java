package dev.ember.scheduler;

import dev.ember.Progress;
import dev.ember.backend.ModelRunner;
import dev.ember.engine.LlmEngine;
import dev.ember.engine.RequestListener;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.sampling.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * What {@link LlmEngineTest} leaves out: the prefix cache evicting under a full KV cache while requests keep
 * arriving, and requests cancelled at random steps (clients that leave). Outputs must stay those of
 * one-at-a-time greedy generation and every block must come back. Uses {@link LlmEngineTest}'s model and reference.
 */
class SchedulerPressureTest {

    @BeforeAll
    static void setUp() {
        LlmEngineTest.setUp();
    }

    @AfterAll
    static void tearDown() {
        LlmEngineTest.tearDown();
    }

    @Test
    void thePrefixCacheEvictsUnderAFullCacheAndOutputsStayRight() {
        int[] system = new SplittableRandom(7).ints(48, 0, 200).toArray();
        List<LlmEngineTest.Request> requests = LlmEngineTest.randomRequests(8, 30, system);
        int kvTokens = 160;
        double[] hitRate = new double[1];
        int[][] out = LlmEngineTest.runBatched(requests, new SchedulerConfig(4, 64, 16, SchedulePolicy.DECODE_FIRST, true, true),
                kvTokens, new long[1], hitRate);
        LlmEngineTest.assertMatchesReference(requests, out);
        assertTrue(hitRate[0] > 0, "the shared prefix was reused");
        // Each finished request offered its computed full blocks to the tree; far more distinct blocks than the
        // cache holds were offered, so the tree must have evicted to make room.
        Set<List<Integer>> distinctBlocks = new HashSet<>();
        for (int i = 0; i < requests.size(); i++) {
            int[] tokens = LlmEngineTest.concat(requests.get(i).prompt(), out[i]);
            int computed = tokens.length - 1;
            for (int end = 16; end <= computed; end += 16) {
                distinctBlocks.add(Arrays.stream(tokens, 0, end).boxed().toList());
            }
        }
        assertTrue(distinctBlocks.size() > 2 * kvTokens / 16, distinctBlocks.size() + " distinct blocks offered");
    }

    @Test
    void requestsCancelledAtRandomStepsFreeTheirBlocksAndLeaveTheOthersIntact() {
        List<LlmEngineTest.Request> requests = LlmEngineTest.randomRequests(9, 24, new int[0]);
        SplittableRandom random = new SplittableRandom(10);
        try (ModelRunner runner = LlmEngineTest.backend.load(LlmEngineTest.model,
                KvCacheSpec.forTokens(LlmEngineTest.model.config(), 256, 16), Progress.NONE)) {
            LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(6, 48, 16, SchedulePolicy.DECODE_FIRST, true, true), Set.of(), null);
            Sequence[] sequences = new Sequence[requests.size()];
            boolean[] cancelled = new boolean[requests.size()];
            int[] finishCalls = new int[1];
            RequestListener listener = new RequestListener() {
                @Override
                public void onFinish(Sequence s) {
                    finishCalls[0]++;
                }
            };
            for (int step = 0; step < 10_000 && (step < 12 || engine.hasWork()); step++) {
                for (int i = 0; i < requests.size(); i++) {
                    if (sequences[i] == null && requests.get(i).arrivalStep() <= step) {
                        sequences[i] = engine.add(requests.get(i).prompt(), SamplingParams.greedy(requests.get(i).maxTokens()), listener);
                    }
                }
                // A client leaves now and then: waiting, mid-prefill or mid-decode.
                int victim = random.nextInt(requests.size());
                if (random.nextInt(4) == 0 && sequences[victim] != null && !sequences[victim].isFinished()) {
                    engine.cancel(sequences[victim]);
                    cancelled[victim] = true;
                }
                engine.step();
            }
            assertFalse(engine.hasWork());
            assertEquals(requests.size(), finishCalls[0], "every request finishes exactly once");
            int kept = 0;
            for (int i = 0; i < requests.size(); i++) {
                if (!cancelled[i]) {
                    kept++;
                    LlmEngineTest.Request r = requests.get(i);
                    assertArrayEquals(LlmEngineTest.greedyAlone(r.prompt(), r.maxTokens()), sequences[i].generatedTokens(), "request " + i);
                }
            }
            assertTrue(kept > 0 && kept < requests.size(), kept + " of " + requests.size() + " requests kept");
            engine.scheduler().prefixCache().clear();
            assertEquals(runner.blockAllocator().capacity(), runner.blockAllocator().freeBlocks(), "KV blocks leaked");
        }
    }
}
