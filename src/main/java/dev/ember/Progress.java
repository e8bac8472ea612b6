package dev.ember;

/** Receives progress of long work (model load, weight upload, benchmark runs). */
@FunctionalInterface
public interface Progress {
    Progress NONE = (task, done, total) -> { };

    /** {@code done} out of {@code total} units of {@code task}. */
    void update(String task, long done, long total);
}
