package dev.ember.engine;

import dev.ember.backend.StepCounters;
import dev.ember.backend.SubmittedStep;
import dev.ember.scheduler.ScheduledStep;
import dev.ember.scheduler.Sequence;
import dev.ember.trace.Trace;

import java.util.List;

/**
 * Where drafted tokens come from in speculative decoding: before a step, the engine asks for up to {@code gamma}
 * tokens to follow each decoding sequence ({@link Sequence#propose}); the step then verifies them with the target
 * model, and the scheduler keeps what the target would have chosen itself.
 */
public sealed interface Proposer extends AutoCloseable permits DraftModelProposer, NgramProposer {

    /**
     * Proposes up to {@code gamma} tokens for each of {@code sequences} (fewer, or none, where it has nothing good),
     * reporting its parts to {@code trace} (the engine's; {@link Trace#OFF} unless someone traces it).
     */
    void propose(List<Sequence> sequences, int gamma, Trace trace);

    /**
     * Brings to the host the drafted tokens {@link #propose} left on the device ({@link Sequence#proposeEndingOnDevice}:
     * a draft model's last step, which the verification reads there) and puts them in their sequences' drafts. The engine
     * calls it once the verification's tokens are awaited, before they are judged against the drafts. Nothing by
     * default: a proposer that drafts on the host leaves nothing on the device. Its wait is reported to {@code trace}
     * (the engine's, or {@link Trace#OFF}).
     */
    default void awaitDrafts(Trace trace) {
    }

    /**
     * The engine has just submitted {@code verification}, the step of {@code plan}, which verifies drafts and draws its
     * tokens on the device: a proposer may queue work on them there before the host knows them (a draft model's
     * catch-up), reporting it to {@code trace}. Nothing by default.
     */
    default void verificationSubmitted(ScheduledStep plan, SubmittedStep verification, Trace trace) {
    }

    /**
     * The verification of {@code plan} has been retired: its sequences hold the tokens it accepted and its own. Nothing by
     * default.
     */
    default void verificationRetired(ScheduledStep plan) {
    }

    /** {@code sequence} has ended: whatever this proposer keeps for it goes. */
    default void release(Sequence sequence) {
    }

    /**
     * Prepares, before any timed work, what the proposer's first steps would otherwise prepare on their way, for steps
     * of up to {@code maxBatch} sequences and {@code maxStepTokens} tokens in sequences of up to {@code contextTokens}
     * (a draft model's runner warms up as the target's does). Nothing by default.
     */
    default void warmUp(int maxBatch, int maxStepTokens, int contextTokens) {
    }

    /** Where the draft model's steps spent their time so far; {@link StepCounters#NONE} for a proposer without one, or whose runner does not count. */
    default StepCounters counters() {
        return StepCounters.NONE;
    }

    /** What this proposer is, for summaries. */
    String describe();

    @Override
    default void close() {
    }
}
