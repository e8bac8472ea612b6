package dev.ember.monitor;

import dev.ember.EmberException;

/**
 * An NVML call that failed. The message names the call and NVML's own string for the error (for example
 * {@code nvmlInit_v2: Driver Not Loaded (9)}), as {@code nvmlErrorString} gives it.
 */
public final class NvmlException extends EmberException {
    private final String call;
    private final int code;

    NvmlException(String call, int code, String errorString) {
        super(call + ": " + errorString + " (" + code + ")");
        this.call = call;
        this.code = code;
    }

    /** The NVML function that failed. */
    public String call() {
        return call;
    }

    /** The numeric {@code nvmlReturn_t}. */
    public int code() {
        return code;
    }
}
