package dev.ember.tokenizer;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Every entry of every {@code src/test/resources/tokenizers/<family>/hf_reference.json}: the answers of HF
 * transformers itself (made on the GPU host) for encode, decode and apply_chat_template, each a test of its own,
 * so the report shows the passes and failures per family. With no reference files yet, or a family whose tokenizer
 * is not in this checkout (ember-tiny lives in models/ember-tiny/), it says so and skips instead of failing.
 */
class HfReferenceTest {

    static final Path EMBER_TINY = Path.of("models", "ember-tiny");

    @TestFactory
    Stream<DynamicNode> everyEntryOfEveryReference() throws IOException {
        List<Path> references;
        try (Stream<Path> families = Files.list(TokenizerFixtures.resourceRoot())) {
            references = families.map(dir -> dir.resolve("hf_reference.json")).filter(Files::isRegularFile).sorted().toList();
        }
        if (references.isEmpty()) {
            return Stream.of(DynamicTest.dynamicTest("no hf_reference.json yet", () -> skip(
                    "no src/test/resources/tokenizers/<family>/hf_reference.json is present yet: nothing to compare with HF")));
        }
        List<DynamicNode> families = new ArrayList<>();
        for (Path file : references) {
            String family = file.getParent().getFileName().toString();
            families.add(family(family, file));
        }
        return families.stream();
    }

    private static DynamicNode family(String family, Path file) throws IOException {
        HfReference reference = HfReference.read(file);
        Path directory = tokenizerDirectory(family);
        if (directory == null || !Files.isRegularFile(directory.resolve("tokenizer.json"))) {
            return DynamicTest.dynamicTest(family + ": tokenizer not in this checkout", () -> skip(
                    family + ": " + reference.size() + " reference entries, but no tokenizer at "
                            + (directory == null ? "(unknown family)" : directory.toAbsolutePath())));
        }
        // Loaded per family with the clock the reference's chat renderings were made with (see HfReference.clock).
        Tokenizer tokenizer = Tokenizer.load(directory, reference.clock());
        List<DynamicTest> tests = new ArrayList<>();
        for (int i = 0; i < reference.encode().size(); i++) {
            HfReference.Encode e = reference.encode().get(i);
            tests.add(DynamicTest.dynamicTest("encode #" + i + " " + HfReference.quote(e.text()), () -> e.check(tokenizer)));
        }
        for (int i = 0; i < reference.decode().size(); i++) {
            HfReference.Decode d = reference.decode().get(i);
            tests.add(DynamicTest.dynamicTest("decode #" + i + " (" + d.ids().length + " ids)", () -> d.check(tokenizer)));
        }
        for (int i = 0; i < reference.chat().size(); i++) {
            HfReference.Chat c = reference.chat().get(i);
            tests.add(DynamicTest.dynamicTest("chat #" + i + " (" + c.messages().size() + " messages)", () -> c.check(tokenizer)));
        }
        return DynamicContainer.dynamicContainer(family + " (" + reference.source() + ")", tests);
    }

    /** Says why on the console too (the build prints only a count of skipped tests), then skips. */
    private static void skip(String why) {
        System.out.println("HfReferenceTest: " + why);
        Assumptions.abort(why);
    }

    /** Where a family's tokenizer is: the committed fixtures, or for ember-tiny the model the project builds. */
    static Path tokenizerDirectory(String family) {
        if (family.equals("ember-tiny")) {
            return EMBER_TINY;
        }
        return TokenizerFixtures.FAMILIES.contains(family) ? TokenizerFixtures.directory(family) : null;
    }
}
