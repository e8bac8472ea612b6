package dev.ember;

import java.io.File;
import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * For tests of native bindings without the hardware: stand-in libraries built here from C sources with gcc, and
 * {@code ember} run in a child JVM whose environment points the bindings at them (the environment of this JVM
 * cannot be changed).
 */
public final class StandIns {
    private StandIns() {
    }

    /** Builds {@code source} into the shared library {@code library}; skips the calling test where there is no gcc. */
    public static void compile(String source, Path library) throws IOException, InterruptedException {
        Process gcc;
        try {
            gcc = new ProcessBuilder("gcc", "-shared", "-fPIC", "-o", library.toString(), source).inheritIO().start();
        } catch (IOException e) {
            assumeTrue(false, "no gcc to build the stand-in " + source + ": " + e.getMessage());
            return;
        }
        assertEquals(0, gcc.waitFor(), "gcc " + source);
    }

    /**
     * This JVM's class path and the entries of the URL class loaders above this class: a launcher that loads the tests
     * through a class loader of its own (the JUnit console's --class-path) leaves java.class.path with itself alone.
     */
    private static String classPath() {
        List<String> entries = new ArrayList<>(List.of(System.getProperty("java.class.path").split(File.pathSeparator)));
        for (ClassLoader loader = StandIns.class.getClassLoader(); loader != null; loader = loader.getParent()) {
            if (loader instanceof URLClassLoader urls) {
                for (URL url : urls.getURLs()) {
                    try {
                        entries.add(Path.of(url.toURI()).toString());
                    } catch (URISyntaxException | IllegalArgumentException e) {
                        // not a file: nothing a child JVM could read
                    }
                }
            }
        }
        return String.join(File.pathSeparator, entries);
    }

    /** Runs {@code ember args...} in a child JVM with {@code environment} added; returns its output, after exit code 0. */
    public static String ember(Path dir, Map<String, String> environment, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", classPath(), "dev.ember.app.EmberCli"));
        command.addAll(List.of(args));
        Path log = dir.resolve("log.txt");
        ProcessBuilder child = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        child.environment().putAll(environment);
        Process run = child.start();
        assertTrue(run.waitFor(120, TimeUnit.SECONDS), "the child JVM finished");
        String output = Files.readString(log);
        assertEquals(0, run.exitValue(), output);
        return output;
    }
}
