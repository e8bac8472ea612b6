package dev.ember.backend.streaming;

import dev.ember.EmberException;

import java.util.Locale;

/** Where a model's decoder layers live between the steps that compute them. */
public enum StreamingMode {
    /** Every weight on the device for the model's life: no streaming. */
    FULL,
    /** Every layer packed once into pinned host memory, then copied to the device window step after step. */
    PRELOAD,
    /** A pinned host cache of the first {@code --cpu-cache-layers} layers; the rest copied from the mapped files. */
    STREAM,
    /** Every layer read from the disk (direct I/O where the file system allows) through a pinned staging ring. */
    MIXED;

    /** The mode a user names ("full", "preload", "stream", "mixed"). */
    public static StreamingMode parse(String name) {
        try {
            return valueOf(name.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new EmberException("unknown weight mode \"" + name + "\" (full, preload, stream or mixed)");
        }
    }

    /** The name a user writes, and the JSON reports. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
