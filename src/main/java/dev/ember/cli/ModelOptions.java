package dev.ember.cli;

import dev.ember.EmberException;
import dev.ember.backend.Backend;
import dev.ember.backend.Backends;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** The options every command that runs a model shares: which model, and where to run it. */
public final class ModelOptions {
    static final String DEFAULT_MODEL = "models/ember-tiny";
    /** The default model's draft for speculative decoding, shipped beside it. */
    static final String DEFAULT_DRAFT = "models/ember-tiny-draft";

    @Option(names = "--model", paramLabel = "DIR",
            description = "HF model directory (config.json + *.safetensors + tokenizer.json); default: the built-in " + DEFAULT_MODEL)
    Path model;

    @Option(names = "--backend", defaultValue = "auto",
            description = "auto (GPU when present, else CPU), cpu or cuda; default: ${DEFAULT-VALUE}")
    String backend;

    @Option(names = "--threads", description = "CPU backend threads; default: all cores")
    int threads = Runtime.getRuntime().availableProcessors();

    /** Whether --model was given (else {@link #modelDirectory()} is the default model). */
    public boolean modelGiven() {
        return model != null;
    }

    public Path modelDirectory() {
        return model != null ? model : builtIn(DEFAULT_MODEL, "the default model", "--model DIR");
    }

    /** The default model's shipped draft (models/ember-tiny-draft), found as the default model is. */
    public Path defaultDraftDirectory() {
        return builtIn(DEFAULT_DRAFT, "the default model's draft", "--speculative-model DIR|self:K");
    }

    private static Path builtIn(String relative, String what, String instead) {
        // The launcher passes the repository root, so the built-in models are found from any working directory.
        String home = System.getProperty("ember.home");
        Path dir = (home != null ? Path.of(home) : Path.of("")).resolve(relative);
        if (!Files.isDirectory(dir)) {
            throw new EmberException(what + " " + dir + " is missing; pass " + instead);
        }
        return dir;
    }

    /** These options as command-line arguments, to run another command on the same model and backend. */
    public List<String> toArguments() {
        return List.of("--model", modelDirectory().toString(), "--backend", backend, "--threads", String.valueOf(threads));
    }

    /** Opens the chosen backend; when AUTO falls back to the CPU, says why on {@code log}. */
    public Backend openBackend(PrintStream log) {
        Backends.Choice choice = backendChoice();
        if (choice == Backends.Choice.AUTO) {
            String why = Backends.whyNotGpu();
            if (why != null) {
                log.println("ember: no GPU (" + why + "); running on the CPU");
            }
        }
        return Backends.open(choice, threads);
    }

    Backends.Choice backendChoice() {
        try {
            return Backends.Choice.valueOf(backend.toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new EmberException("unknown backend \"" + backend + "\" (auto, cpu or cuda)");
        }
    }
}
