package dev.ember.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.*;

/** How a command line ends when its command fails. */
class CommandRunsTest {

    /** What `ember bench e2e --decode-batch 100000` or `bench kernel --batch 1000000` meet on the CPU backend. */
    @Command(name = "greedy")
    static final class OutOfMemory implements Runnable {
        @Override
        public void run() {
            throw new OutOfMemoryError("Java heap space");
        }
    }

    @Test
    void runningOutOfMemoryIsOneLineAndExitCodeOne() {
        CommandLine commandLine = new CommandLine(new OutOfMemory());
        StringWriter err = new StringWriter();
        commandLine.setErr(new PrintWriter(err, true));
        assertEquals(1, CommandRuns.execute(commandLine));
        assertTrue(err.toString().startsWith("ember: error: out of memory (Java heap space)"), err.toString());
        assertEquals(1, err.toString().lines().count(), err.toString());
    }
}
