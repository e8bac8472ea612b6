package dev.ember.report;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The bubble model against cases worked by hand. */
class PipelineBubbleTest {

    @Test
    void theSplitMakesTheSlowestStageAsFastAsItCanBe() {
        assertArrayEquals(new int[] {2, 2}, PipelineBubble.balancedSplit(new double[] {1, 1, 1, 1}, 2));
        assertArrayEquals(new int[] {3, 1}, PipelineBubble.balancedSplit(new double[] {1, 1, 1, 3}, 2));
        assertArrayEquals(new int[] {1, 2, 1}, PipelineBubble.balancedSplit(new double[] {4, 2, 2, 4}, 3));
        assertArrayEquals(new int[] {4}, PipelineBubble.balancedSplit(new double[] {1, 2, 3, 4}, 1));
    }

    /**
     * Two stages of 8 ms, 4 chunks, 1 ms a transfer: overlapped, the first chunk takes 2 + 1 + 2 and each of the other
     * three adds the slowest step, 2 ms: 11 ms, 16 of 22 stage-ms busy. Sequential: 16 ms and 4 transfers, 20 ms.
     */
    @Test
    void twoEvenStagesOfFourChunks() {
        PipelineBubble b = PipelineBubble.of(new double[] {4, 4, 4, 4}, 2, 4, 1);
        assertArrayEquals(new double[] {8, 8}, b.stageMs());
        assertEquals(11, b.overlappedMs(), 1e-12);
        assertEquals(20, b.sequentialMs(), 1e-12);
        assertEquals(16.0 / 22, b.overlappedUtilisation(), 1e-12);
        assertEquals(16.0 / 40, b.sequentialUtilisation(), 1e-12);
    }

    /** A link slower than a stage's chunk paces the pipe; one stage has no link and no bubble. */
    @Test
    void aSlowLinkPacesThePipeAndOneStageHasNoBubble() {
        PipelineBubble slow = PipelineBubble.of(new double[] {2, 2}, 2, 2, 3);
        assertEquals(1 + 3 + 1 + 3, slow.overlappedMs(), 1e-12);
        PipelineBubble one = PipelineBubble.of(new double[] {2, 2}, 1, 8, 3);
        assertEquals(4, one.overlappedMs(), 1e-12);
        assertEquals(1, one.overlappedUtilisation(), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> PipelineBubble.of(new double[] {1}, 2, 1, 0));
    }
}
