package dev.ember.engine;

import dev.ember.backend.ForwardBatch;
import dev.ember.scheduler.ScheduledStep;

/**
 * Counts the verifications an engine submits, and those whose chunk takes its last drafted token on the device: from
 * a draft model's step the host has not awaited when the verification is submitted ({@link ForwardBatch.Chunk#carrySource}).
 */
public final class VerificationWatch implements StepObserver {
    private int verifications, lastTokenOnDevice;

    @Override
    public void submitted(ScheduledStep step) {
        for (ForwardBatch.Chunk chunk : step.toForwardBatch().chunks()) {
            if (chunk.outputs() > 1) {
                verifications++;
                lastTokenOnDevice += chunk.carrySource() != null && chunk.carriedFrom() >= 0 ? 1 : 0;
            }
        }
    }

    public int verifications() {
        return verifications;
    }

    public int lastTokenOnDevice() {
        return lastTokenOnDevice;
    }
}
