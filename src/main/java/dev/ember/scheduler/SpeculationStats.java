package dev.ember.scheduler;

import java.util.Arrays;

/**
 * What speculative decoding achieved: drafted tokens proposed and accepted, verifications, and acceptance by position
 * in the draft. The mean accepted length counts the token each verification adds itself (the bonus or the
 * replacement), as vLLM counts it.
 */
public final class SpeculationStats {
    private long verifications;
    private long proposed;
    private long accepted;
    private long[] acceptedAt = new long[8];
    private long[] proposedAt = new long[8];

    void record(int drafted, int kept) {
        verifications++;
        proposed += drafted;
        accepted += kept;
        if (drafted > proposedAt.length) {
            proposedAt = Arrays.copyOf(proposedAt, drafted);
            acceptedAt = Arrays.copyOf(acceptedAt, drafted);
        }
        for (int i = 0; i < drafted; i++) {
            proposedAt[i]++;
            if (i < kept) {
                acceptedAt[i]++;
            }
        }
    }

    /**
     * The counts as they are now, for another thread to read (this object belongs to the engine thread).
     *
     * @param acceptedAtPosition drafted tokens accepted at each position of a draft (0 = the first), over the longest
     *                           draft so far
     */
    public record Snapshot(long verifications, long proposed, long accepted, long[] acceptedAtPosition) {
        /** Accepted drafted tokens at {@code position}; 0 beyond the longest draft so far. */
        public long acceptedAt(int position) {
            return position < acceptedAtPosition.length ? acceptedAtPosition[position] : 0;
        }
    }

    public Snapshot snapshot() {
        return new Snapshot(verifications, proposed, accepted, Arrays.copyOf(acceptedAt, longestDraft()));
    }

    private int longestDraft() {
        int n = 0;
        while (n < proposedAt.length && proposedAt[n] > 0) {
            n++;
        }
        return n;
    }

    public long verifications() {
        return verifications;
    }

    public long proposed() {
        return proposed;
    }

    public long accepted() {
        return accepted;
    }

    /** Accepted over proposed drafted tokens; NaN before any. */
    public double acceptanceRate() {
        return proposed == 0 ? Double.NaN : (double) accepted / proposed;
    }

    /** Tokens a verification adds on average: the accepted drafts and the target's own token. NaN before any. */
    public double meanAcceptedLength() {
        return verifications == 0 ? Double.NaN : (double) (accepted + verifications) / verifications;
    }

    /** The acceptance rate of the drafted token at each position (0 = the first drafted token). */
    public double[] acceptanceByPosition() {
        int n = longestDraft();
        double[] rates = new double[n];
        for (int i = 0; i < n; i++) {
            rates[i] = (double) acceptedAt[i] / proposedAt[i];
        }
        return rates;
    }
}
