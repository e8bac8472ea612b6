package dev.ember.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Hub ids found in a Hugging Face cache laid out as huggingface_hub lays it out, and the model named by its id. */
class HubCacheTest {
    private static final ModelConfig CONFIG = new ModelConfig(Architecture.QWEN2, 32, 64, 2, 4, 2, 8, 50, 128, 1e-6,
            10000, new RopeScaling.None(), false, Biases.QKV, 0, 1, List.of(2), DType.BF16);

    @TempDir
    Path root;

    @Test
    void aHubIdIsFoundAtTheSnapshotMainNames() throws IOException {
        Path repository = root.resolve("models--acme--tiny-chat");
        Path current = repository.resolve("snapshots/4f1c2e"), older = repository.resolve("snapshots/0a9b8c");
        for (Path snapshot : List.of(older, current)) {
            Files.createDirectories(snapshot);
            try (Model m = RandomWeights.create(CONFIG, DType.BF16, 3)) {
                SafeTensorsWriter.writeModel(snapshot, m);
            }
        }
        Files.setLastModifiedTime(older, FileTime.fromMillis(System.currentTimeMillis() + 60_000));
        Files.createDirectories(repository.resolve("refs"));
        Files.writeString(repository.resolve("refs/main"), "4f1c2e\n");

        Path resolved = HubCache.resolve(Path.of("acme/tiny-chat"), root);
        assertEquals(current, resolved, "the snapshot refs/main names, though another is newer");
        try (Model model = ModelLoader.load(resolved)) {
            assertEquals("acme/tiny-chat", model.name(), "named as the Hub names it, not by its commit");
        }
        // vLLM's --revision: a ref the cache names, or a commit; one it does not hold is an error, not another snapshot.
        Files.writeString(repository.resolve("refs/v1"), "0a9b8c");
        assertEquals(older, HubCache.resolve(Path.of("acme/tiny-chat"), root, "v1"));
        assertEquals(current, HubCache.resolve(Path.of("acme/tiny-chat"), root, "4f1c2e"));
        var missing = assertThrows(dev.ember.EmberException.class, () -> HubCache.resolve(Path.of("acme/tiny-chat"), root, "v2"));
        assertTrue(missing.getMessage().startsWith("revision v2 of acme/tiny-chat is not in the Hugging Face cache at " + root
                + " (it holds [0a9b8c, 4f1c2e]"), missing.getMessage());
        Files.delete(repository.resolve("refs/main"));
        assertEquals(older, HubCache.resolve(Path.of("acme/tiny-chat"), root), "without refs/main, the newest snapshot");
    }

    @Test
    void whatIsNotAHubIdOrNotCachedIsLeftAsGiven() {
        assertEquals(Path.of("acme/absent"), HubCache.resolve(Path.of("acme/absent"), root));
        assertEquals(Path.of("/no/such/dir"), HubCache.resolve(Path.of("/no/such/dir"), root));
        assertEquals(root, HubCache.resolve(root, root), "an existing directory is itself");
        assertFalse(HubCache.isRepositoryId("a/b/c"));
        assertFalse(HubCache.isRepositoryId("./model"));
        assertTrue(HubCache.isRepositoryId("Qwen/Qwen3-0.6B"));
        assertTrue(HubCache.repositoryId(root).isEmpty());
    }

    @Test
    void aMissingHubIdSaysWhereItWasLookedFor() {
        var e = assertThrows(dev.ember.EmberException.class, () -> ModelLoader.load(Path.of("acme/absent")));
        assertTrue(e.getMessage().contains("Hugging Face cache") && e.getMessage().contains("huggingface-cli download acme/absent"),
                e.getMessage());
    }
}
