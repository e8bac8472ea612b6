package dev.ember.sampling;

import java.util.BitSet;

/**
 * What an output must match (a JSON schema, any JSON object, one of some strings): at each step, the tokens that may
 * come next. Immutable and shared by every sequence of a request; each sequence follows it with a {@link Matcher} of
 * its own.
 */
public interface OutputGrammar {

    /** A matcher at the start of an output. */
    Matcher start();

    /** What the grammar asks for, in a few words ("JSON schema", "one of 3 choices"), for messages. */
    String describe();

    /**
     * Whether the tokens it allows depend on those drawn before (a grammar's do; a fixed set's do not): where they do, a
     * sequence's next step waits for its last token on the host.
     */
    default boolean followsTokens() {
        return true;
    }

    /** One sequence's place in the grammar. Not thread-safe: its sequence's sampler alone uses it. */
    interface Matcher {
        /**
         * Sets in {@code allowed} (cleared first) the tokens that may come next: those whose bytes continue the output
         * within the grammar, and the end-of-sequence tokens where the output may end here (only those once it must).
         * Never leaves it empty: where no token continues, the end-of-sequence tokens are allowed.
         */
        void allowedTokens(BitSet allowed);

        /** Moves past {@code token}, the one drawn from those allowed. */
        void accept(int token);
    }
}
