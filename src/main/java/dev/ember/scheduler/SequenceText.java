package dev.ember.scheduler;

import dev.ember.EmberException;
import dev.ember.sampling.StopStrings;
import dev.ember.tokenizer.StreamingDecoder;
import dev.ember.tokenizer.Tokenizer;

import java.util.List;

/**
 * A sequence's generated text, decoded as its tokens land, with special tokens left out unless the request asks for
 * them (as vLLM and transformers do by default) and the text that could still grow into a stop string held back. The scheduler reads {@link #stopped()}
 * to end the sequence at the very step that completed a stop string.
 */
public final class SequenceText {
    /** For a request of token ids only: no text, and so no stop strings. */
    static final SequenceText NONE = new SequenceText(null, 0, new StopStrings(List.of()));

    private final StreamingDecoder decoder;
    private final int tokenizerVocab;
    private final StopStrings stops;
    private final StringBuilder text = new StringBuilder();

    private SequenceText(StreamingDecoder decoder, int tokenizerVocab, StopStrings stops) {
        this.decoder = decoder;
        this.tokenizerVocab = tokenizerVocab;
        this.stops = stops;
    }

    /**
     * The text of a sequence decoded by {@code tokenizer}, ending at the first of {@code stopStrings}, with special
     * tokens left out where {@code skipSpecialTokens}; without a tokenizer (random-weight models), no text, and stop
     * strings are refused.
     */
    public static SequenceText of(Tokenizer tokenizer, List<String> stopStrings, boolean skipSpecialTokens) {
        if (tokenizer == null) {
            if (!stopStrings.isEmpty()) {
                throw new EmberException("stop strings need a tokenizer, and this model has none");
            }
            return NONE;
        }
        return new SequenceText(tokenizer.streamingDecoder(skipSpecialTokens), tokenizer.vocabSize(), new StopStrings(stopStrings));
    }

    /**
     * Takes a generated token (not an end-of-sequence one) and returns the text that is now safe to show; with
     * {@code stopsActive} false (the sequence is still short of its {@code min_tokens}) no
     * stop string is looked for, and nothing is held back for one.
     */
    String append(int token, boolean stopsActive) {
        if (decoder == null) {
            return "";
        }
        String piece = decode(token);
        return emit(stopsActive ? stops.feed(piece) : stops.passThrough(piece));
    }

    /** The stop string that ended the text, now made part of it (vLLM's {@code include_stop_str_in_output}); "" if none. */
    String includeStop() {
        return emit(stops.matchedStop().orElse(""));
    }

    /** At the sequence's end, the text held back, now safe; nothing after a stop string. */
    String finish() {
        if (decoder == null || stops.stopped()) {
            return "";
        }
        return emit(stops.feed(decoder.flush()) + stops.finish());
    }

    /** The stop string that ended the text, or null. */
    String matchedStop() {
        return stops.matchedStop().orElse(null);
    }

    /** Whether a stop string has completed. */
    boolean stopped() {
        return stops.stopped();
    }

    /** All the text shown so far. */
    public String text() {
        return text.toString();
    }

    private String emit(String piece) {
        text.append(piece);
        return piece;
    }

    /** The token's text; a token the model has but the tokenizer lacks (padded vocabularies) has none. */
    private String decode(int token) {
        if (token >= tokenizerVocab) {
            return "";
        }
        try {
            return decoder.push(token);
        } catch (EmberException e) {
            return "";
        }
    }
}
