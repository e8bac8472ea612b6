package dev.ember.backend;

/**
 * A runner's marks between the stages of a step: {@link #enter} begins a stage (ending the one before), {@link #end}
 * ends the last; {@link #layer} marks where each decoder layer begins and, with {@link #NO_LAYER}, where the layers end.
 * The time between two marks belongs to the stage and the layer current at the first. {@link #OFF} does nothing, so
 * runners call it unconditionally; {@link #onHost} times with {@link System#nanoTime()}, for runners whose work is done
 * by the calling thread (a GPU runner marks its stream instead).
 */
public interface StageClock {
    /** What {@link #layer} is given after the last layer. */
    int NO_LAYER = -1;

    StageClock OFF = new StageClock() {
        @Override
        public void enter(Stage stage) {
        }

        @Override
        public void layer(int index) {
        }

        @Override
        public void end() {
        }
    };

    void enter(Stage stage);

    void layer(int index);

    void end();

    /** {@link #OFF} when {@code profile} is off, else a host clock reporting to it. */
    static StageClock onHost(StageProfile profile) {
        return profile.enabled() ? new HostClock(profile) : OFF;
    }

    /** Times stages on the calling thread; time between an {@link #end} and the next {@link #enter} is nobody's. */
    final class HostClock implements StageClock {
        private final StageProfile profile;
        private Stage stage;
        private int layer = NO_LAYER;
        private long since;

        HostClock(StageProfile profile) {
            this.profile = profile;
        }

        @Override
        public void enter(Stage next) {
            mark();
            stage = next;
        }

        @Override
        public void layer(int index) {
            mark();
            layer = index;
        }

        @Override
        public void end() {
            mark();
            stage = null;
            layer = NO_LAYER;
        }

        private void mark() {
            long now = System.nanoTime();
            if (stage != null) {
                profile.add(stage, now - since);
                if (layer != NO_LAYER) {
                    profile.addLayer(layer, now - since);
                }
            }
            since = now;
        }
    }
}
