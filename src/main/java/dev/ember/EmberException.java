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

    /** Throws an EmberException with {@code message} unless {@code ok}: the check of a user's option or input. */
    public static void require(boolean ok, String message) {
        if (!ok) {
            throw new EmberException(message);
        }
    }
}
