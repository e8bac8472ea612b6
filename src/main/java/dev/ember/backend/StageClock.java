package dev.ember.backend;

import dev.ember.nativelib.Nvtx;

import java.util.Arrays;

/**
 * A runner's marks between the stages of a step: {@link #enter} begins a stage (ending the one before), {@link #end}
 * ends the last; {@link #layer} marks where each decoder layer begins and, with {@link #NO_LAYER}, where the layers end.
 * The time between two marks belongs to the stage and the layer current at the first. {@link #OFF} does nothing, so
 * runners call it unconditionally; {@link #onHost} times with {@link System#nanoTime()}, for runners whose work is done
 * by the calling thread (a GPU runner marks its stream instead). Every clock that times ({@link Marking}) also keeps
 * NVTX ranges open around the current layer and stage when its profile asks for them.
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

    /** {@code layer 3}: the name of decoder layer {@code index} in traces and NVTX ranges, made once per index. */
    static String layerName(int index) {
        return Marking.layerName(index);
    }

    /**
     * What every timing clock shares: the stage and layer current between marks, and the NVTX ranges around them (a
     * layer's range holds its stages' ranges, so a stage current across a layer mark gets a range in each). Subclasses
     * say what a mark does.
     */
    abstract class Marking implements StageClock {
        private static volatile String[] layerNames = new String[0];
        private final Nvtx nvtx;
        /** The stage and layer that the time since the last mark belongs to: null and NO_LAYER outside a step's stages. */
        protected Stage stage;
        protected int layer = NO_LAYER;

        protected Marking(StageProfile profile) {
            this.nvtx = profile.nvtx();
        }

        /** Ends the time of the current {@link #stage} and {@link #layer} at this point (both are still current). */
        protected abstract void mark();

        @Override
        public final void enter(Stage next) {
            mark();
            if (stage != null) {
                nvtx.pop();
            }
            nvtx.push(next.label());
            stage = next;
        }

        @Override
        public final void layer(int index) {
            mark();
            if (stage != null) {
                nvtx.pop();
            }
            if (layer != NO_LAYER) {
                nvtx.pop();
            }
            if (index != NO_LAYER) {
                nvtx.push(layerName(index));
            }
            if (stage != null) {
                nvtx.push(stage.label());
            }
            layer = index;
        }

        @Override
        public final void end() {
            if (stage == null && layer == NO_LAYER) {
                return;
            }
            mark();
            if (stage != null) {
                nvtx.pop();
            }
            if (layer != NO_LAYER) {
                nvtx.pop();
            }
            stage = null;
            layer = NO_LAYER;
        }

        static String layerName(int index) {
            String[] names = layerNames;
            return index < names.length ? names[index] : grow(index);
        }

        private static synchronized String grow(int index) {
            String[] names = layerNames;
            if (index >= names.length) {
                int from = names.length;
                names = Arrays.copyOf(names, Math.max(index + 1, 2 * from));
                for (int i = from; i < names.length; i++) {
                    names[i] = "layer " + i;
                }
                layerNames = names;
            }
            return names[index];
        }
    }

    /** Times stages on the calling thread; time between an {@link #end} and the next {@link #enter} is nobody's. */
    final class HostClock extends Marking {
        private final StageProfile profile;
        private long since;

        HostClock(StageProfile profile) {
            super(profile);
            this.profile = profile;
        }

        @Override
        protected void mark() {
            long now = System.nanoTime();
            if (stage != null) {
                profile.add(stage, layer, since, now - since);
            }
            since = now;
        }
    }
}
