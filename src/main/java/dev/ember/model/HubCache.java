package dev.ember.model;

import dev.ember.EmberException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Models named as the Hugging Face Hub names them ({@code Qwen/Qwen3-0.6B}, as {@code vllm serve} takes them), found where
 * {@code huggingface-cli download} and transformers put them: {@code <hub>/models--Qwen--Qwen3-0.6B/snapshots/<commit>},
 * the commit {@code refs/main} names (else the newest snapshot), or the revision asked for. Ember reads local files only;
 * it downloads nothing.
 */
public final class HubCache {
    /** An organisation and a name, as the Hub writes a repository id. */
    private static final Pattern REPOSITORY_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*");

    private HubCache() {
    }

    /**
     * The cache's folder, as huggingface_hub finds it: {@code $HF_HUB_CACHE}, else {@code $HF_HOME/hub}, else
     * {@code $XDG_CACHE_HOME/huggingface/hub}, else {@code ~/.cache/huggingface/hub}.
     */
    public static Path defaultRoot() {
        String hubCache = System.getenv("HF_HUB_CACHE"), home = System.getenv("HF_HOME"), xdg = System.getenv("XDG_CACHE_HOME");
        if (hubCache != null && !hubCache.isBlank()) {
            return Path.of(hubCache);
        }
        if (home != null && !home.isBlank()) {
            return Path.of(home, "hub");
        }
        Path cache = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return cache.resolve("huggingface").resolve("hub");
    }

    /** Whether {@code name} reads as a Hub repository id (and so may be looked for in the cache). */
    public static boolean isRepositoryId(String name) {
        return REPOSITORY_ID.matcher(name).matches();
    }

    /**
     * {@code model} itself where it is a directory; else, where it reads as a repository id, its snapshot in the cache at
     * {@code root}; else {@code model} (whose absence the loader then reports).
     */
    public static Path resolve(Path model, Path root) {
        return resolve(model, root, null);
    }

    /**
     * As {@link #resolve(Path, Path)}, at {@code revision} (a branch or tag the cache's refs name, or a commit; null for
     * main, else the newest snapshot), as {@code vllm serve --revision} asks for it.
     *
     * @throws EmberException where a revision was asked for and the cache holds the repository but not that revision
     */
    public static Path resolve(Path model, Path root, String revision) {
        if (Files.isDirectory(model) || !isRepositoryId(model.toString())) {
            return model;
        }
        return snapshot(model.toString(), root, revision).orElse(model);
    }

    /**
     * As {@link #resolve(Path, Path, String)}, but a Hub id the cache at {@code root} does not hold is an error naming
     * that cache ({@link #notFound}), so that a command given another cache folder says which one it looked in.
     */
    public static Path find(Path model, Path root, String revision) {
        Path found = resolve(model, root, revision);
        if (!Files.isDirectory(found) && isRepositoryId(model.toString())) {
            throw new EmberException(notFound(model, root));
        }
        return found;
    }

    /** What is said of a model directory {@code model} that does not exist (and, for a Hub id, is not in {@code root}). */
    public static String notFound(Path model, Path root) {
        return "model directory " + model + " does not exist" + (isRepositoryId(model.toString())
                ? ", nor is " + model + " in the Hugging Face cache (" + root + "); Ember reads local files only: "
                + "`huggingface-cli download " + model + "` fetches it there" : "");
    }

    /** The snapshot of repository {@code id} in the cache at {@code root}: the one refs/main names, else the newest. */
    static Optional<Path> snapshot(String id, Path root) {
        return snapshot(id, root, null);
    }

    private static Optional<Path> snapshot(String id, Path root, String revision) {
        Path repository = root.resolve("models--" + id.replace("/", "--"));
        Path snapshots = repository.resolve("snapshots");
        if (!Files.isDirectory(snapshots)) {
            return Optional.empty();
        }
        try {
            Path ref = repository.resolve("refs").resolve(revision == null ? "main" : revision);
            String commit = Files.isRegularFile(ref) ? Files.readString(ref).strip() : revision;
            if (commit != null) {
                Path named = snapshots.resolve(commit);
                if (Files.isDirectory(named)) {
                    return Optional.of(named);
                }
            }
            try (Stream<Path> all = Files.list(snapshots)) {
                List<Path> dirs = all.filter(Files::isDirectory).toList();
                if (revision != null) {
                    throw new EmberException("revision " + revision + " of " + id + " is not in the Hugging Face cache at " + root
                            + " (it holds " + dirs.stream().map(d -> d.getFileName().toString()).sorted().toList() + "; Ember "
                            + "downloads nothing: `huggingface-cli download " + id + " --revision " + revision + "` fetches it)");
                }
                return dirs.stream().max(Comparator.comparing(HubCache::modified));
            }
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** The repository id of a snapshot folder in a cache ({@code .../models--Qwen--Qwen3-0.6B/snapshots/<commit>}), if it is one. */
    public static Optional<String> repositoryId(Path dir) {
        Path absolute = dir.toAbsolutePath().normalize();
        Path snapshots = absolute.getParent();
        Path repository = snapshots == null ? null : snapshots.getParent();
        if (repository == null || repository.getFileName() == null || !snapshots.getFileName().toString().equals("snapshots")
                || !repository.getFileName().toString().startsWith("models--")) {
            return Optional.empty();
        }
        return Optional.of(repository.getFileName().toString().substring("models--".length()).replace("--", "/"));
    }

    private static long modified(Path dir) {
        try {
            return Files.getLastModifiedTime(dir).toMillis();
        } catch (IOException e) {
            return 0;
        }
    }
}
