package dev.ember.app;

import dev.ember.bench.BenchCommand;
import dev.ember.bench.PerplexityCommand;
import dev.ember.cli.CommandRuns;
import dev.ember.cli.GenerateCommand;
import dev.ember.report.CompareCommand;
import dev.ember.report.PlotCommand;
import dev.ember.report.ReportCommand;
import dev.ember.server.ServeCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code ember} command: every subcommand is listed by {@code ember --help}. */
@Command(name = "ember", mixinStandardHelpOptions = true, version = "ember 0.1.0",
        description = "LLM inference engine and benchmark suite.",
        subcommands = {GenerateCommand.class, ServeCommand.class, BenchCommand.class, PerplexityCommand.class, CompareCommand.class,
                PlotCommand.class, ReportCommand.class, CommandLine.HelpCommand.class})
public final class EmberCli implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** Runs a command line and returns the exit code; user errors print one line naming the problem. */
    public static int execute(String... args) {
        return CommandRuns.execute(new CommandLine(new EmberCli()), args);
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }
}
