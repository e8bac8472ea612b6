package dev.ember.backend;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class StepCountersTest {
    // steps, replayed, padded, graphs, capture, prepare, choose, launch, wait, forward
    private final StepCounters before = new StepCounters(1, 1, 2, 1, 5, 10, 1, 4, 100, 130);
    private final StepCounters after = new StepCounters(4, 3, 9, 2, 12, 40, 4, 16, 500, 630);

    @Test
    void aRunsFiguresAreTheCountersSinceItsStart() {
        StepCounters run = after.minus(before);
        assertEquals(new StepCounters(3, 2, 7, 1, 7, 30, 3, 12, 400, 500), run);
        assertEquals(1, run.eagerSteps());
    }

    @Test
    void theOtherHostTimeIsTheForwardTimeLessEveryOtherCountedPart() {
        StepCounters run = after.minus(before);
        assertEquals(500 - 7 - 30 - 3 - 12 - 400, run.otherNanos());
        assertEquals(0, StepCounters.NONE.otherNanos());
    }
}
