package dev.ember.cli;

import dev.ember.EmberException;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;

/**
 * How an {@code ember} command line runs: a user error (an {@link EmberException}) ends it with one line,
 * {@code ember: error: ...}, and exit code 1; anything else is a bug and propagates.
 */
public final class CommandRuns {
    private CommandRuns() {
    }

    /** Runs {@code args} on {@code commandLine} and returns the exit code. */
    public static int execute(CommandLine commandLine, String... args) {
        commandLine.setExecutionExceptionHandler((e, cl, parseResult) -> {
            if (e instanceof EmberException) {
                cl.getErr().println("ember: error: " + e.getMessage());
                return 1;
            }
            throw e;
        });
        return commandLine.execute(args);
    }

    /**
     * Runs {@code args} in this process on a new instance of the root command {@code spec} belongs to (for
     * {@code ember report}, which runs {@code ember bench ...}): the running command's own options stay as they are,
     * and the command does not need to know the root's class.
     */
    public static int executeFromRoot(CommandSpec spec, String... args) {
        CommandLine root = spec.root().commandLine();
        return execute(new CommandLine(root.getCommand().getClass(), root.getFactory()), args);
    }
}
