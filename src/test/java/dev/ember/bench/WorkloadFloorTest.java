package dev.ember.bench;

import dev.ember.backend.DeviceCeilings;
import dev.ember.model.DType;
import dev.ember.model.Presets;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The workload floor: exact on hand-sized cases, and the issue's own figures for the H100. */
class WorkloadFloorTest {
    /** 1000 bytes per second and 1 FLOP per second: a step's floor is then easy to work out by hand. */
    private static final DeviceCeilings SLOW = new DeviceCeilings("hand", 1000, 1);
    private static final ModelCost TOY = new ModelCost(1000, 10, 100, 1, 0);

    @Test
    void oneRequestByHand() {
        // Prefill of 2 tokens in one step: weights 1000 + K/V 2 x 100 bytes; 2 x 10 FLOPs + attention 4 x (1 + 2).
        // Decode of 3 - 1 = 2 steps at contexts 3 and 4: weights + (context + 1) x 100 bytes; 10 + 4 x context FLOPs.
        WorkloadFloor f = WorkloadFloor.of(TOY, new int[] {2}, new int[] {3}, 1, 10, SLOW);
        assertEquals(1200 + 1400 + 1500, f.bytes(), 1e-9);
        assertEquals(32 + 22 + 26, f.flops(), 1e-9);
        assertEquals(2, f.decodeSteps());
        assertEquals(32, f.prefillSeconds(), 1e-9, "compute-bound at 1 FLOP/s");
        assertEquals(22 + 26, f.decodeSeconds(), 1e-9);

        WorkloadFloor fast = WorkloadFloor.of(TOY, new int[] {2}, new int[] {3}, 1, 10, new DeviceCeilings("hand", 1000, 1e9));
        assertEquals(1.2, fast.prefillSeconds(), 1e-9, "memory-bound when FLOPs are cheap");
        assertEquals(1.4 + 1.5, fast.decodeSeconds(), 1e-9);
        assertEquals(4.1, fast.memorySeconds(), 1e-9);
    }

    @Test
    void slotsBatchTheDecodeStepsAndAFinishedRequestIsReplaced() {
        int[] in = {1, 1, 1};
        int[] out = {3, 2, 4};
        assertEquals(2 + 1 + 3, WorkloadFloor.of(TOY, in, out, 1, 10, SLOW).decodeSteps(), "one at a time");
        // Two slots: requests 0 and 1 start together; request 2 takes request 1's slot after its single step.
        assertEquals(4, WorkloadFloor.of(TOY, in, out, 2, 10, SLOW).decodeSteps());
        assertEquals(3, WorkloadFloor.of(TOY, in, out, 3, 10, SLOW).decodeSteps(), "all at once: the longest decode");
        // A step budget of one token reads the weights once per prompt token: 3 prefill steps.
        assertEquals(3 * 1000 + 3 * 100, WorkloadFloor.of(TOY, in, out, 3, 1, new DeviceCeilings("hand", 1, 1e9)).prefillSeconds(), 1e-9);
    }

    @Test
    void aPromptTakenFromThePrefixCacheComputesOnlyItsRest() {
        // Two choices of a 5-token prompt, the second taking 4 tokens from the cache: 5 + 1 prompt tokens computed in
        // one step (weights 1000 + K/V 6 x 100 bytes); FLOPs 6 x 10, attention 4 x (1 + 2 + 3 + 4 + 5) for the first
        // and 4 x 5 for the second's last query, which still reads all five tokens.
        WorkloadFloor f = WorkloadFloor.of(TOY, new int[] {5, 5}, new int[] {0, 4}, new int[] {1, 1}, 2, 10, SLOW);
        assertEquals(60 + 60 + 20, f.prefillSeconds(), 1e-9);
        assertEquals(1600, f.bytes(), 1e-9, "no decode steps: each choice's one token comes from its prefill");
        WorkloadFloor uncached = WorkloadFloor.of(TOY, new int[] {5, 5}, new int[] {1, 1}, 2, 10, SLOW);
        assertEquals(2 * (50 + 60), uncached.prefillSeconds(), 1e-9, "without the cache both compute all five");

        RandomWorkload choices = new RandomWorkload(new int[] {33, 16}, new int[] {1, 1}, 0).choices(3);
        assertArrayEquals(new int[] {0, 32, 32, 0, 0, 0}, choices.cachedLengths(3, 16),
                "full blocks but the one with the last token, for every choice but the first");
        assertArrayEquals(new int[6], choices.cachedLengths(3, 0), "no prefix cache");
    }

    /**
     * The issue's table: bench.py's workload on the H100 (3.0 TB/s, 795 TFLOP/s) has a floor of about 5.5 s for
     * Qwen3-0.6B's shape and about 14 s for Llama-3.1-8B's.
     */
    @Test
    void theIssuesH100Floors() {
        DeviceCeilings h100 = new DeviceCeilings("H100", 3.0e12, 795e12);
        RandomWorkload w = RandomWorkload.draw(256, new LengthRange(100, 1024), new LengthRange(100, 1024), 0);
        WorkloadFloor qwen = WorkloadFloor.of(ModelCost.of(Presets.config("qwen3-0.6b"), 2, 2), w.inputLengths(),
                w.outputLengths(), 256, 8192, h100);
        WorkloadFloor llama = WorkloadFloor.of(ModelCost.of(Presets.config("llama-3.1-8b"), 2, 2), w.inputLengths(),
                w.outputLengths(), 256, 8192, h100);
        assertEquals(5.5, qwen.seconds(), 0.1 * 5.5, "Qwen3-0.6B floor " + qwen);
        assertEquals(14, llama.seconds(), 0.1 * 14, "Llama-3.1-8B floor " + llama);
        assertEquals(DType.BF16, Presets.config("qwen3-8b").dtype());
    }
}
