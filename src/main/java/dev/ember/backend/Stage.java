package dev.ember.backend;

import java.util.Locale;

/**
 * The parts of a step that stage profiling tells apart, in the order of seed 000's {@code ember_stage_breakdown} columns.
 * On the CUDA backend a layer's two norms are timed with the product that reads them (attention's q/k/v, the FFN's
 * gate/up), which normalises its own input at small batches; its RMSNORM is the final norm's.
 */
public enum Stage {
    EMBEDDING, RMSNORM, ATTENTION, FFN, P2P, MEMCPY_H2D, MEMCPY_D2H, SAMPLING, LM_HEAD;

    private final String label = name().toLowerCase(Locale.ROOT);

    /** The stage's name in traces and NVTX ranges: {@code attention}, {@code lm_head}. */
    public String label() {
        return label;
    }

    /** The stage's CSV column: {@code attention_ms}, say. */
    public String column() {
        return label + "_ms";
    }
}
