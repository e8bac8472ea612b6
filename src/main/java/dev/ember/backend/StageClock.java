package dev.ember.backend;

/**
 * A runner's marks between the stages of a step: {@link #enter} begins a stage (ending the one before), {@link #end}
 * ends the last. {@link #OFF} does nothing, so runners call it unconditionally; {@link #onHost} times stages with
 * {@link System#nanoTime()} for runners whose work is done by the calling thread (a GPU runner marks its stream
 * instead).
 */
public interface StageClock {
    StageClock OFF = new StageClock() {
        @Override
        public void enter(Stage stage) {
        }

        @Override
        public void end() {
        }
    };

    void enter(Stage stage);

    void end();

    /** {@link #OFF} when {@code profile} is off, else a host clock reporting to it. */
    static StageClock onHost(StageProfile profile) {
        return profile.enabled() ? new HostClock(profile) : OFF;
    }

    /** Times stages on the calling thread; time between an {@link #end} and the next {@link #enter} is nobody's. */
    final class HostClock implements StageClock {
        private final StageProfile profile;
        private Stage current;
        private long since;

        HostClock(StageProfile profile) {
            this.profile = profile;
        }

        @Override
        public void enter(Stage stage) {
            long now = System.nanoTime();
            if (current != null) {
                profile.add(current, now - since);
            }
            current = stage;
            since = now;
        }

        @Override
        public void end() {
            if (current != null) {
                profile.add(current, System.nanoTime() - since);
                current = null;
            }
        }
    }
}
