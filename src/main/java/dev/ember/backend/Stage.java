package dev.ember.backend;

import java.util.Locale;

/** The parts of a step that stage profiling tells apart, in the order of seed 000's {@code ember_stage_breakdown} columns. */
public enum Stage {
    EMBEDDING, RMSNORM, ATTENTION, FFN, P2P, MEMCPY_H2D, MEMCPY_D2H, SAMPLING, LM_HEAD;

    /** The stage's CSV column: {@code attention_ms}, say. */
    public String column() {
        return name().toLowerCase(Locale.ROOT) + "_ms";
    }
}
