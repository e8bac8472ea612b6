package dev.ember.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;

/**
 * The real tokenizers under src/test/resources/tokenizers/&lt;family&gt;/, unpacked once per test JVM into a
 * temporary model directory (tokenizer.json is committed gzipped), and loaded once: a {@link Tokenizer} is
 * thread-safe and these tests only read it.
 */
public final class TokenizerFixtures {

    static final List<String> FAMILIES = List.of("qwen3", "qwen2_5", "llama3_2", "mistral");

    /** The day the shared tokenizers' chat templates believe it is (Llama 3 writes it into the prompt). */
    static final Clock CLOCK = Clock.fixed(Instant.parse("2026-03-07T23:30:00Z"), ZoneOffset.UTC);

    private static final Map<String, Path> DIRECTORIES = new ConcurrentHashMap<>();
    private static final Map<String, Tokenizer> TOKENIZERS = new ConcurrentHashMap<>();

    private TokenizerFixtures() {
    }

    public static Tokenizer tokenizer(String family) {
        return TOKENIZERS.computeIfAbsent(family, f -> Tokenizer.load(directory(f), CLOCK));
    }

    /**
     * Mistral's vocabulary with the control tokens its tool-calling models add ({@code [INST]}, {@code [TOOL_CALLS]},
     * {@code [AVAILABLE_TOOLS]}, ...: special tokens after the 32,000 of the fixture, where Mistral's later tokenizers
     * put them first) and the chat template of Mistral Small 3.1 as llama.cpp keeps it, which teaches calls as
     * {@code [TOOL_CALLS] [{"name": ..., "arguments": {...}}]}.
     */
    public static Tokenizer mistralWithTools() {
        return TOKENIZERS.computeIfAbsent("mistral+tools", name -> Tokenizer.load(
                DIRECTORIES.computeIfAbsent(name, n -> mistralWithToolsDirectory()), CLOCK));
    }

    /** The control tokens {@link #mistralWithTools} adds, in the order of their ids from 32,000. */
    public static final List<String> MISTRAL_CONTROL_TOKENS = List.of("[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]",
            "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]");

    private static Path mistralWithToolsDirectory() {
        ObjectMapper json = new ObjectMapper();
        try {
            Path dir = Files.createTempDirectory("ember-tokenizer-mistral-tools");
            deleteOnExit(dir);
            copyOf("mistral", dir);
            ObjectNode tokenizer = (ObjectNode) json.readTree(dir.resolve("tokenizer.json").toFile());
            ObjectNode config = (ObjectNode) json.readTree(dir.resolve("tokenizer_config.json").toFile());
            ObjectNode decoder = (ObjectNode) config.get("added_tokens_decoder");
            for (int i = 0; i < MISTRAL_CONTROL_TOKENS.size(); i++) {
                ObjectNode token = ((ArrayNode) tokenizer.get("added_tokens")).addObject().put("id", 32_000 + i)
                        .put("content", MISTRAL_CONTROL_TOKENS.get(i)).put("single_word", false).put("lstrip", false)
                        .put("rstrip", false).put("normalized", false).put("special", true);
                decoder.set(String.valueOf(32_000 + i), token.deepCopy().without("id"));
            }
            config.put("chat_template", Files.readString(resources("mistral").resolve("mistralai-Mistral-Small-3.1-24B-Instruct-2503.jinja")));
            json.writeValue(dir.resolve("tokenizer.json").toFile(), tokenizer);
            json.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A model directory holding the family's tokenizer.json and tokenizer_config.json. */
    public static Path directory(String family) {
        return DIRECTORIES.computeIfAbsent(family, TokenizerFixtures::unpack);
    }

    /** The committed files of a family (tokenizer.json.gz, llama.cpp-vectors.json, ...). */
    static Path resources(String family) {
        return resourceRoot().resolve(family);
    }

    static Path resourceRoot() {
        try {
            return Path.of(TokenizerFixtures.class.getResource("/tokenizers").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A fresh copy of the family's model directory that a test may add files to. */
    static Path copyOf(String family, Path into) {
        try (Stream<Path> files = Files.list(directory(family))) {
            for (Path file : files.toList()) {
                Files.copy(file, into.resolve(file.getFileName()), StandardCopyOption.REPLACE_EXISTING);
            }
            return into;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Path unpack(String family) {
        try {
            Path dir = Files.createTempDirectory("ember-tokenizer-" + family);
            deleteOnExit(dir);
            Path source = resources(family);
            try (InputStream in = new GZIPInputStream(Files.newInputStream(source.resolve("tokenizer.json.gz")))) {
                Files.copy(in, dir.resolve("tokenizer.json"));
            }
            Files.copy(source.resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void deleteOnExit(Path dir) {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try (Stream<Path> walk = Files.walk(dir)) {
                walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            } catch (IOException ignored) {
                // a temporary directory left behind is harmless
            }
        }));
    }
}
