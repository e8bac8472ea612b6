package dev.ember.cli;

import dev.ember.EmberException;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;

/**
 * How an {@code ember} command line runs: a user error (an {@link EmberException}) ends it with one line,
 * {@code ember: error: ...}, and exit code 1; a command line that cannot be read, with one such line and exit code 2;
 * running out of memory, with one such line and exit code 1; anything else is a bug and propagates.
 */
public final class CommandRuns {
    private CommandRuns() {
    }

    /** Runs {@code args} on {@code commandLine} and returns the exit code. */
    public static int execute(CommandLine commandLine, String... args) {
        commandLine.setParameterExceptionHandler(CommandRuns::badArguments);
        commandLine.setExecutionExceptionHandler((e, cl, parseResult) -> {
            if (e instanceof EmberException) {
                cl.getErr().println("ember: error: " + e.getMessage());
                return 1;
            }
            throw e;
        });
        try {
            return commandLine.execute(args);
        } catch (OutOfMemoryError e) {
            // What the command held is unreachable by now, so there is room to say so in one line.
            commandLine.getErr().println("ember: error: out of memory (" + e.getMessage() + "): the options ask for more "
                    + "than this process has; use smaller sizes or give the JVM a larger heap (-Xmx)");
            return 1;
        }
    }

    /**
     * A command line picocli cannot read (an unknown option, a value of the wrong type, a missing argument): one line
     * saying what is wrong and where the usage is, not the whole usage; exit code 2, picocli's for invalid input.
     */
    private static int badArguments(CommandLine.ParameterException e, String[] args) {
        CommandLine cl = e.getCommandLine();
        String suggestion = "";
        if (e instanceof CommandLine.UnmatchedArgumentException unmatched && !unmatched.getSuggestions().isEmpty()) {
            suggestion = "; did you mean " + String.join(" or ", unmatched.getSuggestions()) + "?";
        }
        cl.getErr().println("ember: error: " + e.getMessage() + suggestion + " (see `" + cl.getCommandSpec().qualifiedName()
                + " --help`)");
        return cl.getCommandSpec().exitCodeOnInvalidInput();
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
