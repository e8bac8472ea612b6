package dev.ember.sampling;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.function.Function;

/**
 * A grammar for tests of where and how a grammar's mask is applied: at each step it allows what {@code allowed} says
 * of the tokens accepted so far, and it keeps those tokens (every sequence following it adds to the same list).
 */
public final class ScriptedGrammar implements OutputGrammar {
    private final Function<List<Integer>, BitSet> allowed;
    /** The tokens its matchers accepted, in order. */
    public final List<Integer> accepted = new ArrayList<>();

    public ScriptedGrammar(Function<List<Integer>, BitSet> allowed) {
        this.allowed = allowed;
    }

    /** The tokens allowed now. */
    public BitSet allowedNow() {
        return allowed.apply(accepted);
    }

    @Override
    public Matcher start() {
        return new Matcher() {
            @Override
            public void allowedTokens(BitSet into) {
                into.clear();
                into.or(allowedNow());
            }

            @Override
            public void accept(int token) {
                accepted.add(token);
            }
        };
    }

    @Override
    public String describe() {
        return "a scripted grammar";
    }
}
