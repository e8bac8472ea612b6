package dev.ember.cli;

import dev.ember.EmberException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Predicate;

/**
 * An option that takes a text or the file holding it (a JSON schema, a grammar, a chat template): what was given is
 * the text itself where it looks like one, else the path of a file to read.
 */
public final class OptionText {
    private OptionText() {
    }

    /**
     * {@code given} itself where {@code isText} says it is one, else the contents of the file it names.
     *
     * @param option the option's name, for messages
     * @param what   what the text is ("a JSON schema"), for messages
     * @throws EmberException naming the option where {@code given} is neither the text nor a readable file
     */
    public static String read(String option, String given, Predicate<String> isText, String what) {
        if (isText.test(given)) {
            return given;
        }
        Path file = Path.of(given);
        EmberException.require(Files.isRegularFile(file), option + " " + given + ": neither " + what + " nor a file");
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new EmberException(option + ": cannot read " + file + " (" + e.getMessage() + ")", e);
        }
    }
}
