package dev.ember.sampling;

import dev.ember.EmberException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class SamplingParamsTest {
    private static final SamplingParams BASE = SamplingParams.greedy(64);

    private static void assertRejected(String expectedInMessage, Executable build) {
        EmberException e = assertThrows(EmberException.class, build);
        assertTrue(e.getMessage().contains(expectedInMessage), e.getMessage());
    }

    @Test
    void greedyIsTemperatureZeroWithEveryFilterOff() {
        SamplingParams greedy = SamplingParams.greedy(7);
        assertTrue(greedy.isGreedy());
        assertEquals(new SamplingParams(0f, 0, 1f, 0f, 1f, 0L, 7, List.of(), false), greedy);
        assertFalse(greedy.withTemperature(0.01f).isGreedy());
    }

    @Test
    void copyMethodsChangeOnlyTheirField() {
        SamplingParams p = BASE.withTemperature(0.7f).withTopK(40).withTopP(0.9f).withMinP(0.05f)
                .withRepetitionPenalty(1.1f).withSeed(-9L).withMaxTokens(3).withStopStrings(List.of("###"))
                .withIgnoreEos(true);
        assertEquals(new SamplingParams(0.7f, 40, 0.9f, 0.05f, 1.1f, -9L, 3, List.of("###"), true), p);
        assertEquals(BASE, BASE.withTopK(0).withTopP(1f));
    }

    @Test
    void stopStringsAreCopiedAndImmutable() {
        List<String> stops = new ArrayList<>(List.of("\n\n", "</s>"));
        SamplingParams p = BASE.withStopStrings(stops);
        stops.add("User:");
        assertEquals(List.of("\n\n", "</s>"), p.stopStrings());
        assertThrows(UnsupportedOperationException.class, () -> p.stopStrings().add("x"));
    }

    @Test
    void everyInvalidValueIsNamedWithTheParameter() {
        assertRejected("temperature = -0.5", () -> BASE.withTemperature(-0.5f));
        assertRejected("temperature = NaN", () -> BASE.withTemperature(Float.NaN));
        assertRejected("temperature = Infinity", () -> BASE.withTemperature(Float.POSITIVE_INFINITY));
        assertRejected("top_k = -1", () -> BASE.withTopK(-1));
        assertRejected("top_p = 0.0", () -> BASE.withTopP(0f));
        assertRejected("top_p = 1.5", () -> BASE.withTopP(1.5f));
        assertRejected("min_p = -0.1", () -> BASE.withMinP(-0.1f));
        assertRejected("min_p = 1.0", () -> BASE.withMinP(1f));
        assertRejected("repetition_penalty = 0.0", () -> BASE.withRepetitionPenalty(0f));
        assertRejected("repetition_penalty = -1.2", () -> BASE.withRepetitionPenalty(-1.2f));
        assertRejected("max_tokens = 0", () -> BASE.withMaxTokens(0));
        assertRejected("stop = \"\"", () -> BASE.withStopStrings(List.of("ok", "")));
        assertRejected("stop = null", () -> BASE.withStopStrings(Arrays.asList("ok", null)));
        assertRejected("stop strings is missing", () -> BASE.withStopStrings(null));
        EmberException e = assertThrows(EmberException.class, () -> BASE.withTopP(2f));
        assertEquals("invalid sampling parameter top_p = 2.0: must be in (0, 1] (1 turns it off)", e.getMessage());
    }

    @Test
    void boundaryValuesAreAccepted() {
        assertDoesNotThrow(() -> BASE.withTemperature(0f).withTopP(1f).withMinP(0f).withTopK(0).withMaxTokens(1));
        assertDoesNotThrow(() -> BASE.withTopP(Float.MIN_VALUE).withMinP(0.999f).withRepetitionPenalty(Float.MIN_VALUE));
    }
}
