package dev.ember;

/**
 * A failure the user can act on: bad model files, an unknown architecture, a prompt that does not fit.
 * The message names the file, tensor or limit at fault; the CLI prints it alone, without a stack trace.
 */
public class EmberException extends RuntimeException {
    public EmberException(String message) {
        super(message);
    }

    public EmberException(String message, Throwable cause) {
        super(message, cause);
    }
}
