package dev.ember.backend;

import dev.ember.EmberException;

import java.util.Arrays;
import java.util.stream.Collectors;

/** How many consecutive decoder layers each pipeline stage runs (seed 000's {@code --split A,B}). */
public final class PipelineSplit {
    private PipelineSplit() {
    }

    /** {@code layers} over {@code stages} as evenly as they go, the earlier stages taking one more where they differ. */
    public static int[] even(int layers, int stages) {
        EmberException.require(stages >= 1 && stages <= layers, "a model of " + layers + " layers splits into 1 to " + layers
                + " pipeline stages, not " + stages);
        int[] split = new int[stages];
        for (int s = 0; s < stages; s++) {
            split[s] = layers / stages + (s < layers % stages ? 1 : 0);
        }
        return split;
    }

    /** The split as {@code --split} takes it: "3,4". */
    public static String describe(int[] stageLayers) {
        return Arrays.stream(stageLayers).mapToObj(String::valueOf).collect(Collectors.joining(","));
    }

    /**
     * The first layer of each stage of {@code stageLayers}, once checked: every stage runs at least one layer and
     * together they run the model's {@code layers}; otherwise an error that says what the split covers.
     */
    public static int[] firstLayers(int[] stageLayers, int layers) {
        String given = describe(stageLayers);
        EmberException.require(stageLayers.length >= 1, "a pipeline split names at least one stage");
        int[] first = new int[stageLayers.length];
        int total = 0;
        for (int s = 0; s < stageLayers.length; s++) {
            EmberException.require(stageLayers[s] >= 1, "--split " + given + ": every stage runs at least one layer");
            first[s] = total;
            total += stageLayers[s];
        }
        EmberException.require(total == layers, "--split " + given + " covers " + total + " layers; the model has " + layers);
        return first;
    }
}
