package dev.ember.sampling;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * OpenAI's presence and frequency penalties (as vLLM applies them), over the tokens a sequence has generated:
 * {@code logit -= presence * (count > 0) + frequency * count}, where {@code count} is how often the output holds the token.
 */
final class OutputPenalties {
    private final float presence;
    private final float frequency;
    /** Each distinct generated id's place in {@link #ids} and {@link #counts}, in first-generated order. */
    private final Map<Integer, Integer> slots = new HashMap<>();
    private int[] ids = new int[32];
    private int[] counts = new int[32];

    OutputPenalties(float presence, float frequency) {
        this.presence = presence;
        this.frequency = frequency;
    }

    void add(int token) {
        Integer slot = slots.get(token);
        if (slot == null) {
            slot = slots.size();
            if (slot == ids.length) {
                ids = Arrays.copyOf(ids, slot * 2);
                counts = Arrays.copyOf(counts, slot * 2);
            }
            slots.put(token, slot);
            ids[slot] = token;
        }
        counts[slot]++;
    }

    void apply(float[] logits, int offset) {
        for (int i = 0; i < slots.size(); i++) {
            logits[offset + ids[i]] -= presence + frequency * counts[i];
        }
    }
}
