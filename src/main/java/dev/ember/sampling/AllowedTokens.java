package dev.ember.sampling;

import java.util.BitSet;

/**
 * Only these tokens may be drawn, at every step (vLLM's {@code allowed_token_ids}): a mask that does not depend on what
 * came before, so its rows need not wait for their last token on the host. An end-of-sequence token ends the output only
 * where it is among them.
 */
public final class AllowedTokens implements OutputGrammar {
    private final BitSet ids;

    /** @param ids the tokens allowed; at least one */
    public AllowedTokens(BitSet ids) {
        if (ids.isEmpty()) {
            throw new IllegalArgumentException("allowed tokens: at least one token must be allowed");
        }
        this.ids = (BitSet) ids.clone();
    }

    @Override
    public Matcher start() {
        return new Matcher() {
            @Override
            public void allowedTokens(BitSet allowed) {
                allowed.clear();
                allowed.or(ids);
            }

            @Override
            public void accept(int token) {
            }
        };
    }

    @Override
    public boolean followsTokens() {
        return false;
    }

    @Override
    public String describe() {
        return "allowed_token_ids (" + ids.cardinality() + " tokens)";
    }
}
