package dev.ember.tokenizer;

import java.util.Arrays;

/**
 * Turns the tokens of one generation into text as they come, for streaming to a user: {@link #push} returns the
 * text that token completes, {@link #flush} what is left at the end, and everything returned, concatenated, is
 * exactly {@code decode(allIds)}.
 *
 * <p>Token-by-token decoding is wrong in two ways this class avoids. A character of several UTF-8 bytes may span
 * tokens (byte-fallback tokens {@code <0xE4>} in SentencePiece models, byte-level pieces in Qwen and Llama 3), so
 * a lone token decodes to U+FFFD; and SentencePiece decoders strip the leading space of the first token they see,
 * so decoding {@code ▁world} alone loses the space between words. Both are handled by decoding a short window that
 * starts a few tokens back, at the last point where complete text was returned: the window's text minus the text
 * of its already-returned prefix is the new text, held back while it ends in an incomplete character.
 *
 * <p>A run of byte-fallback tokens is held back until a token of another kind ends it, even where it already
 * spells whole characters: HF's ByteFallback decoder reads the run as one, and one stray byte at its end turns
 * all of it into U+FFFD. Byte-level decoding has no such reach back, so Qwen and Llama 3 text flows at once.
 *
 * <p>Not thread-safe: one decoder belongs to one generation.
 */
public final class StreamingDecoder {

    private static final char REPLACEMENT = '\uFFFD';

    private final Tokenizer tokenizer;
    private final boolean skipSpecialTokens;
    private int[] ids = new int[64];
    private int size;
    /** Start of the decoding window: text from here to {@link #readOffset} has been returned already. */
    private int prefixOffset;
    /** End of the tokens whose text has been returned. */
    private int readOffset;
    /** Whether the last token the decoder sees (skipped special tokens aside) is a byte-fallback byte. */
    private boolean inByteRun;

    StreamingDecoder(Tokenizer tokenizer, boolean skipSpecialTokens) {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
    }

    /**
     * Adds the next token and returns the text it completes: empty while it ends in the middle of a character
     * (or decodes to nothing), several characters when it completes earlier held-back bytes.
     */
    public String push(int tokenId) {
        tokenizer.requireKnown(tokenId);
        if (size == ids.length) {
            ids = Arrays.copyOf(ids, size * 2);
        }
        ids[size++] = tokenId;
        Vocabulary vocabulary = tokenizer.vocabulary();
        if (!(skipSpecialTokens && vocabulary.isSpecial(tokenId))) {
            inByteRun = vocabulary.isByteFallbackPiece(tokenId);
        }
        if (inByteRun) {
            return "";
        }
        String prefix = tokenizer.decode(ids, prefixOffset, readOffset, skipSpecialTokens);
        String window = tokenizer.decode(ids, prefixOffset, size, skipSpecialTokens);
        if (window.length() <= prefix.length() || window.charAt(window.length() - 1) == REPLACEMENT) {
            return "";
        }
        prefixOffset = readOffset;
        readOffset = size;
        return window.substring(prefix.length());
    }

    /** Returns whatever was held back (an unfinished character decodes to U+FFFD, as in {@code decode}). */
    public String flush() {
        String prefix = tokenizer.decode(ids, prefixOffset, readOffset, skipSpecialTokens);
        String window = tokenizer.decode(ids, prefixOffset, size, skipSpecialTokens);
        prefixOffset = readOffset = size;
        return window.length() > prefix.length() ? window.substring(prefix.length()) : "";
    }
}
