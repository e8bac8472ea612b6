package dev.ember.sampling;

import dev.ember.EmberException;

import java.util.List;
import java.util.Optional;

/**
 * Finds stop strings in text that arrives in pieces (one detokenized step at a time) without ever
 * emitting text that a later piece could turn into part of a stop string. As with OpenAI and vLLM, the
 * stop string itself and everything after it are never emitted.
 *
 * <p>The stop that fires is the one that would complete first if the text arrived one character at a
 * time: the earliest-ending occurrence, and of those ending at the same place the longest (which starts
 * earliest). So the result does not depend on how the text was cut into pieces.
 *
 * <p>Usage: pass each piece to {@link #feed} and emit what it returns; once {@link #stopped()} is true the
 * generation is over. If it ends for another reason (end-of-sequence token, length), emit {@link #finish()}.
 */
public final class StopStrings {
    private final List<String> stops;
    private final int longestStop;
    /** Text received but not yet emitted: a proper prefix of some stop string, and nothing else. */
    private String held = "";
    private String matched;

    public StopStrings(List<String> stopStrings) {
        for (String stop : stopStrings) {
            if (stop == null || stop.isEmpty()) {
                throw new EmberException("stop strings must be non-empty, got " + (stop == null ? "null" : "\"\""));
            }
        }
        this.stops = List.copyOf(stopStrings);
        this.longestStop = stops.stream().mapToInt(String::length).max().orElse(0);
    }

    /**
     * Takes the next piece of generated text and returns the text that is now safe to emit: everything
     * before the stop string if one has just completed, otherwise everything except the longest tail that
     * could still grow into a stop string. Returns "" once stopped.
     */
    public String feed(CharSequence piece) {
        if (matched != null) {
            return "";
        }
        String text = held + piece;
        String found = null;
        int matchStart = -1;
        int matchEnd = Integer.MAX_VALUE;
        for (String stop : stops) {
            // Every occurrence of one stop has the same length, so its first occurrence also ends first.
            int start = text.indexOf(stop);
            int end = start + stop.length();
            if (start >= 0 && (end < matchEnd || end == matchEnd && start < matchStart)) {
                matchStart = start;
                matchEnd = end;
                found = stop;
            }
        }
        if (found != null) {
            matched = found;
            held = "";
            return text.substring(0, matchStart);
        }
        int hold = longestTailStartingAStop(text);
        held = text.substring(text.length() - hold);
        return text.substring(0, text.length() - hold);
    }

    /**
     * Takes a piece of text in which no stop string may end (generation is still short of its minimum): returns it
     * whole, with any tail held before it. Returns "" once stopped.
     */
    public String passThrough(CharSequence piece) {
        if (matched != null) {
            return "";
        }
        String text = held + piece;
        held = "";
        return text;
    }

    /** At the end of a generation that did not stop on a stop string, the held-back tail, which is now safe. */
    public String finish() {
        String rest = held;
        held = "";
        return rest;
    }

    public boolean stopped() {
        return matched != null;
    }

    /** The stop string that ended the text, if one did. */
    public Optional<String> matchedStop() {
        return Optional.ofNullable(matched);
    }

    private int longestTailStartingAStop(String text) {
        for (int length = Math.min(text.length(), longestStop - 1); length > 0; length--) {
            int from = text.length() - length;
            for (String stop : stops) {
                if (stop.length() > length && stop.regionMatches(0, text, from, length)) {
                    return length;
                }
            }
        }
        return 0;
    }
}
