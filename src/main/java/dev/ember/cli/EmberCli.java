package dev.ember.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code ember} command: every subcommand is listed by {@code ember --help}. */
@Command(name = "ember", mixinStandardHelpOptions = true, version = "ember 0.1.0",
        description = "LLM inference engine and benchmark suite.",
        subcommands = {CommandLine.HelpCommand.class})
public final class EmberCli implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new EmberCli()).execute(args));
    }
}
