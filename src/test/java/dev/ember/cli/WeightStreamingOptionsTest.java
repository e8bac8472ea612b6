package dev.ember.cli;

import dev.ember.cli.GenerateCommandTest.Run;
import org.junit.jupiter.api.Test;

import static dev.ember.cli.GenerateCommandTest.ember;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code ember generate} with the weights streamed: the text of the resident run, in every mode and under a budget. */
class WeightStreamingOptionsTest {
    private static String[] generate(String... extra) {
        String[] base = {"generate", "--backend", "cpu", "--threads", "2", "--prompt", "Once upon a time", "-n", "12",
                "--temperature", "0"};
        String[] args = new String[base.length + extra.length];
        System.arraycopy(base, 0, args, 0, base.length);
        System.arraycopy(extra, 0, args, base.length, extra.length);
        return args;
    }

    @Test
    void streamedGenerationWritesTheResidentText() {
        Run full = ember(generate());
        assertEquals(0, full.exitCode(), full.err());
        for (String mode : new String[] {"preload", "stream", "mixed"}) {
            Run streamed = ember(generate("--weight-mode", mode, "--gpu-cached-layers", "3", "--cpu-cache-layers", "2"));
            assertEquals(0, streamed.exitCode(), streamed.err());
            assertEquals(full.out(), streamed.out(), mode);
        }
        Run budget = ember(generate("--gpu-weight-budget", "0.012"));
        assertEquals(0, budget.exitCode(), budget.err());
        assertEquals(full.out(), budget.out(), "a budget below the weights streams them");
    }

    @Test
    void aBudgetTooSmallForOneLayerIsAnErrorThatSaysWhatIsNeeded() {
        Run run = ember(generate("--gpu-weight-budget", "0.001"));
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("must hold the resident weights") && run.err().contains("at least"), run.err());
    }
}
